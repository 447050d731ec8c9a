/** A fixed-size bitmap over blocks, with run iteration for turning dirty blocks into extents. */
export class Bitmap {
  readonly words: Uint32Array;

  constructor(readonly size: number, words?: Uint32Array) {
    this.words = words ?? new Uint32Array(Math.ceil(size / 32));
  }

  get(i: number): boolean {
    return ((this.words[i >>> 5]! >>> (i & 31)) & 1) === 1;
  }

  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }

  /** Sets blocks [from, to). */
  setRange(from: number, to: number): void {
    for (let i = from; i < to; ) {
      if ((i & 31) === 0 && i + 32 <= to) {
        this.words[i >>> 5] = 0xffffffff;
        i += 32;
      } else {
        this.set(i++);
      }
    }
  }

  setAll(): void {
    this.setRange(0, this.size);
  }

  clear(): void {
    this.words.fill(0);
  }

  or(other: Bitmap): void {
    for (let w = 0; w < this.words.length; w++) this.words[w]! |= other.words[w]!;
  }

  clone(): Bitmap {
    return new Bitmap(this.size, this.words.slice());
  }

  count(): number {
    let n = 0;
    for (let w of this.words) {
      w = w - ((w >>> 1) & 0x55555555);
      w = (w & 0x33333333) + ((w >>> 2) & 0x33333333);
      n += (((w + (w >>> 4)) & 0xf0f0f0f) * 0x1010101) >>> 24;
    }
    return n;
  }

  isEmpty(): boolean {
    return this.words.every((w) => w === 0);
  }

  /** Runs of set bits as [start, end) pairs, skipping empty words quickly. */
  *runs(maxRun = Number.MAX_SAFE_INTEGER): Generator<[number, number]> {
    let start = -1;
    for (let w = 0; w < this.words.length; w++) {
      const word = this.words[w]!;
      if (word === 0 && start < 0) continue;
      if (word === 0xffffffff && start >= 0 && w * 32 - start + 32 < maxRun) continue;
      for (let b = 0; b < 32; b++) {
        const i = w * 32 + b;
        if (i >= this.size) break;
        const bit = (word >>> b) & 1;
        if (bit && start < 0) start = i;
        else if (!bit && start >= 0) {
          yield [start, i];
          start = -1;
        }
        if (start >= 0 && i + 1 - start >= maxRun) {
          yield [start, i + 1];
          start = -1;
        }
      }
    }
    if (start >= 0) yield [start, this.size];
  }

  toBuffer(): Buffer {
    return Buffer.from(this.words.buffer, this.words.byteOffset, this.words.byteLength);
  }

  static fromBuffer(size: number, buf: Buffer): Bitmap {
    const words = new Uint32Array(Math.ceil(size / 32));
    Buffer.from(words.buffer).set(buf.subarray(0, words.byteLength));
    return new Bitmap(size, words);
  }
}
