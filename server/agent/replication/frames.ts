/**
 * The replication stream: a cycle is a sequence of frames.
 *
 *   header (48 bytes, little-endian)
 *     0  magic "RMF1"          4  type (1 data, 2 zero run, 3 end)   5  flags (1 = zstd)
 *     6  disk index            7  reserved
 *     8  cycle sequence u64    16 frame index u32                    20 payload length u32
 *     24 offset u64            32 length u64 (bytes on the disk)
 *     40 checksum u64: xxh3-64 of header bytes 0..40 and the payload
 *   payload
 *
 * The checksum covers the cycle sequence and the frame index, so a frame replayed from
 * another cycle, or out of its place, fails verification like a corrupted one. The end
 * frame's JSON payload counts frames and bytes and, in HTTP mode, carries an HMAC of the
 * whole stream under the shared token: only TLS or that HMAC make tampering detectable.
 */
import { xxh3 } from "@node-rs/xxhash";
import { z } from "zod";
import type { BufferPool } from "../util/buffer-pool.js";

export const HEADER_SIZE = 48;
const MAGIC = 0x31464d52; // "RMF1"
export const MAX_PAYLOAD = 4 * 1024 * 1024;

export enum FrameType {
  Data = 1,
  Zero = 2,
  End = 3,
}
export const FLAG_ZSTD = 1;

export interface FrameHeader {
  type: FrameType;
  flags: number;
  disk: number;
  seq: number;
  index: number;
  payloadLength: number;
  offset: number;
  length: number;
  checksum: bigint;
}

/** What the primary decided about this cycle: a recovery point, and the settings in force. */
export const CycleMarks = z.strictObject({
  point: z.strictObject({ kind: z.enum(["standard", "application-consistent"]), at: z.iso.datetime() }).nullable(),
  recoveryHistory: z.number().int().min(0).max(24),
  frequencySeconds: z.number().int().min(1).max(86400),
  /** A resynchronization cycle (only differing blocks of a range); `final` ends the resync. */
  resync: z.strictObject({ final: z.boolean() }).nullable(),
  /** The primary is prepared for planned failover and this cycle carries its last changes. */
  prepared: z.boolean(),
  /**
   * Where the replica reaches the primary's replication API (failover checks, handover,
   * reverse replication): its port for the relationship's authentication, or null.
   */
  returnPath: z.strictObject({ port: z.number().int().min(1).max(65535), authMode: z.enum(["https", "http"]) }).nullable(),
});
export type CycleMarks = z.infer<typeof CycleMarks>;

export const EndPayload = z.strictObject({
  frames: z.number().int().min(0),
  dataBytes: z.number().int().min(0),
  relationshipId: z.string(),
  base: z.number().int().min(-1),
  marks: CycleMarks,
  mac: z.string().nullable(),
});
export type EndPayload = z.infer<typeof EndPayload>;

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

function checksum(header: Buffer, payload: Uint8Array): bigint {
  const h = xxh3.Xxh3.withSeed(0n);
  h.update(header.subarray(0, 40));
  h.update(payload);
  return h.digest();
}

export function encodeFrame(h: Omit<FrameHeader, "checksum" | "payloadLength">, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt8(h.type, 4);
  header.writeUInt8(h.flags, 5);
  header.writeUInt8(h.disk, 6);
  header.writeBigUInt64LE(BigInt(h.seq), 8);
  header.writeUInt32LE(h.index, 16);
  header.writeUInt32LE(payload.length, 20);
  header.writeBigUInt64LE(BigInt(h.offset), 24);
  header.writeBigUInt64LE(BigInt(h.length), 32);
  header.writeBigUInt64LE(checksum(header, payload), 40);
  return header;
}

export function decodeHeader(buf: Buffer): FrameHeader {
  if (buf.readUInt32LE(0) !== MAGIC) throw new FrameError("bad frame magic: the stream is corrupt or not a replication stream");
  const payloadLength = buf.readUInt32LE(20);
  if (payloadLength > MAX_PAYLOAD) throw new FrameError(`frame payload of ${payloadLength} bytes exceeds ${MAX_PAYLOAD}`);
  return {
    type: buf.readUInt8(4),
    flags: buf.readUInt8(5),
    disk: buf.readUInt8(6),
    seq: Number(buf.readBigUInt64LE(8)),
    index: buf.readUInt32LE(16),
    payloadLength,
    offset: Number(buf.readBigUInt64LE(24)),
    length: Number(buf.readBigUInt64LE(32)),
    checksum: buf.readBigUInt64LE(40),
  };
}

export function verifyFrame(headerBuf: Buffer, h: FrameHeader, payload: Uint8Array): void {
  if (checksum(headerBuf, payload) !== h.checksum) {
    throw new FrameError(`checksum mismatch in frame ${h.index} (disk ${h.disk}, offset ${h.offset}): data corrupted in transit`);
  }
}

export interface ReadFrame {
  header: FrameHeader;
  headerBuf: Buffer;
  payload: Buffer;
  /** With a pool: gives the payload's buffer back to it (the consumer's duty once done). */
  release?: () => void;
}

/**
 * Reads whole frames from a byte stream, verifying each checksum as it arrives. With a pool,
 * each payload is gathered into one of its page-aligned buffers (direct I/O can write it),
 * which the consumer releases when done with it; and every chunk of the source has been copied
 * from by the time the next one is asked for, so the source may reuse its buffers.
 */
export async function* readFrames(source: AsyncIterable<Buffer>, payloads?: BufferPool): AsyncGenerator<ReadFrame> {
  if (payloads) return yield* readFramesInto(source, payloads);
  let chunks: Buffer[] = [];
  let buffered = 0;
  const take = (n: number): Buffer => {
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    chunks = rest.length ? [rest] : [];
    buffered -= n;
    return out;
  };
  let header: FrameHeader | undefined;
  let headerBuf: Buffer | undefined;
  for await (const chunk of source) {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (!header) {
        if (buffered < HEADER_SIZE) break;
        headerBuf = Buffer.from(take(HEADER_SIZE));
        header = decodeHeader(headerBuf);
      }
      if (buffered < header.payloadLength) break;
      const payload = take(header.payloadLength);
      verifyFrame(headerBuf!, header, payload);
      yield { header, headerBuf: headerBuf!, payload };
      header = undefined;
    }
  }
  if (header || buffered > 0) throw new FrameError("stream ended inside a frame: the transfer was truncated");
}

/** readFrames with a pool: header and payload bytes are copied out of each chunk as it comes. */
async function* readFramesInto(source: AsyncIterable<Buffer>, pool: BufferPool): AsyncGenerator<ReadFrame> {
  let headerBuf = Buffer.alloc(HEADER_SIZE);
  let headerBytes = 0;
  let header: FrameHeader | undefined;
  let payload: Buffer | undefined;
  let payloadBytes = 0;
  try {
    for await (const chunk of source) {
      for (let at = 0; at < chunk.length; ) {
        if (!header) {
          const n = chunk.copy(headerBuf, headerBytes, at, at + HEADER_SIZE - headerBytes);
          headerBytes += n;
          at += n;
          if (headerBytes < HEADER_SIZE) break;
          header = decodeHeader(headerBuf);
          payload = header.payloadLength > 0 ? pool.acquire(header.payloadLength) : Buffer.alloc(0);
          payloadBytes = 0;
        }
        const n = chunk.copy(payload!, payloadBytes, at, at + header.payloadLength - payloadBytes);
        payloadBytes += n;
        at += n;
        if (payloadBytes < header.payloadLength) break;
        verifyFrame(headerBuf, header, payload!);
        const done = payload!;
        const frame: ReadFrame = { header, headerBuf, payload: done };
        if (done.length) frame.release = () => pool.release(done);
        header = undefined;
        payload = undefined;
        headerBuf = Buffer.alloc(HEADER_SIZE);
        headerBytes = 0;
        yield frame;
      }
    }
    if (header || headerBytes > 0) throw new FrameError("stream ended inside a frame: the transfer was truncated");
  } finally {
    // A frame cut short (an error, a truncated stream, a consumer that stopped) gives its buffer back.
    if (payload?.length) pool.release(payload);
  }
}
