/**
 * The payload buffer pool: buffers are reused, and aligned well enough for direct I/O, which
 * is checked the only way that counts: O_DIRECT writes of them succeed on this filesystem.
 */
import { constants } from "node:fs";
import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../testing/harness.js";
import { ALIGN, alignedBuffer, BufferPool, isAligned } from "./buffer-pool.js";

const KiB = 1024;
let dir: string;

beforeAll(async () => {
  dir = await tempDir("rm-pool-");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("BufferPool", () => {
  it("reuses released buffers and grows only when a size class has none free", () => {
    const pool = new BufferPool(1024 * KiB);
    const a = pool.acquire(64 * KiB);
    const b = pool.acquire(64 * KiB);
    expect(a.length).toBe(64 * KiB);
    expect(a.buffer).toBe(b.buffer); // carved from one 1 MiB memory
    expect(pool.bytes).toEqual({ allocated: 1024 * KiB, idle: 1024 * KiB - 128 * KiB });
    pool.release(a);
    expect(pool.acquire(64 * KiB).byteOffset).toBe(a.byteOffset);
    for (let i = 0; i < 14; i++) pool.acquire(64 * KiB); // the memory's 16 buffers are all out
    expect(pool.bytes.allocated).toBe(1024 * KiB);
    pool.acquire(64 * KiB);
    expect(pool.bytes.allocated).toBe(2048 * KiB);
  });

  it("serves each request from the smallest power-of-two class that holds it, from 4 KiB", () => {
    const pool = new BufferPool(1024 * KiB);
    const small = pool.acquire(100);
    const page = pool.acquire(4 * KiB);
    const odd = pool.acquire(300 * KiB);
    expect([small.length, page.length, odd.length]).toEqual([100, 4 * KiB, 300 * KiB]);
    expect(small.buffer).toBe(page.buffer); // both in the 4 KiB class
    expect(odd.buffer).not.toBe(small.buffer); // the 512 KiB class
    expect(pool.bytes.allocated).toBe(2048 * KiB);
    for (const b of [small, page, odd]) pool.release(b);
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
  });

  it("refuses a buffer released twice, and ignores buffers it never handed out", () => {
    const pool = new BufferPool();
    const a = pool.acquire(8 * KiB);
    pool.release(a);
    expect(() => pool.release(a)).toThrow(/released twice/);
    pool.release(Buffer.alloc(8 * KiB));
    pool.release(alignedBuffer(64 * KiB));
    expect(pool.bytes.idle).toBe(pool.bytes.allocated);
  });

  it("gives a fresh aligned buffer for a request above its largest class, outside the pool", () => {
    const pool = new BufferPool(64 * KiB);
    const big = pool.acquire(200 * KiB);
    expect(big.length).toBe(200 * KiB);
    expect(isAligned(big)).toBe(true);
    expect(pool.bytes.allocated).toBe(0);
    pool.release(big);
    expect(pool.bytes.allocated).toBe(0);
  });

  it("trims memories that are wholly idle, down to what it is asked to keep, and none in use", () => {
    const pool = new BufferPool(1024 * KiB);
    const bufs = Array.from({ length: 6 }, () => pool.acquire(1024 * KiB));
    expect(pool.bytes.allocated).toBe(6 * 1024 * KiB);
    for (const b of bufs.slice(1)) pool.release(b);
    pool.trim(2 * 1024 * KiB);
    expect(pool.bytes).toEqual({ allocated: 3 * 1024 * KiB, idle: 2 * 1024 * KiB });
    pool.trim(0);
    expect(pool.bytes).toEqual({ allocated: 1024 * KiB, idle: 0 }); // the one in use stays
    pool.release(bufs[0]!);
    expect(pool.acquire(1024 * KiB).byteOffset).toBe(bufs[0]!.byteOffset);
  });

  it("rejects a largest size that is not a power of two", () => {
    expect(() => new BufferPool(100_000)).toThrow(/power of two/);
  });

  it("knows which buffers are aligned: its own at 4 KiB multiples, nothing else", () => {
    const pool = new BufferPool();
    const a = pool.acquire(64 * KiB);
    expect(isAligned(a)).toBe(true);
    expect(isAligned(a.subarray(ALIGN))).toBe(true);
    expect(isAligned(a.subarray(512))).toBe(false);
    expect(isAligned(Buffer.alloc(ALIGN))).toBe(false);
  });

  it("its buffers are accepted by O_DIRECT writes, at every 4 KiB offset of every buffer", async () => {
    const file = join(dir, "direct.img");
    const fh = await open(file, constants.O_RDWR | constants.O_CREAT | constants.O_DIRECT);
    try {
      const pool = new BufferPool(64 * KiB);
      const bufs = [pool.acquire(64 * KiB), pool.acquire(64 * KiB), pool.acquire(16 * KiB), pool.acquire(4 * KiB), alignedBuffer(128 * KiB)];
      let pos = 0;
      const expected: Buffer[] = [];
      for (const [i, buf] of bufs.entries()) {
        buf.fill(i + 1);
        for (let off = 0; off < buf.length; off += 16 * KiB) {
          const part = buf.subarray(off, off + 8 * KiB);
          const { bytesWritten } = await fh.write(part, 0, part.length, pos);
          expect(bytesWritten).toBe(part.length);
          expected.push(Buffer.from(part));
          pos += part.length;
        }
      }
      await fh.datasync();
      expect((await readFile(file)).equals(Buffer.concat(expected))).toBe(true);
      // And the check is real: a buffer of Node's own allocator is refused here.
      const unaligned = Buffer.alloc(8 * KiB + 16).subarray(16);
      if (!isAligned(unaligned)) await expect(fh.write(unaligned, 0, 8 * KiB, 0)).rejects.toMatchObject({ code: "EINVAL" });
    } finally {
      await fh.close();
    }
  });
});
