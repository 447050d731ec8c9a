/**
 * A file opened twice: once for direct I/O (O_DIRECT), where the filesystem allows it, and once
 * through the page cache. Whole aligned blocks from page-aligned buffers go direct; anything else
 * (an unaligned tail, a filesystem that refuses direct I/O) goes through the cache. Linux keeps
 * the two coherent; `fdatasync` on either makes both durable.
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { ALIGN, isAligned } from "./buffer-pool.js";
import { writeFully } from "./files.js";

export class DirectFile {
  /** Cleared when the filesystem refuses a direct write after all. */
  private useDirect: boolean;

  private constructor(
    /** The page-cache handle (truncate, datasync, unaligned writes). */
    readonly fh: FileHandle,
    private readonly direct: FileHandle | undefined,
  ) {
    this.useDirect = Boolean(direct);
  }

  /** Opens an existing file ("r+") or creates an empty one ("w"). */
  static async open(path: string, mode: "r+" | "w"): Promise<DirectFile> {
    const fh = await open(path, mode);
    // tmpfs and a few others refuse O_DIRECT: the page cache it is.
    const direct = await open(path, constants.O_WRONLY | constants.O_DIRECT).catch(() => undefined);
    return new DirectFile(fh, direct);
  }

  async write(data: Buffer, offset: number): Promise<void> {
    if (this.direct && this.useDirect && isAligned(data) && offset % ALIGN === 0 && data.length % ALIGN === 0) {
      try {
        return await writeFully(this.direct, data, offset);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
        this.useDirect = false; // opened for direct I/O, yet its writes are refused
      }
    }
    await writeFully(this.fh, data, offset);
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await this.direct?.close().catch(() => undefined);
  }
}
