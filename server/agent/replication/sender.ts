/**
 * Turns a frozen cycle into the frame stream: reads changed runs as of the freeze, splits
 * zero blocks out, compresses in worker threads, and yields frames in order while a few
 * chunks are prepared ahead (reading, compressing and sending overlap).
 */
import type { FrozenCycle } from "../hypervisor/types.js";
import type { BufferPool } from "../util/buffer-pool.js";
import type { CodecPool, EncodedPiece } from "./codec-pool.js";
import { encodeFrame, FLAG_ZSTD, FrameType, HEADER_SIZE, type CycleMarks, type EndPayload } from "./frames.js";
import { endMacInput, streamMac, type StreamAuth } from "./stream-auth.js";

export interface SendOptions {
  relationshipId: string;
  seq: number;
  /** The cycle the replica must hold for this one to apply (-1: initial copy). */
  base: number;
  compress: boolean;
  marks: CycleMarks;
  /** HTTP mode: the end frame carries an HMAC of the stream under the shared token. */
  auth?: StreamAuth;
  chunkBytes?: number;
  lookahead?: number;
  /**
   * Read into the pool's buffers and reuse them: the consumer must be done with each yielded
   * buffer when it asks for the next one (PeerClient.stream waits for each write).
   */
  reuseBuffers?: boolean;
}

export interface SendStats {
  changedBytes: number;
  dataBytes: number;
  wireBytes: number;
  frames: number;
  /** Bytes of the disks framed so far, zero runs included (progress of a long cycle). */
  processedBytes?: number;
  /** HTTP mode: the stream's HMAC, which the replica's acknowledgement must cover. */
  mac?: string;
}

/** Up to chunkBytes of changed runs of one disk, encoded together in one worker task. */
interface Chunk {
  disk: number;
  compressed: boolean;
  pieces: Promise<EncodedPiece[]>;
  /** The pooled buffers the chunk was read, compressed and packed into, released once its frames are consumed. */
  buffers: [BufferPool, Buffer][];
}

/** Frames with payloads up to this size are packed into PACK_BYTES buffers, written together. */
const PACK_BELOW = 256 * 1024;
const PACK_BYTES = 1024 * 1024;

/** After a chunk that did not compress at all, this many are sent without trying. */
const INCOMPRESSIBLE_SKIP = 15;

export async function* cycleStream(cycle: FrozenCycle, pool: CodecPool, opts: SendOptions, stats: SendStats): AsyncGenerator<Buffer> {
  const chunkBytes = opts.chunkBytes ?? 1024 * 1024;
  const lookahead = opts.lookahead ?? 4;
  const mac = opts.auth ? streamMac(opts.auth.token, { relationshipId: opts.relationshipId, seq: opts.seq, base: opts.base, nonce: opts.auth.nonce }) : undefined;
  stats.changedBytes = cycle.disks.reduce((n, d) => n + d.changedBytes, 0);

  // Incompressible data (encrypted, already compressed) costs a compression attempt per
  // chunk for nothing: after a miss, skip a while, then probe again.
  let skipCompression = 0;
  function* chunks(): Generator<Chunk> {
    for (const disk of cycle.disks) {
      const maxBlocks = Math.max(1, Math.floor(chunkBytes / disk.blockSize));
      let batch: [number, number][] = [];
      let blocks = 0;
      const flush = (): Chunk => {
        const runs = batch;
        const bytes = blocks * disk.blockSize;
        batch = [];
        blocks = 0;
        const compress = opts.compress && skipCompression === 0;
        if (skipCompression > 0) skipCompression--;
        const buffer = opts.reuseBuffers ? pool.sharedBuffers.acquire(bytes) : undefined;
        const compressed = opts.reuseBuffers && compress ? pool.sharedBuffers.acquire(bytes) : undefined;
        let at = 0;
        const reads = runs.map(([from, to]) => {
          const into = buffer?.subarray(at, (at += (to - from) * disk.blockSize));
          return disk.read(from, to, into).then((data) => ({ offset: from * disk.blockSize, data }));
        });
        const pieces = Promise.all(reads).then((read) => pool.encode(read, disk.blockSize, compress, compressed));
        pieces.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
        const buffers: [BufferPool, Buffer][] = [];
        for (const b of [buffer, compressed]) if (b) buffers.push([pool.sharedBuffers, b]);
        return { disk: disk.index, compressed: compress, pieces, buffers };
      };
      for (const run of disk.runs(maxBlocks)) {
        if (blocks + run[1] - run[0] > maxBlocks) yield flush();
        batch.push(run);
        blocks += run[1] - run[0];
      }
      if (batch.length) yield flush();
    }
  }

  let index = 0;
  const emit = (buf: Buffer, signed = true) => {
    if (signed) mac?.update(buf);
    stats.wireBytes += buf.length;
    return buf;
  };
  const queue: Chunk[] = [];
  const source = chunks();
  try {
    for (;;) {
      while (queue.length < lookahead) {
        const next = source.next();
        if (next.done) break;
        queue.push(next.value);
      }
      const chunk = queue[0];
      if (!chunk) break;
      const pieces = await chunk.pieces;
      if (chunk.compressed && pieces.some((p) => !p.zero) && !pieces.some((p) => p.compressed)) skipCompression = INCOMPRESSIBLE_SKIP;
      // Small frames are packed together into one write (each write costs a TLS record and a
      // round through the event loop); a large payload goes out as it is, without a copy.
      const out: Buffer[] = [];
      let batch: Buffer | undefined;
      let filled = 0;
      const closeBatch = () => {
        if (batch && filled > 0) out.push(batch.subarray(0, filled));
        batch = undefined;
      };
      for (const p of pieces) {
        const type = p.zero ? FrameType.Zero : FrameType.Data;
        const payload = p.payload ? Buffer.from(p.payload.buffer, p.payload.byteOffset, p.payload.byteLength) : Buffer.alloc(0);
        const flags = p.compressed ? FLAG_ZSTD : 0;
        const header = encodeFrame({ type, flags, disk: chunk.disk, seq: opts.seq, index: index++, offset: p.offset, length: p.length }, payload);
        if (payload.length > PACK_BELOW) {
          closeBatch();
          out.push(header, payload);
        } else {
          if (batch && filled + HEADER_SIZE + payload.length > batch.length) closeBatch();
          if (!batch) {
            batch = opts.reuseBuffers ? pool.buffers.acquire(PACK_BYTES) : Buffer.allocUnsafe(PACK_BYTES);
            if (opts.reuseBuffers) chunk.buffers.push([pool.buffers, batch]);
            filled = 0;
          }
          filled += header.copy(batch, filled);
          filled += payload.copy(batch, filled);
        }
        if (!p.zero) stats.dataBytes += p.length;
      }
      closeBatch();
      for (const [i, buf] of out.entries()) {
        yield emit(buf);
        // Progress counts disk bytes whose frames went out (zero runs included).
        if (i === out.length - 1) stats.processedBytes = (stats.processedBytes ?? 0) + pieces.reduce((n, p) => n + p.length, 0);
      }
      // The consumer asked for more: it is done with this chunk's buffers.
      queue.shift();
      for (const [from, b] of chunk.buffers) from.release(b);
    }
  } finally {
    // Stopped early (an error, an abort): reads still filling pooled buffers finish first.
    for (const chunk of queue) {
      await chunk.pieces.catch(() => undefined);
      for (const [from, b] of chunk.buffers) from.release(b);
    }
    pool.trimBuffers();
  }
  stats.frames = index;
  const end: EndPayload = { frames: index, dataBytes: stats.dataBytes, relationshipId: opts.relationshipId, base: opts.base, marks: opts.marks, mac: null };
  if (mac) end.mac = stats.mac = mac.update(endMacInput(end)).digest("hex");
  const payload = Buffer.from(JSON.stringify(end));
  yield emit(encodeFrame({ type: FrameType.End, flags: 0, disk: 0, seq: opts.seq, index, offset: 0, length: 0 }, payload), false);
  yield emit(payload, false);
}
