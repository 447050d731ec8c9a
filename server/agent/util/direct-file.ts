/**
 * A file opened twice: once for direct I/O (O_DIRECT), where the filesystem allows it, and once
 * through the page cache. Whole aligned blocks from page-aligned buffers go direct; anything else
 * (an unaligned tail, a filesystem that refuses direct I/O) goes through the cache. Linux keeps
 * the two coherent; `fdatasync` on either makes both durable.
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { ALIGN, alignedBuffer, isAligned } from "./buffer-pool.js";
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

const READ_BYTES = 1024 * 1024;

/**
 * The first `bytes` of a file, read with direct I/O where the filesystem allows it (past the page
 * cache, as it was written), in chunks of up to 1 MiB, the next read under way while a chunk is
 * consumed. Two buffers take turns: a chunk is overwritten once the consumer asked for the one
 * after it (readFrames with a pool is done with each chunk by then). A file shorter than `bytes`
 * is an error, or reads as zeros past its end with `zerosPastEnd`.
 */
export async function* readFileChunks(path: string, bytes: number, zerosPastEnd = false): AsyncGenerator<Buffer> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_DIRECT);
  } catch {
    fh = await open(path, "r");
  }
  // A block more: a read through the page cache may stop short of a block, the next asks for whole ones.
  const buffers = [alignedBuffer(READ_BYTES + ALIGN), alignedBuffer(READ_BYTES + ALIGN)];
  // Whole blocks at block offsets: the file is padded to a block, or ends where a direct read may stop short.
  const readAt = async (buf: Buffer, at: number): Promise<Buffer> => {
    const want = Math.min(READ_BYTES, bytes - at);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, Math.ceil((want - got) / ALIGN) * ALIGN, at + got);
      if (bytesRead === 0) {
        if (!zerosPastEnd) throw new Error(`${path} ends at ${at + got} bytes, before the ${bytes} expected`);
        buf.fill(0, got, want); // a sparse image shorter than its disk reads as zeros
        break;
      }
      got += bytesRead;
    }
    return buf.subarray(0, want);
  };
  let next = bytes > 0 ? readAt(buffers[0]!, 0) : undefined;
  try {
    let turn = 0;
    for (let at = 0; next; at += READ_BYTES) {
      const chunk = await next;
      turn ^= 1;
      next = at + READ_BYTES < bytes ? readAt(buffers[turn]!, at + READ_BYTES) : undefined;
      next?.catch(() => undefined); // awaited at the next turn
      yield chunk;
    }
  } finally {
    await next?.catch(() => undefined); // a read under way still fills a buffer
    await fh.close();
  }
}

/** SHA-256 of a disk image's first `sizeBytes` (zeros past its end), read as readFileChunks reads. */
export async function hashFile(path: string, sizeBytes: number): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of readFileChunks(path, sizeBytes, true)) h.update(chunk);
  return h.digest("hex");
}
