/**
 * The redo file of a delta cycle on the replica: the verified, decompressed frames, made
 * durable before anything is applied. Written a few MiB at a time while the next are
 * received; a small cycle is also kept in memory so that applying it does not read it back.
 */
import { open, rm, type FileHandle } from "node:fs/promises";
import type { ReceivedFrame } from "./receiver.js";

const FLUSH_BYTES = 4 * 1024 * 1024;
const KEEP_IN_MEMORY_BYTES = 128 * 1024 * 1024;

export class RedoWriter {
  private pos = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private frames: ReceivedFrame[] | undefined = [];
  private frameBytes = 0;
  /** The write in flight: receiving goes on while it runs (one at a time, in order). */
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(file: string): Promise<RedoWriter> {
    return new RedoWriter(file, await open(file, "w"));
  }

  get bytes(): number {
    return this.pos + this.pendingBytes;
  }

  /** Appends a frame whose payload is stored as it will be written (not compressed). */
  async add(f: ReceivedFrame): Promise<void> {
    this.pending.push(f.headerBuf, f.payload);
    this.pendingBytes += f.headerBuf.length + f.payload.length;
    if (this.frames) {
      this.frameBytes += f.payload.length;
      if (this.frameBytes > KEEP_IN_MEMORY_BYTES) this.frames = undefined;
      else this.frames.push(f);
    }
    if (this.pendingBytes >= FLUSH_BYTES) {
      await this.writing;
      this.writing = this.flush();
      this.writing.catch(() => undefined); // awaited by the next add, finish or discard
    }
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const bufs = this.pending;
    const at = this.pos;
    const total = this.pendingBytes;
    this.pos += total;
    this.pending = [];
    this.pendingBytes = 0;
    let written = 0;
    while (written < total) {
      const { bytesWritten } = await this.fh.writev(written === 0 ? bufs : [Buffer.concat(bufs).subarray(written)], at + written);
      written += bytesWritten;
    }
  }

  /** Makes the file durable and closes it; returns the frames if they were kept in memory. */
  async finish(): Promise<ReceivedFrame[] | undefined> {
    try {
      await this.writing;
      await this.flush();
      await this.fh.sync();
    } finally {
      await this.fh.close();
    }
    return this.frames;
  }

  /** The cycle was rejected: nothing of it stays. */
  async discard(): Promise<void> {
    await this.writing.catch(() => undefined);
    await this.fh.close().catch(() => undefined);
    await rm(this.file, { force: true });
  }
}
