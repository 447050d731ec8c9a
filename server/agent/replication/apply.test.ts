/**
 * DiskWriter: frames land at their offsets whichever way they are written (direct I/O for
 * aligned pooled payloads, the page cache for the rest, decompressed into pooled buffers),
 * and every pooled buffer goes back to the pool.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compress } from "zstd-napi";
import { tempDir } from "../testing/harness.js";
import { seededBytes } from "../testing/random.js";
import { DiskWriter } from "./apply.js";
import { CodecPool } from "./codec-pool.js";
import { encodeFrame, FLAG_ZSTD, FrameError, FrameType } from "./frames.js";
import type { ReceivedFrame } from "./receiver.js";

const KiB = 1024;
const pool = new CodecPool();
let dir: string;

beforeAll(async () => {
  dir = await tempDir("rm-apply-");
});
afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

function frame(offset: number, data: Buffer, opts: { pooled?: boolean; zstd?: boolean; zero?: boolean } = {}): ReceivedFrame {
  const body = opts.zstd ? compress(data) : data;
  let payload: Buffer = opts.zero ? Buffer.alloc(0) : body;
  let release: (() => void) | undefined;
  if (opts.pooled && payload.length) {
    const pooled = pool.buffers.acquire(payload.length);
    payload.copy(pooled);
    payload = pooled;
    release = () => pool.buffers.release(pooled);
  }
  const header = { type: opts.zero ? FrameType.Zero : FrameType.Data, flags: opts.zstd ? FLAG_ZSTD : 0, disk: 0, seq: 1, index: 0, offset, length: data.length };
  return { header: { ...header, payloadLength: payload.length, checksum: 0n }, headerBuf: encodeFrame(header, payload), payload, ...(release ? { release } : {}) };
}

describe("DiskWriter", () => {
  it("writes aligned pooled, unaligned, compressed and zero frames where they belong, and releases every buffer", async () => {
    const file = join(dir, "disk0.raw");
    const size = 2048 * KiB + 512; // the last frame cannot be a whole 4 KiB block
    await writeFile(file, seededBytes(size, 99)); // old contents everywhere
    const want = seededBytes(size, 99);
    const writer = await DiskWriter.open(new Map([[0, file]]), pool, false);
    const frames: ReceivedFrame[] = [];
    const put = (offset: number, data: Buffer, opts: Parameters<typeof frame>[2] = {}) => {
      frames.push(frame(offset, data, opts));
      if (opts.zero) want.fill(0, offset, offset + data.length);
      else data.copy(want, offset);
    };
    put(0, seededBytes(1024 * KiB, 1), { pooled: true }); // direct
    put(1024 * KiB, seededBytes(4 * KiB, 2), { pooled: true }); // direct, one block
    put(1028 * KiB, seededBytes(512, 3), { pooled: true }); // too short for direct: the cache
    put(1028 * KiB + 512, seededBytes(3584, 4)); // not pooled: the cache
    put(1032 * KiB, Buffer.alloc(8 * KiB), { zero: true }); // zeros written, not skipped
    put(1040 * KiB, Buffer.alloc(512 * KiB, "compressible "), { pooled: true, zstd: true }); // decoded into the pool, direct
    put(2048 * KiB, seededBytes(512, 5), { pooled: true }); // the unaligned tail
    for (const f of frames) await writer.write(f);
    await writer.finish();
    expect((await readFile(file)).equals(want)).toBe(true);
    expect(pool.buffers.bytes.allocated).toBeGreaterThan(0);
    expect(pool.buffers.bytes.idle).toBe(pool.buffers.bytes.allocated); // every taken buffer came back
  });

  it("reports a frame that does not decompress as a FrameError, and still releases its buffer", async () => {
    const file = join(dir, "disk1.raw");
    await writeFile(file, Buffer.alloc(64 * KiB));
    const writer = await DiskWriter.open(new Map([[0, file]]), pool, false);
    const bad = frame(0, seededBytes(64 * KiB, 7), { pooled: true, zstd: true });
    bad.payload[0]! ^= 0xff; // zstd's magic number
    await writer.write(bad);
    const err = await writer.finish().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FrameError);
    expect((err as Error).message).toMatch(/does not decompress/);
    expect(pool.buffers.bytes.idle).toBe(pool.buffers.bytes.allocated);
  });
});
