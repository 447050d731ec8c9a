/** The pool of worker threads that compress and decompress frames. */
import { Piscina } from "piscina";
import { availableParallelism } from "node:os";

export interface EncodedPiece {
  zero: boolean;
  offset: number;
  length: number;
  payload?: Uint8Array;
  compressed?: boolean;
}

export class CodecPool {
  private readonly pool = new Piscina({
    filename: new URL("./codec-worker.mjs", import.meta.url).href,
    minThreads: 1,
    maxThreads: Math.max(1, availableParallelism()),
    idleTimeout: 30_000,
  });

  encode(data: Buffer, blockSize: number, compress: boolean, level = 1): Promise<EncodedPiece[]> {
    return this.pool.run({ op: "encode", data, blockSize, compress, level });
  }

  async decode(payload: Uint8Array, length: number): Promise<Buffer> {
    const out = (await this.pool.run({ op: "decode", payload, length })) as Uint8Array;
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
