/**
 * Before-images of blocks the guest overwrote while a cycle was being read. Kept in memory
 * up to a cap, then in a scratch file, so a huge frozen set under a busy guest cannot run
 * the agent out of memory.
 */
import { open, rm, type FileHandle } from "node:fs/promises";
import { readFully, writeFully } from "../util/files.js";

export class CbwStore {
  private readonly mem = new Map<number, Buffer>();
  private memBytes = 0;
  private file: Promise<FileHandle> | undefined;
  private readonly onFile = new Map<number, number>();
  /** Blocks whose spill write has not finished: get() waits for them. */
  private readonly writing = new Map<number, Promise<void>>();
  private fileEnd = 0;

  constructor(
    private readonly spillPath: string,
    private readonly blockSize: number,
    private readonly memCap = 64 * 1024 * 1024,
  ) {}

  has(block: number): boolean {
    return this.mem.has(block) || this.onFile.has(block) || this.writing.has(block);
  }

  get size(): number {
    return this.mem.size + this.onFile.size;
  }

  async put(block: number, data: Buffer): Promise<void> {
    if (this.memBytes + data.length <= this.memCap) {
      this.mem.set(block, data);
      this.memBytes += data.length;
      return;
    }
    this.file ??= open(this.spillPath, "w+");
    const at = this.fileEnd;
    this.fileEnd += this.blockSize;
    const done = this.file.then((fh) => writeFully(fh, data, at));
    this.writing.set(block, done);
    try {
      await done;
      this.onFile.set(block, at);
    } finally {
      this.writing.delete(block);
    }
  }

  async get(block: number): Promise<Buffer | undefined> {
    const inMem = this.mem.get(block);
    if (inMem) return inMem;
    await this.writing.get(block);
    const at = this.onFile.get(block);
    if (at === undefined || !this.file) return undefined;
    return readFully(await this.file, Buffer.allocUnsafe(this.blockSize), at);
  }

  delete(block: number): void {
    const inMem = this.mem.get(block);
    if (inMem) {
      this.memBytes -= inMem.length;
      this.mem.delete(block);
    }
    this.onFile.delete(block);
  }

  async dispose(): Promise<void> {
    this.mem.clear();
    this.onFile.clear();
    await Promise.allSettled(this.writing.values());
    if (this.file) {
      await (await this.file).close();
      this.file = undefined;
      await rm(this.spillPath, { force: true });
    }
  }
}
