/** Reads exact byte counts from a socket, keeping received chunks without copying them twice. */
import type { Socket } from "node:net";

export class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private wake: (() => void) | undefined;
  private ended: Error | undefined;

  constructor(sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
      this.wake?.();
    });
    sock.on("close", () => this.end(new Error("connection closed")));
    sock.on("error", (err) => this.end(err));
  }

  end(err: Error): void {
    this.ended ??= err;
    this.wake?.();
  }

  get error(): Error | undefined {
    return this.ended;
  }

  /** Exactly n bytes, or undefined when the connection ended first. */
  async take(n: number): Promise<Buffer | undefined> {
    if (n === 0) return Buffer.alloc(0);
    while (this.length < n) {
      if (this.ended) return undefined;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.length -= n;
    return out;
  }
}
