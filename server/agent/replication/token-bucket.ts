/**
 * A token bucket limiting bytes per second, with a burst of one second's worth: replication
 * waits for tokens before each piece of a cycle goes out, so it keeps to the limit over time
 * however large its cycles are.
 */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(private bytesPerSecond: number) {
    this.tokens = bytesPerSecond;
  }

  get rate(): number {
    return this.bytesPerSecond;
  }

  setRate(bytesPerSecond: number): void {
    this.refill();
    this.bytesPerSecond = bytesPerSecond;
    this.tokens = Math.min(this.tokens, bytesPerSecond);
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }

  /** Waits until `bytes` may be sent (in pieces of at most a second's worth). */
  async take(bytes: number): Promise<void> {
    let left = bytes;
    while (left > 0) {
      this.refill();
      const grant = Math.min(left, Math.floor(this.tokens));
      if (grant > 0) {
        this.tokens -= grant;
        left -= grant;
        continue;
      }
      const want = Math.min(left, this.bytesPerSecond);
      await new Promise((r) => setTimeout(r, Math.max(5, Math.ceil(((want - this.tokens) / this.bytesPerSecond) * 1000))));
    }
  }
}

export const MiB = 1024 * 1024;

/** Under a limit, chunks go out in pieces of at most this much, so the rate stays even. */
const THROTTLED_PIECE = 64 * 1024;

/**
 * Passes a byte stream through every bucket in `buckets()` (looked up per chunk, so limits
 * change live); `sent` hears each piece as it is let through. Under a limit, a large chunk
 * (the sender packs small frames into 1 MiB) goes out in pieces, the same memory in order.
 */
export async function* throttled(source: AsyncIterable<Buffer>, buckets: () => TokenBucket[], sent: (bytes: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    const limits = buckets();
    const step = limits.length > 0 ? THROTTLED_PIECE : Math.max(1, chunk.length);
    let at = 0;
    do {
      const piece = chunk.subarray(at, at + step);
      for (const b of limits) await b.take(piece.length);
      sent(piece.length);
      yield piece;
      at += step;
    } while (at < chunk.length);
  }
}
