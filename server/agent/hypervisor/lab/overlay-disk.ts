/**
 * A writable disk on top of a read-only point-in-time view, for test failover: the guest's
 * writes go to a sparse overlay file, reads come from the overlay where the guest wrote and
 * from the view elsewhere. Nothing is copied, so it is ready at once whatever the disk size,
 * and the view (the replica and its recovery points) is never written.
 */
import { open, type FileHandle } from "node:fs/promises";
import { BlockSet } from "../../replication/recovery/block-set.js";
import { readFully, writeFully } from "../../util/files.js";

const B = 4096;

export class OverlayDisk {
  private readonly written = new BlockSet();
  /** Written block ranges in write order (for committing them), as the map file has them. */
  private readonly ranges: [number, number][] = [];
  private mapTail = 0;

  private constructor(
    readonly index: number,
    /** The overlay file: the guest's own writes. */
    readonly path: string,
    readonly sizeBytes: number,
    private readonly fh: FileHandle,
    private readonly base: (offset: number, length: number) => Promise<Buffer>,
    /** Which blocks the overlay holds, kept across restarts (failover VMs); none for tests. */
    private readonly map: FileHandle | undefined,
  ) {}

  /**
   * Creates an empty overlay file over `base`, which reads the view's bytes of this disk.
   * With `mapPath`, which blocks were written is kept in a file, so `open` can resume it.
   */
  static async create(index: number, path: string, sizeBytes: number, base: (offset: number, length: number) => Promise<Buffer>, mapPath?: string): Promise<OverlayDisk> {
    const fh = await open(path, "wx+");
    await fh.truncate(sizeBytes);
    const map = mapPath ? await open(mapPath, "wx+") : undefined;
    return new OverlayDisk(index, path, sizeBytes, fh, base, map);
  }

  /** Reopens an overlay created with a map file, after a restart. */
  static async open(index: number, path: string, sizeBytes: number, base: (offset: number, length: number) => Promise<Buffer>, mapPath: string): Promise<OverlayDisk> {
    const fh = await open(path, "r+");
    const map = await open(mapPath, "r+");
    const disk = new OverlayDisk(index, path, sizeBytes, fh, base, map);
    const bytes = await map.readFile();
    // A record torn by a crash is a write that was never acknowledged: dropped.
    const whole = bytes.length - (bytes.length % 16);
    for (let at = 0; at < whole; at += 16) disk.remember(Number(bytes.readBigUInt64LE(at)), Number(bytes.readBigUInt64LE(at + 8)));
    disk.mapTail = whole;
    return disk;
  }

  private remember(from: number, to: number): void {
    this.written.addRange(from, to);
    this.ranges.push([from, to]);
  }

  /** The written block ranges, in the order they were written (may repeat). */
  writtenRanges(): readonly [number, number][] {
    return this.ranges;
  }

  /** Test failover VMs are never replicated. */
  readonly tracking = false;
  readonly pendingBytes = 0;

  checkRange(offset: number, length: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.sizeBytes) {
      throw new RangeError(`range ${offset}+${length} is outside disk ${this.index} (${this.sizeBytes} bytes)`);
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkRange(offset, length);
    const buf = await this.base(offset, length);
    const end = offset + length;
    let run = -1;
    const flush = async (toBlock: number) => {
      const from = Math.max(run * B, offset);
      const to = Math.min(toBlock * B, end);
      await readFully(this.fh, buf.subarray(from - offset, to - offset), from);
      run = -1;
    };
    const last = Math.ceil(end / B);
    for (let b = Math.floor(offset / B); b < last; b++) {
      if (this.written.has(b)) {
        if (run === -1) run = b;
      } else if (run !== -1) {
        await flush(b);
      }
    }
    if (run !== -1) await flush(last);
    return buf;
  }

  /** The guest's write path; partial blocks are merged with what the guest reads there now. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.length);
    if (data.length === 0) return;
    const from = Math.floor(offset / B) * B;
    const to = Math.ceil((offset + data.length) / B) * B;
    let whole: Uint8Array = data;
    if (from !== offset || to !== offset + data.length) {
      const merged = await this.read(from, to - from);
      merged.set(data, offset - from);
      whole = merged;
    }
    await writeFully(this.fh, whole, from);
    // The data first: a crash in between loses a write that was never acknowledged, while
    // the other order would show the blocks before their data reached the overlay.
    if (this.map) {
      const rec = Buffer.alloc(16);
      rec.writeBigUInt64LE(BigInt(from / B), 0);
      rec.writeBigUInt64LE(BigInt(to / B), 8);
      await writeFully(this.map, rec, this.mapTail);
      this.mapTail += 16;
    }
    this.remember(from / B, to / B);
  }

  /** Makes the guest's writes durable: the data, then the map that says where it is. */
  async flush(): Promise<void> {
    await this.fh.datasync();
    await this.map?.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
    await this.map?.close();
  }
}
