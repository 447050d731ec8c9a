/**
 * Writing verified frames into replica disks, a few writes in flight at once.
 *
 * Payloads in pooled buffers go to the disk with direct I/O (DirectFile): they skip the page
 * cache, whose fresh pages cost the kernel more than the disk itself on a virtual machine
 * (measured here: 2 GiB written in 1.7–2.7 s direct, 12–22 s through the cache), and leave the
 * cache to what the host actually reads.
 */
import { alignedBuffer } from "../util/buffer-pool.js";
import { DirectFile } from "../util/direct-file.js";
import type { CodecPool } from "./codec-pool.js";
import { FLAG_ZSTD, FrameError, FrameType } from "./frames.js";
import type { ReceivedFrame } from "./receiver.js";

/** Zeros in aligned memory (a fresh WebAssembly memory is zeroed), so that zero runs go direct too. */
const ZEROS = alignedBuffer(1024 * 1024);
/** Direct writes wait for the disk: enough in flight to keep it busy (agents get 16 I/O threads: agent-process.ts). */
const WRITES_IN_FLIGHT = 16;

export class DiskWriter {
  private inflight = new Set<Promise<void>>();
  private failure: unknown;

  private constructor(
    private readonly files: Map<number, DirectFile>,
    private readonly pool: CodecPool,
    /** Zero frames are skipped when the target was freshly emptied (initial copy). */
    private readonly skipZeros: boolean,
    /** Sizes the disks are given before they are made durable (files written from length 0). */
    private readonly sizes?: Map<number, number>,
  ) {}

  static async open(paths: Map<number, string>, pool: CodecPool, skipZeros: boolean, sizes?: Map<number, number>): Promise<DiskWriter> {
    const files = new Map<number, DirectFile>();
    for (const [i, p] of paths) files.set(i, await DirectFile.open(p, "r+"));
    return new DiskWriter(files, pool, skipZeros, sizes);
  }

  /** Takes the frame (and releases its payload once written). */
  async write(f: ReceivedFrame): Promise<void> {
    if (this.failure) {
      f.release?.();
      throw this.failure;
    }
    while (this.inflight.size >= WRITES_IN_FLIGHT) await Promise.race(this.inflight);
    const p = this.writeOne(f)
      .catch((err) => {
        this.failure ??= err;
      })
      .finally(() => f.release?.());
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async writeOne({ header: h, payload }: ReceivedFrame): Promise<void> {
    const target = this.files.get(h.disk)!;
    if (h.type === FrameType.Zero) {
      if (this.skipZeros) return;
      for (let done = 0; done < h.length; done += ZEROS.length) {
        await target.write(ZEROS.subarray(0, Math.min(ZEROS.length, h.length - done)), h.offset + done);
      }
      return;
    }
    if (!(h.flags & FLAG_ZSTD)) return target.write(payload, h.offset);
    let data: Buffer;
    try {
      data = this.pool.decode(payload, h.length, this.pool.buffers);
    } catch (err) {
      throw new FrameError(`frame ${h.index} does not decompress: ${(err as Error).message}`);
    }
    try {
      await target.write(data, h.offset);
    } finally {
      this.pool.buffers.release(data);
    }
  }

  /** Waits for every write, makes them durable, and closes the disks. */
  async finish(): Promise<void> {
    try {
      await Promise.all(this.inflight);
      if (this.failure) throw this.failure;
      for (const [i, { fh }] of this.files) {
        const size = this.sizes?.get(i);
        if (size !== undefined) await fh.truncate(size);
        await fh.datasync();
      }
    } finally {
      await this.close();
    }
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.inflight);
    await this.close();
  }

  private async close(): Promise<void> {
    for (const file of this.files.values()) await file.close();
  }
}
