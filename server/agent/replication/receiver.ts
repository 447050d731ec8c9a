/**
 * The replica's side of a cycle: every frame is checked (checksum, cycle, order, bounds)
 * before anything is written; the end frame proves nothing was dropped or injected.
 */
import { z } from "zod";
import { BufferPool } from "../util/buffer-pool.js";
import { EndPayload, FLAG_ZSTD, FrameError, FrameType, MAX_PAYLOAD, readFrames, type CycleMarks, type ReadFrame } from "./frames.js";
import { endMacInput, macMatches, streamMac, type StreamAuth } from "./stream-auth.js";

export interface ReceiveExpectations {
  relationshipId: string;
  seq: number;
  base: number;
  disks: Map<number, number>;
  /** HTTP mode: verify the stream's HMAC under the shared token and this request's nonce. */
  auth?: StreamAuth;
  blockSize?: number;
  /** Payloads gathered into this pool's aligned buffers (a pool of its own if none); the sink releases each frame. */
  payloads?: BufferPool;
}

export type ReceivedFrame = ReadFrame;

export interface ReceiveResult {
  frames: number;
  dataBytes: number;
  wireBytes: number;
  /** HTTP mode: the verified stream HMAC, covered by the acknowledgement. */
  mac?: string;
  marks: CycleMarks;
}

/**
 * Verifies the stream frame by frame and hands each data or zero frame to `sink`, which then
 * owns it (and releases it, when its payload is pooled).
 */
export async function receiveCycle(
  source: AsyncIterable<Buffer>,
  expect: ReceiveExpectations,
  sink: (f: ReceivedFrame) => Promise<void>,
): Promise<ReceiveResult> {
  const blockSize = expect.blockSize ?? 512;
  const mac = expect.auth ? streamMac(expect.auth.token, { relationshipId: expect.relationshipId, seq: expect.seq, base: expect.base, nonce: expect.auth.nonce }) : undefined;
  let index = 0;
  let dataBytes = 0;
  let wireBytes = 0;
  /** Checks one frame; returns the result when it is the end frame. */
  const check = (f: ReceivedFrame): ReceiveResult | undefined => {
    const h = f.header;
    if (h.seq !== expect.seq) throw new FrameError(`frame belongs to cycle ${h.seq}, not ${expect.seq}: replayed or misdirected data`);
    if (h.index !== index) throw new FrameError(`frame ${h.index} arrived where frame ${index} was expected: replayed, dropped or reordered data`);
    index++;
    if (h.type === FrameType.End) {
      let end: EndPayload;
      try {
        end = EndPayload.parse(JSON.parse(f.payload.toString("utf8")));
      } catch (err) {
        const why = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ") : "not JSON";
        throw new FrameError(`end frame is malformed: ${why}`);
      }
      if (end.frames !== h.index || end.dataBytes !== dataBytes) {
        throw new FrameError(`end frame counts ${end.frames} frames and ${end.dataBytes} bytes, received ${h.index} and ${dataBytes}`);
      }
      if (end.relationshipId !== expect.relationshipId || end.base !== expect.base) {
        throw new FrameError(`stream belongs to relationship ${end.relationshipId} based on cycle ${end.base}, not ${expect.relationshipId} based on ${expect.base}: misdirected or replayed data`);
      }
      let macHex: string | undefined;
      if (mac) {
        macHex = mac.update(endMacInput(end)).digest("hex");
        if (!macMatches(macHex, end.mac)) throw new FrameError("stream signature does not match the shared token: data was altered, replayed or misdirected in transit");
      }
      return { frames: h.index, dataBytes, wireBytes: wireBytes + f.headerBuf.length + f.payload.length, mac: macHex, marks: end.marks };
    }
    mac?.update(f.headerBuf).update(f.payload);
    wireBytes += f.headerBuf.length + f.payload.length;
    const size = expect.disks.get(h.disk);
    if (size === undefined) throw new FrameError(`frame for disk ${h.disk}, which this relationship does not replicate`);
    if (h.type !== FrameType.Data && h.type !== FrameType.Zero) throw new FrameError(`unknown frame type ${h.type}`);
    if (h.offset % blockSize !== 0 || h.length % blockSize !== 0 || h.length === 0 || h.offset + h.length > size) {
      throw new FrameError(`frame range ${h.offset}+${h.length} is misaligned or outside disk ${h.disk} (${size} bytes)`);
    }
    // A compressed frame is decoded into memory of the size it claims: no more than a payload may hold.
    if (h.type === FrameType.Data && h.length > MAX_PAYLOAD) {
      throw new FrameError(`data frame covers ${h.length} bytes, more than the ${MAX_PAYLOAD} a frame may carry`);
    }
    if (h.type === FrameType.Data && (h.flags & FLAG_ZSTD) === 0 && h.payloadLength !== h.length) {
      throw new FrameError(`uncompressed frame carries ${h.payloadLength} bytes for a ${h.length}-byte range`);
    }
    if (h.type === FrameType.Data) dataBytes += h.length;
    return undefined;
  };
  for await (const f of readFrames(source, expect.payloads ?? new BufferPool())) {
    let end: ReceiveResult | undefined;
    try {
      end = check(f);
    } catch (err) {
      f.release?.();
      throw err;
    }
    if (end) {
      f.release?.();
      return end;
    }
    await sink(f);
  }
  throw new FrameError("stream ended without its end frame: the transfer was truncated");
}
