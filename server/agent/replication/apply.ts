/** Writing verified frames into replica disks, a few writes in flight at once. */
import { open, type FileHandle } from "node:fs/promises";
import type { CodecPool } from "./codec-pool.js";
import { FLAG_ZSTD, FrameType } from "./frames.js";
import type { ReceivedFrame } from "./receiver.js";
import { writeFully } from "../util/files.js";

const ZEROS = Buffer.alloc(1024 * 1024);

export class DiskWriter {
  private inflight = new Set<Promise<void>>();
  private failure: unknown;

  private constructor(
    private readonly files: Map<number, FileHandle>,
    private readonly pool: CodecPool,
    /** Zero frames are skipped when the target was freshly emptied (initial copy). */
    private readonly skipZeros: boolean,
    /** Sizes the disks are given before they are made durable (files written from length 0). */
    private readonly sizes?: Map<number, number>,
  ) {}

  static async open(paths: Map<number, string>, pool: CodecPool, skipZeros: boolean, sizes?: Map<number, number>): Promise<DiskWriter> {
    const files = new Map<number, FileHandle>();
    for (const [i, p] of paths) files.set(i, await open(p, "r+"));
    return new DiskWriter(files, pool, skipZeros, sizes);
  }

  async write(f: ReceivedFrame): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.inflight.size >= 8) await Promise.race(this.inflight);
    const p = this.writeOne(f).catch((err) => {
      this.failure ??= err;
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async writeOne({ header: h, payload }: ReceivedFrame): Promise<void> {
    const fh = this.files.get(h.disk)!;
    if (h.type === FrameType.Zero) {
      if (this.skipZeros) return;
      for (let done = 0; done < h.length; done += ZEROS.length) {
        await writeFully(fh, ZEROS.subarray(0, Math.min(ZEROS.length, h.length - done)), h.offset + done);
      }
      return;
    }
    const data = h.flags & FLAG_ZSTD ? await this.pool.decode(payload, h.length) : payload;
    await writeFully(fh, data, h.offset);
  }

  /** Waits for every write, makes them durable, and closes the disks. */
  async finish(): Promise<void> {
    try {
      await Promise.all(this.inflight);
      if (this.failure) throw this.failure;
      for (const [i, fh] of this.files) {
        const size = this.sizes?.get(i);
        if (size !== undefined) await fh.truncate(size);
        await fh.datasync();
      }
    } finally {
      for (const fh of this.files.values()) await fh.close();
    }
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.inflight);
    for (const fh of this.files.values()) await fh.close().catch(() => undefined);
  }
}
