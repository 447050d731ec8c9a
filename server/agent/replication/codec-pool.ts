/** The pool of worker threads that compress and decompress frames. */
import { Piscina } from "piscina";
import { availableParallelism } from "node:os";
import { decompress } from "zstd-napi";

/** Below this a worker round trip costs more than decompressing on the spot. */
const INLINE_DECODE_BYTES = 256 * 1024;

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

  /** Zero detection and compression of runs of disk data; pieces carry absolute offsets. */
  encode(runs: { offset: number; data: Buffer }[], blockSize: number, compress: boolean, level = 1): Promise<EncodedPiece[]> {
    const transferList = runs.filter((r) => r.data.byteOffset === 0 && r.data.byteLength === r.data.buffer.byteLength).map((r) => r.data.buffer);
    return this.pool.run({ op: "encode", runs, blockSize, compress, level }, { transferList: transferList as ArrayBuffer[] });
  }

  async decode(payload: Uint8Array, length: number): Promise<Buffer> {
    if (length <= INLINE_DECODE_BYTES) {
      const out = decompress(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
      if (out.length !== length) throw new Error(`decompressed ${out.length} bytes, frame says ${length}`);
      return out;
    }
    const out = (await this.pool.run({ op: "decode", payload, length })) as Uint8Array;
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
