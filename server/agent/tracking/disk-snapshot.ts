/**
 * A frozen, point-in-time view of one disk's changed blocks while the guest keeps writing.
 *
 * Every block of the frozen set is in one of these states: pending (still on disk as it
 * was at the freeze), being read by the engine (guest writes to it wait), preserved (the
 * guest overwrote it and its before-image is in the CBW store), or done (already read).
 */
import type { FileHandle } from "node:fs/promises";
import { Bitmap } from "./bitmap.js";
import { CbwStore } from "./cbw-store.js";
import { readFully } from "../util/files.js";

export class DiskSnapshot {
  readonly done: Bitmap;
  private readonly reading = new Map<number, Promise<void>>();
  private readonly preserving = new Map<number, Promise<void>>();
  private readonly cbw: CbwStore;

  constructor(
    private readonly fh: FileHandle,
    readonly bitmap: Bitmap,
    readonly blockSize: number,
    spillPath: string,
  ) {
    this.done = new Bitmap(bitmap.size);
    this.cbw = new CbwStore(spillPath, blockSize);
  }

  get changedBytes(): number {
    return this.bitmap.count() * this.blockSize;
  }

  /** Runs of frozen blocks, at most maxBlocks each. */
  runs(maxBlocks: number): Generator<[number, number]> {
    return this.bitmap.runs(maxBlocks);
  }

  private needsPreserving(b: number): boolean {
    return this.bitmap.get(b) && !this.done.get(b) && !this.cbw.has(b) && !this.preserving.has(b);
  }

  /** Called on the guest's write path, before blocks [from, to) are overwritten. */
  async preserve(from: number, to: number): Promise<void> {
    const waits: Promise<void>[] = [];
    for (let b = from; b < to; b++) {
      const r = this.reading.get(b);
      if (r) waits.push(r);
    }
    if (waits.length) await Promise.all(waits);

    let b = from;
    while (b < to) {
      if (!this.needsPreserving(b)) {
        b++;
        continue;
      }
      const start = b;
      while (b < to && this.needsPreserving(b)) b++;
      await this.copyOut(start, b);
    }
  }

  private async copyOut(from: number, to: number): Promise<void> {
    let finish!: () => void;
    const mark = new Promise<void>((r) => (finish = r));
    for (let b = from; b < to; b++) this.preserving.set(b, mark);
    try {
      const old = await readFully(this.fh, Buffer.allocUnsafe((to - from) * this.blockSize), from * this.blockSize);
      for (let b = from; b < to; b++) {
        const off = (b - from) * this.blockSize;
        await this.cbw.put(b, Buffer.from(old.subarray(off, off + this.blockSize)));
      }
    } finally {
      for (let b = from; b < to; b++) this.preserving.delete(b);
      finish();
    }
  }

  /** Reads frozen blocks [from, to) as they were at the freeze (into `into`'s start, if given). */
  async read(from: number, to: number, into?: Buffer): Promise<Buffer> {
    let finish!: () => void;
    const mark = new Promise<void>((r) => (finish = r));
    const pendingPreserves: Promise<void>[] = [];
    for (let b = from; b < to; b++) {
      const p = this.preserving.get(b);
      if (p) pendingPreserves.push(p);
      else if (!this.cbw.has(b)) this.reading.set(b, mark);
    }
    try {
      const bytes = (to - from) * this.blockSize;
      const buf = await readFully(this.fh, into ? into.subarray(0, bytes) : Buffer.allocUnsafeSlow(bytes), from * this.blockSize);
      // Copy-outs that began while the disk was being read (blocks already in the CBW store
      // when this read started) must finish before their before-images are taken.
      for (let b = from; b < to; b++) {
        const p = this.preserving.get(b);
        if (p) pendingPreserves.push(p);
      }
      await Promise.all(pendingPreserves);
      for (let b = from; b < to; b++) {
        if (!this.cbw.has(b)) continue;
        const before = await this.cbw.get(b);
        before?.copy(buf, (b - from) * this.blockSize);
        this.cbw.delete(b);
      }
      for (let b = from; b < to; b++) this.done.set(b);
      return buf;
    } finally {
      for (let b = from; b < to; b++) if (this.reading.get(b) === mark) this.reading.delete(b);
      finish();
    }
  }

  async dispose(): Promise<void> {
    await this.cbw.dispose();
  }
}
