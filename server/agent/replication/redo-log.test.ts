/**
 * The redo file: frames packed across direct-I/O buffers read back exactly up to the recorded
 * length (the padding after it is not a frame), through the page cache or direct, and every
 * pooled buffer returned whichever way the writer ends.
 */
import { createReadStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../testing/harness.js";
import { ALIGN, BufferPool } from "../util/buffer-pool.js";
import { encodeFrame, FrameType, readFrames } from "./frames.js";
import type { ReceivedFrame } from "./receiver.js";
import { RedoWriter } from "./redo-log.js";
import { readFileChunks } from "../util/direct-file.js";

const KiB = 1024;
let dir: string;
beforeAll(async () => {
  dir = await tempDir("rm-redo-");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Frames of mixed sizes (zero frames, 512 B, 4 KiB, 64 KiB, 1 MiB), their payloads pooled. */
function frames(pool: BufferPool, count: number): ReceivedFrame[] {
  const sizes = [0, 512, 4 * KiB, 64 * KiB, 1024 * KiB];
  return Array.from({ length: count }, (_, i) => {
    const length = sizes[i % sizes.length]!;
    const payload = pool.acquire(Math.max(length, 1)).subarray(0, length);
    payload.fill(i + 1); // where a frame landed shows in its bytes
    const header = { type: length ? FrameType.Data : FrameType.Zero, flags: 0, disk: 0, seq: 3, index: i, offset: i * 2048 * KiB, length: length || 4096 };
    return { header: { ...header, payloadLength: length, checksum: 0n }, headerBuf: encodeFrame(header, payload), payload, release: () => pool.release(payload) };
  });
}

async function readBack(source: AsyncIterable<Buffer>, pool: BufferPool) {
  const out: { index: number; payload: Buffer }[] = [];
  for await (const f of readFrames(source, pool)) {
    out.push({ index: f.header.index, payload: Buffer.from(f.payload) });
    f.release?.();
  }
  return out;
}

describe("RedoWriter", () => {
  it("writes frames that read back exactly up to the recorded length, direct or not, releasing each frame", async () => {
    const pool = new BufferPool();
    const file = join(dir, "cycle.redo");
    const input = frames(pool, 23);
    const want = input.map((f) => ({ index: f.header.index, payload: Buffer.from(f.payload) }));
    const lengths = input.reduce((n, f) => n + f.headerBuf.length + f.payload.length, 0);
    const writer = await RedoWriter.create(file, pool);
    for (const f of input) await writer.add(f);
    const bytes = await writer.finish();
    expect(bytes).toBe(lengths);
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
    const size = (await stat(file)).size;
    expect(size % ALIGN).toBe(0); // padded for direct I/O
    expect(size - bytes).toBeLessThan(ALIGN);
    for (const source of [createReadStream(file, { end: bytes - 1 }), readFileChunks(file, bytes)]) {
      const got = await readBack(source, pool);
      expect(got.map((g) => g.index)).toEqual(want.map((w) => w.index));
      got.forEach((g, i) => expect(g.payload.equals(want[i]!.payload), `frame ${g.index}`).toBe(true));
    }
    // Asked for more than the file holds: an error, not zeros.
    await expect(readBack(readFileChunks(file, size + 1), pool)).rejects.toThrow(/ends at/);
  });

  it("discards a rejected cycle: the file is gone and every buffer is back", async () => {
    const pool = new BufferPool();
    const file = join(dir, "rejected.redo");
    const writer = await RedoWriter.create(file, pool);
    for (const f of frames(pool, 9)) await writer.add(f);
    await writer.discard();
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
  });
});
