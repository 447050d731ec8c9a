/** The pool of worker threads that compress frames; decompression runs on the spot. */
import { Piscina } from "piscina";
import { availableParallelism } from "node:os";
import zstdBinding from "zstd-napi/binding.js";
import { alignedBuffer, BufferPool } from "../util/buffer-pool.js";


/**
 * zstd level 1. The fast level -1 was tried: faster on finely mixed data, slower on the
 * compression bench's data, same ratio on both, and no faster initial copy (`npm run bench`).
 */
export const STREAM_ZSTD_LEVEL = 1;

export interface EncodedPiece {
  zero: boolean;
  offset: number;
  length: number;
  payload?: Uint8Array;
  compressed?: boolean;
}

const ZERO = Buffer.alloc(64 * 1024);

function isZeroRange(buf: Buffer, from: number, to: number): boolean {
  for (let off = from; off < to; off += ZERO.length) {
    const end = Math.min(off + ZERO.length, to);
    if (ZERO.compare(buf, off, end, 0, end - off) !== 0) return false;
  }
  return true;
}

/** Alternating runs of all-zero and data blocks covering the whole buffer (any block size). */
export function splitZeroRuns(buf: Buffer, blockSize: number): { zero: boolean; start: number; end: number }[] {
  const out: { zero: boolean; start: number; end: number }[] = [];
  for (let off = 0; off < buf.length; off += blockSize) {
    const end = Math.min(off + blockSize, buf.length);
    const zero = isZeroRange(buf, off, end);
    const last = out[out.length - 1];
    if (last && last.zero === zero) last.end = end;
    else out.push({ zero, start: off, end });
  }
  return out;
}

const KEEP_IDLE_BYTES = 32 * 1024 * 1024;

/** Frames are cut at 1 MiB of disk data; pooled buffers hold one frame's payload. */
export const FRAME_BUFFER_BYTES = 1024 * 1024;

export class CodecPool {
  /** Aligned, reused buffers for frame payloads: received frames, decoded data, the redo file. */
  readonly buffers = new BufferPool(FRAME_BUFFER_BYTES);
  /** The same in shared memory, for what the compression workers read or write: a sender's chunks. */
  readonly sharedBuffers = new BufferPool(FRAME_BUFFER_BYTES, true);
  private readonly dctx = new zstdBinding.DCtx();

  private readonly pool = new Piscina({
    filename: new URL("./codec-worker.mjs", import.meta.url).href,
    minThreads: 1,
    maxThreads: Math.max(1, availableParallelism()),
    idleTimeout: 30_000,
  });

  /**
   * Splits runs of disk data into zero runs and data runs (on this thread: a memcmp is far
   * cheaper than a worker round trip) and compresses the data runs in a worker, into `into`
   * when given (as large as the runs together). Pieces carry absolute offsets, in disk order.
   */
  async encode(runs: { offset: number; data: Buffer }[], blockSize: number, compress: boolean, into?: Buffer, level = STREAM_ZSTD_LEVEL): Promise<EncodedPiece[]> {
    const pieces: EncodedPiece[] = [];
    const data: { offset: number; data: Buffer; at: number }[] = [];
    for (const run of runs) {
      for (const part of splitZeroRuns(run.data, blockSize)) {
        const piece: EncodedPiece = { zero: part.zero, offset: run.offset + part.start, length: part.end - part.start };
        if (!part.zero) data.push({ offset: piece.offset, data: run.data.subarray(part.start, part.end), at: pieces.length });
        pieces.push(piece);
      }
    }
    if (data.length === 0) return pieces;
    if (!compress) {
      for (const d of data) Object.assign(pieces[d.at]!, { payload: d.data, compressed: false });
      return pieces;
    }
    // The worker writes into `into` (pooled shared memory) or a fresh shared buffer, in place.
    const out = into ?? alignedBuffer(Math.max(1, data.reduce((n, d) => n + d.data.length, 0)), true);
    const parts = data.map((d) => d.data);
    const results = (await this.pool.run({ op: "compress", parts, out, level })) as ({ compressed: false } | { compressed: true; at: number; length: number })[];
    results.forEach((r, i) => {
      const d = data[i]!;
      Object.assign(pieces[d.at]!, r.compressed ? { payload: out.subarray(r.at, r.at + r.length), compressed: true } : { payload: d.data, compressed: false });
    });
    return pieces;
  }

  /**
   * Decompresses on the spot: zstd decodes a frame in about a millisecond, less than a worker
   * round trip costs in copies of the payload and the result (measured on the replica: a
   * quarter less CPU for a compressed initial copy). With `into`, the result is one of its
   * buffers, which the caller releases.
   */
  decode(payload: Uint8Array, length: number, into?: BufferPool): Buffer {
    const out = into ? into.acquire(length) : Buffer.allocUnsafe(length);
    try {
      const n = this.dctx.decompress(out, payload);
      if (n !== length) throw new Error(`decompressed ${n} bytes, frame says ${length}`);
    } catch (err) {
      if (into) into.release(out);
      throw err;
    }
    return out;
  }

  /** After a cycle: lets go of buffer memory beyond 32 MiB idle in each pool (a large cycle's). */
  trimBuffers(): void {
    this.buffers.trim(KEEP_IDLE_BYTES);
    this.sharedBuffers.trim(KEEP_IDLE_BYTES);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
