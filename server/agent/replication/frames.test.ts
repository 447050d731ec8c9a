/**
 * The frame format: headers round-trip, the reader reassembles frames from any chunking of
 * the byte stream, and every kind of damage (payload, cycle, position, truncation, magic)
 * is a FrameError rather than silently accepted data.
 */
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  decodeHeader,
  encodeFrame,
  FLAG_ZSTD,
  FrameError,
  FrameType,
  HEADER_SIZE,
  MAX_PAYLOAD,
  readFrames,
  verifyFrame,
  type FrameHeader,
} from "./frames.js";
import { rng, seededBytes } from "../testing/random.js";
import { BufferPool, isAligned } from "../util/buffer-pool.js";

type Spec = Omit<FrameHeader, "checksum" | "payloadLength">;

function frame(spec: Spec, payload: Buffer): Buffer {
  return Buffer.concat([encodeFrame(spec, payload), payload]);
}

/** A small cycle: data, an empty-payload zero frame, compressed-flagged data, the end frame. */
function sampleStream(seq = 9): { wire: Buffer; frames: { spec: Spec; payload: Buffer }[] } {
  const frames: { spec: Spec; payload: Buffer }[] = [
    { spec: { type: FrameType.Data, flags: 0, disk: 0, seq, index: 0, offset: 0, length: 300 }, payload: seededBytes(300, 1) },
    { spec: { type: FrameType.Zero, flags: 0, disk: 1, seq, index: 1, offset: 4096, length: 8192 }, payload: Buffer.alloc(0) },
    { spec: { type: FrameType.Data, flags: FLAG_ZSTD, disk: 2, seq, index: 2, offset: 2 ** 40, length: 2 ** 20 }, payload: seededBytes(77, 2) },
    { spec: { type: FrameType.End, flags: 0, disk: 0, seq, index: 3, offset: 0, length: 0 }, payload: Buffer.from('{"frames":3}') },
  ];
  return { wire: Buffer.concat(frames.map((f) => frame(f.spec, f.payload))), frames };
}

/** `wire` cut into seeded random chunks of `min` to `min + spread - 1` bytes. */
function seededChunks(wire: Buffer, seed: number, min: number, spread: number): Buffer[] {
  const next = rng(seed);
  const chunks: Buffer[] = [];
  for (let at = 0; at < wire.length; ) {
    const n = min + Math.floor(next() * spread);
    chunks.push(wire.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

async function* fromChunks(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}

async function readAll(chunks: Buffer[], pool = new BufferPool()) {
  const out: { header: FrameHeader; payload: Buffer }[] = [];
  // Copy payloads: they are pooled buffers, given back below.
  for await (const f of readFrames(fromChunks(chunks), pool)) {
    out.push({ header: f.header, payload: Buffer.from(f.payload) });
    f.release?.();
  }
  return out;
}

async function expectFrameError(chunks: Buffer[], message: RegExp): Promise<void> {
  const err = await readAll(chunks).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FrameError);
  expect((err as Error).message).toMatch(message);
}

function checkFrames(got: { header: FrameHeader; payload: Buffer }[], want: { spec: Spec; payload: Buffer }[]): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    const w = want[i]!;
    expect(g.header).toMatchObject({ ...w.spec, payloadLength: w.payload.length });
    expect(g.payload.equals(w.payload)).toBe(true);
  });
}

describe("encodeFrame / decodeHeader", () => {
  it("round-trips every header field, including 64-bit sequence and offset values", () => {
    const payload = seededBytes(1234, 3);
    const spec: Spec = { type: FrameType.Data, flags: FLAG_ZSTD, disk: 3, seq: 2 ** 45 + 7, index: 0xfffffffe, offset: 2 ** 50 + 4096, length: 2 ** 33 };
    const header = encodeFrame(spec, payload);
    expect(header.length).toBe(HEADER_SIZE);
    const h = decodeHeader(header);
    expect(h).toMatchObject({ ...spec, payloadLength: 1234 });
    expect(typeof h.checksum).toBe("bigint");
    expect(() => verifyFrame(header, h, payload)).not.toThrow();
  });

  it("writes the documented layout", () => {
    const header = encodeFrame({ type: FrameType.Zero, flags: 0, disk: 2, seq: 5, index: 6, offset: 8192, length: 4096 }, Buffer.alloc(0));
    expect(header.toString("latin1", 0, 4)).toBe("RMF1");
    expect(header.readUInt8(4)).toBe(FrameType.Zero);
    expect(header.readUInt8(6)).toBe(2);
    expect(header.readBigUInt64LE(8)).toBe(5n);
    expect(header.readUInt32LE(16)).toBe(6);
    expect(header.readUInt32LE(20)).toBe(0);
    expect(header.readBigUInt64LE(24)).toBe(8192n);
    expect(header.readBigUInt64LE(32)).toBe(4096n);
  });

  it("rejects a bad magic", () => {
    const header = encodeFrame({ type: FrameType.Data, flags: 0, disk: 0, seq: 1, index: 0, offset: 0, length: 1 }, Buffer.alloc(1));
    header.write("XMF1", 0, "latin1");
    expect(() => decodeHeader(header)).toThrow(FrameError);
    expect(() => decodeHeader(header)).toThrow(/magic/);
  });

  it("rejects a payload length above MAX_PAYLOAD before trying to buffer it", () => {
    const header = encodeFrame({ type: FrameType.Data, flags: 0, disk: 0, seq: 1, index: 0, offset: 0, length: 1 }, Buffer.alloc(1));
    header.writeUInt32LE(MAX_PAYLOAD + 1, 20);
    expect(() => decodeHeader(header)).toThrow(FrameError);
  });
});

describe("readFrames", () => {
  it("reads a stream delivered in one chunk", async () => {
    const { wire, frames } = sampleStream();
    checkFrames(await readAll([wire]), frames);
  });

  it("reads a stream delivered one byte at a time", async () => {
    const { wire, frames } = sampleStream();
    const chunks = [...wire].map((b) => Buffer.from([b]));
    checkFrames(await readAll(chunks), frames);
  });

  it("reads a stream split in two at every possible byte boundary", async () => {
    const { wire, frames } = sampleStream();
    for (let cut = 0; cut <= wire.length; cut++) {
      const got = await readAll([wire.subarray(0, cut), wire.subarray(cut)]);
      expect(got.length, `cut at ${cut}`).toBe(frames.length);
      checkFrames(got, frames);
    }
  });

  it("reads a stream split into seeded random chunks (including empty ones)", async () => {
    const { wire, frames } = sampleStream();
    for (let seed = 1; seed <= 40; seed++) {
      checkFrames(await readAll(seededChunks(wire, seed, 0, 120)), frames); // 0 gives an empty chunk
    }
  });

  it("gathers payloads into a pool's aligned buffers, whatever the chunking, and gets every one back", async () => {
    const { wire, frames } = sampleStream();
    const pool = new BufferPool();
    for (let seed = 1; seed <= 20; seed++) {
      const chunks = seededChunks(wire, seed, 0, 500);
      const seen: boolean[] = [];
      for await (const f of readFrames(fromChunks(chunks), pool)) {
        if (f.payload.length) seen.push(isAligned(f.payload) && Boolean(f.release));
        f.release?.();
      }
      expect(seen).toEqual([true, true, true]);
      checkFrames(await readAll(chunks, pool), frames);
    }
    // One frame at a time was held: one memory of the 4 KiB class sufficed.
    expect(pool.bytes).toEqual({ allocated: 1024 * 1024, idle: 1024 * 1024 });
  });

  it("with a pool, is done with each chunk when it asks for the next: a source may reuse one buffer", async () => {
    const { wire, frames } = sampleStream();
    for (const size of [1, 7, 48, 100, 4096]) {
      const reused = Buffer.alloc(size);
      async function* source(): AsyncGenerator<Buffer> {
        for (let at = 0; at < wire.length; at += size) {
          const n = wire.copy(reused, 0, at, at + size);
          yield reused.subarray(0, n);
          reused.fill(0xee); // overwritten once the reader asked for more
        }
      }
      const pool = new BufferPool();
      const got: { header: FrameHeader; payload: Buffer }[] = [];
      for await (const f of readFrames(source(), pool)) {
        got.push({ header: f.header, payload: Buffer.from(f.payload) });
        f.release?.();
      }
      checkFrames(got, frames);
      expect(pool.bytes.idle).toBe(pool.bytes.allocated);
    }
  });

  it("gives a pooled buffer back when its frame fails verification", async () => {
    const { wire } = sampleStream();
    const bad = Buffer.from(wire);
    bad[HEADER_SIZE + 100]! ^= 0x01;
    const pool = new BufferPool();
    for (let i = 0; i < 5; i++) await expect(readAll([bad], pool)).rejects.toThrow(/checksum/);
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
  });

  it("a flipped payload byte is a checksum FrameError", async () => {
    const { wire } = sampleStream();
    const bad = Buffer.from(wire);
    bad[HEADER_SIZE + 100]! ^= 0x01; // inside frame 0's payload
    await expectFrameError([bad], /checksum/);
  });

  it("a flipped byte in any covered header field is a checksum FrameError", async () => {
    const { wire } = sampleStream();
    // type, flags, disk, seq, index, offset, length (not magic or payload length: those fail differently).
    for (const at of [4, 5, 6, 8, 12, 16, 24, 32, 39]) {
      const bad = Buffer.from(wire);
      bad[at]! ^= 0x01;
      await expectFrameError([bad], /checksum/);
    }
  });

  it("a frame moved to another cycle or another position fails its checksum", async () => {
    const payload = seededBytes(64, 4);
    const spec: Spec = { type: FrameType.Data, flags: 0, disk: 0, seq: 10, index: 3, offset: 4096, length: 64 };
    const reseq = frame(spec, payload);
    reseq.writeBigUInt64LE(11n, 8);
    await expectFrameError([reseq], /checksum/);
    const reindex = frame(spec, payload);
    reindex.writeUInt32LE(4, 16);
    await expectFrameError([reindex], /checksum/);
  });

  it("a stream cut anywhere inside a frame is a truncation FrameError", async () => {
    const { wire } = sampleStream();
    // Frame boundaries are legitimate ends for the reader (the receiver checks for the end frame).
    const boundaries = new Set<number>([0]);
    let pos = 0;
    for (const f of sampleStream().frames) boundaries.add((pos += HEADER_SIZE + f.payload.length));
    for (let cut = 1; cut < wire.length; cut++) {
      if (boundaries.has(cut)) continue;
      await expectFrameError([wire.subarray(0, cut)], /truncated/);
    }
  });

  it("bad magic in a later frame is a FrameError", async () => {
    const { wire } = sampleStream();
    const bad = Buffer.from(wire);
    bad.write("JUNK", HEADER_SIZE + 300, "latin1"); // frame 1's magic
    await expectFrameError([bad], /magic/);
  });

  it("a stream that is not a replication stream at all is a FrameError", async () => {
    await expectFrameError([Buffer.from("HTTP/1.1 502 Bad Gateway\r\n\r\n<html>proxy error</html>...........")], /magic/);
  });
});

describe("readFrames of a stream (a request body, parsed in its data events)", () => {
  /** A stream fed from `chunks` as a socket would: written in, then ended (or not). */
  function streamOf(chunks: Buffer[], end = true): PassThrough {
    const s = new PassThrough();
    for (const c of chunks) s.write(c);
    if (end) s.end();
    return s;
  }

  async function readStream(source: Readable, pool: BufferPool) {
    const out: { header: FrameHeader; payload: Buffer }[] = [];
    for await (const f of readFrames(source, pool)) {
      out.push({ header: f.header, payload: Buffer.from(f.payload) });
      f.release?.();
    }
    return out;
  }

  /** Frames of `size`-byte payloads, `count` of them, then an end frame. */
  function bigStream(count: number, size: number): Buffer {
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) parts.push(frame({ type: FrameType.Data, flags: 0, disk: 0, seq: 1, index: i, offset: i * size, length: size }, seededBytes(size, i)));
    parts.push(frame({ type: FrameType.End, flags: 0, disk: 0, seq: 1, index: count, offset: 0, length: 0 }, Buffer.from("{}")));
    return Buffer.concat(parts);
  }

  it("reads any chunking of the stream into aligned pooled buffers and gets every one back", async () => {
    const { wire, frames } = sampleStream();
    const pool = new BufferPool();
    for (let seed = 1; seed <= 20; seed++) {
      checkFrames(await readStream(streamOf(seededChunks(wire, seed, 1, 200)), pool), frames);
    }
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
  });

  it("rejects a corrupted frame, gives every buffer back and reads no further", async () => {
    const wire = bigStream(20, 64 * 1024);
    const bad = Buffer.from(wire);
    bad[3 * (HEADER_SIZE + 64 * 1024) + HEADER_SIZE + 5]! ^= 0x01; // frame 3's payload
    const source = streamOf([bad.subarray(0, 8 * 64 * 1024), bad.subarray(8 * 64 * 1024)]);
    const pool = new BufferPool();
    await expect(readStream(source, pool)).rejects.toThrow(/checksum mismatch in frame 3/);
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
    expect(source.readableEnded).toBe(false);
  });

  it("a stream that closes before its end, or fails, is an error; buffers come back", async () => {
    const { wire } = sampleStream();
    const pool = new BufferPool();
    const aborted = streamOf([wire.subarray(0, 200)], false);
    const reading = readStream(aborted, pool);
    setTimeout(() => aborted.destroy(), 20);
    await expect(reading).rejects.toThrow(/premature close/i);
    const failing = streamOf([wire.subarray(0, 200)], false);
    const reading2 = readStream(failing, pool);
    setTimeout(() => failing.destroy(new Error("connection reset by peer")), 20);
    await expect(reading2).rejects.toThrow(/connection reset by peer/);
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
  });

  it("a stream that ends inside a frame is a truncation FrameError", async () => {
    const { wire } = sampleStream();
    await expect(readStream(streamOf([wire.subarray(0, wire.length - 3)]), new BufferPool())).rejects.toThrow(/truncated/);
  });

  it("pauses the stream while 4 MiB of frames wait for a slow consumer, then reads on intact", async () => {
    const size = 256 * 1024;
    const wire = bigStream(48, size); // 12 MiB
    const source = new PassThrough({ highWaterMark: 64 * 1024 });
    const pool = new BufferPool();
    const frames = readFrames(source, pool);
    const first = frames.next();
    // Written as a socket would: only as fast as the reader lets the stream drain.
    const writing = (async () => {
      for (let at = 0; at < wire.length; at += 64 * 1024) {
        if (!source.write(wire.subarray(at, at + 64 * 1024))) await new Promise((r) => source.once("drain", r));
      }
      source.end();
    })();
    const f0 = (await first).value!;
    await new Promise((r) => setTimeout(r, 100));
    const held = pool.bytes.allocated - pool.bytes.idle;
    expect(held).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(held).toBeLessThanOrEqual(4 * 1024 * 1024 + 2 * size);
    expect(source.isPaused()).toBe(true);
    const got = [{ header: f0.header, payload: Buffer.from(f0.payload) }];
    f0.release?.();
    for await (const f of frames) {
      got.push({ header: f.header, payload: Buffer.from(f.payload) });
      f.release?.();
    }
    await writing;
    expect(got.length).toBe(49);
    for (let i = 0; i < 48; i++) expect(got[i]!.payload.equals(seededBytes(size, i)), `frame ${i}`).toBe(true);
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
  });

  it("a consumer that stops early gets back the frames it never took", async () => {
    const pool = new BufferPool();
    for await (const f of readFrames(streamOf([bigStream(10, 64 * 1024)]), pool)) {
      f.release?.();
      break;
    }
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
  });
});
