/**
 * An undo log: the before-images of the blocks that cycles overwrote after a recovery point,
 * the first one per block only. The replica disk plus the undo logs from a point onwards
 * give back the disk as it was at that point.
 *
 *   entry header (32 bytes, little-endian)
 *     0 magic "RMU1"   4 disk index   5 reserved (3)   8 offset u64   16 length u32
 *     20 reserved u32  24 checksum u64: xxh3-64 of header bytes 0..24 and the data
 *   data (length bytes)
 *
 * Before-images are written and made durable before the new data touches the disk, and a
 * block already in the log is never recorded again: re-applying a cycle after a crash can
 * therefore never take the new data for a before-image. A tail torn by a crash can only
 * hold entries of a cycle whose writes had not started, and is cut off on open.
 */
import { constants } from "node:fs";
import { open, rm, type FileHandle } from "node:fs/promises";
import { xxh3 } from "@node-rs/xxhash";
import { readFully, writeFully } from "../../util/files.js";
import { BlockSet } from "./block-set.js";

const MAGIC = 0x31554d52; // "RMU1"
const HEADER = 32;
const MAX_ENTRY = 4 * 1024 * 1024;

interface Entry {
  offset: number;
  length: number;
  /** Where the data starts in the file. */
  at: number;
}

function checksum(header: Buffer, data: Uint8Array): bigint {
  const h = xxh3.Xxh3.withSeed(0n);
  h.update(header.subarray(0, 24));
  h.update(data);
  return h.digest();
}

export class UndoLog {
  private readonly recorded = new Map<number, BlockSet>();
  private readonly entries = new Map<number, Entry[]>();
  /** Sorted copies for readers; a copy, so that appends never reorder what a reader walks. */
  private readonly sorted = new Map<number, Entry[]>();
  private refs = 1;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private tail: number,
    readonly blockSize: number,
  ) {}

  /**
   * Opens (or creates) a log. The first `trustedBytes` were made durable and recorded as
   * such: only their headers are read. Past them every entry is verified, and the file is
   * cut at the first one that is torn.
   */
  static async open(path: string, trustedBytes: number, blockSize = 4096): Promise<UndoLog> {
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    const size = (await fh.stat()).size;
    const log = new UndoLog(path, fh, 0, blockSize);
    const header = Buffer.alloc(HEADER);
    let pos = 0;
    while (pos + HEADER <= size) {
      await readFully(fh, header, pos);
      if (header.readUInt32LE(0) !== MAGIC) break;
      const disk = header.readUInt8(4);
      const offset = Number(header.readBigUInt64LE(8));
      const length = header.readUInt32LE(16);
      if (length === 0 || length > MAX_ENTRY || length % blockSize !== 0 || offset % blockSize !== 0 || pos + HEADER + length > size) break;
      if (pos >= trustedBytes) {
        const data = await readFully(fh, Buffer.alloc(length), pos + HEADER);
        if (checksum(header, data) !== header.readBigUInt64LE(24)) break;
      }
      log.index(disk, { offset, length, at: pos + HEADER });
      pos += HEADER + length;
    }
    if (pos < trustedBytes) {
      await fh.close();
      throw new Error(`undo log ${path} is damaged inside its durable part (valid up to byte ${pos} of ${trustedBytes})`);
    }
    if (pos !== size) await fh.truncate(pos);
    log.tail = pos;
    return log;
  }

  /** Bytes in the log; everything below this is durable once record() returned. */
  get bytes(): number {
    return this.tail;
  }

  private index(disk: number, e: Entry): void {
    let set = this.recorded.get(disk);
    if (!set) this.recorded.set(disk, (set = new BlockSet()));
    set.addRange(e.offset / this.blockSize, (e.offset + e.length) / this.blockSize);
    let list = this.entries.get(disk);
    if (!list) this.entries.set(disk, (list = []));
    list.push(e);
    this.sorted.delete(disk);
  }

  /**
   * Records the before-images of [offset, offset + length) of a disk that are not in the log
   * yet, reading them with `readOld`, and makes them durable before returning.
   */
  async record(ranges: Iterable<{ disk: number; offset: number; length: number }>, readOld: (disk: number, offset: number, length: number) => Promise<Buffer>): Promise<number> {
    const added: [number, Entry][] = [];
    let bytes = 0;
    for (const r of ranges) {
      const from = Math.floor(r.offset / this.blockSize);
      const to = Math.ceil((r.offset + r.length) / this.blockSize);
      const have = this.recorded.get(r.disk);
      const runs = have ? [...have.missing(from, to)] : [[from, to] as [number, number]];
      for (const [a, b] of runs) {
        for (let off = a * this.blockSize; off < b * this.blockSize; off += MAX_ENTRY) {
          const length = Math.min(MAX_ENTRY, b * this.blockSize - off);
          const data = await readOld(r.disk, off, length);
          const header = Buffer.alloc(HEADER);
          header.writeUInt32LE(MAGIC, 0);
          header.writeUInt8(r.disk, 4);
          header.writeBigUInt64LE(BigInt(off), 8);
          header.writeUInt32LE(length, 16);
          header.writeBigUInt64LE(checksum(header, data), 24);
          await writeFully(this.fh, header, this.tail);
          await writeFully(this.fh, data, this.tail + HEADER);
          const e = { offset: off, length, at: this.tail + HEADER };
          this.tail += HEADER + length;
          bytes += length;
          added.push([r.disk, e]);
          // Ranges of one cycle may overlap: later ones must see these blocks as recorded.
          this.index(r.disk, e);
        }
      }
    }
    if (added.length) await this.fh.datasync();
    return bytes;
  }

  private sortedEntries(disk: number): Entry[] {
    let list = this.sorted.get(disk);
    if (!list) this.sorted.set(disk, (list = [...(this.entries.get(disk) ?? [])].sort((a, b) => a.offset - b.offset)));
    return list;
  }

  /** Copies the before-images that fall inside buf's range of the disk over buf. */
  async overlay(disk: number, offset: number, buf: Buffer): Promise<void> {
    const list = this.sortedEntries(disk);
    const end = offset + buf.length;
    // First entry that ends after offset (entries never overlap within one log).
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.offset + list[mid]!.length <= offset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length && list[i]!.offset < end; i++) {
      const e = list[i]!;
      const from = Math.max(e.offset, offset);
      const to = Math.min(e.offset + e.length, end);
      await readFully(this.fh, buf.subarray(from - offset, to - offset), e.at + (from - e.offset));
    }
  }

  /** Writes every before-image back onto the disks (restoring a point in place). */
  async copyTo(files: Map<number, FileHandle>): Promise<number> {
    let bytes = 0;
    for (const [disk, list] of this.entries) {
      const fh = files.get(disk);
      if (!fh) continue;
      for (const e of list) {
        await writeFully(fh, await readFully(this.fh, Buffer.allocUnsafe(e.length), e.at), e.offset);
        bytes += e.length;
      }
    }
    return bytes;
  }

  /** Readers keep a log open while they use it, even after it was pruned. */
  retain(): this {
    this.refs++;
    return this;
  }

  async release(): Promise<void> {
    if (--this.refs === 0) await this.fh.close();
  }

  /** Deletes the file; the open handle (and readers holding it) stay valid until released. */
  async remove(): Promise<void> {
    await rm(this.path, { force: true });
    await this.release();
  }
}
