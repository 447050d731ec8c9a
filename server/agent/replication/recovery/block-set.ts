/**
 * A set of disk blocks that only grows, sparse in memory: 4 KiB of bits per 128 MiB of disk
 * that has blocks in it. An undo log uses one per disk to know which blocks already have
 * their before-image, however large the disk.
 */
const CHUNK_BITS = 32768;
const CHUNK_WORDS = CHUNK_BITS / 32;

export class BlockSet {
  private readonly chunks = new Map<number, Uint32Array>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(block: number): boolean {
    const c = this.chunks.get(Math.floor(block / CHUNK_BITS));
    if (!c) return false;
    const i = block % CHUNK_BITS;
    return ((c[i >>> 5]! >>> (i & 31)) & 1) === 1;
  }

  /** Adds blocks [from, to). */
  addRange(from: number, to: number): void {
    for (let b = from; b < to; b++) {
      const key = Math.floor(b / CHUNK_BITS);
      let c = this.chunks.get(key);
      if (!c) this.chunks.set(key, (c = new Uint32Array(CHUNK_WORDS)));
      const i = b % CHUNK_BITS;
      const bit = 1 << (i & 31);
      if ((c[i >>> 5]! & bit) === 0) {
        c[i >>> 5]! |= bit;
        this.count++;
      }
    }
  }

  /** The runs of [from, to) that are not in the set, in order. */
  *missing(from: number, to: number): Generator<[number, number]> {
    let start = -1;
    for (let b = from; b < to; b++) {
      // Whole absent chunks are skipped in one step.
      if (b % CHUNK_BITS === 0 && !this.chunks.has(b / CHUNK_BITS)) {
        if (start === -1) start = b;
        b = Math.min(to, b + CHUNK_BITS) - 1;
        continue;
      }
      if (this.has(b)) {
        if (start !== -1) yield [start, b];
        start = -1;
      } else if (start === -1) {
        start = b;
      }
    }
    if (start !== -1) yield [start, to];
  }
}
