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
  it("reuses released buffers and makes new ones only when all are taken", () => {
    const pool = new BufferPool(64 * KiB, 4);
    const a = pool.acquire();
    const b = pool.acquire();
    expect(a.length).toBe(64 * KiB);
    expect(a.buffer).toBe(b.buffer); // carved from one region
    pool.release(a);
    const c = pool.acquire();
    expect(c.byteOffset).toBe(a.byteOffset);
    for (let i = 0; i < 3; i++) pool.acquire();
    expect(pool.allocated).toBe(8);
    expect(pool.available).toBe(3);
  });

  it("hands out shorter views of pooled buffers and takes them back", () => {
    const pool = new BufferPool(64 * KiB, 1);
    const part = pool.acquire(1000);
    expect(part.length).toBe(1000);
    pool.release(part);
    expect(pool.available).toBe(1);
    expect(pool.acquire().byteOffset).toBe(part.byteOffset);
  });

  it("refuses a buffer released twice, and ignores buffers it never handed out", () => {
    const pool = new BufferPool(64 * KiB, 2);
    const a = pool.acquire();
    pool.release(a);
    expect(() => pool.release(a)).toThrow(/released twice/);
    pool.release(Buffer.alloc(64 * KiB));
    pool.release(alignedBuffer(64 * KiB));
    expect(pool.available).toBe(2);
  });

  it("gives a fresh aligned buffer for a request above its size, outside the pool", () => {
    const pool = new BufferPool(64 * KiB, 2);
    const big = pool.acquire(200 * KiB);
    expect(big.length).toBe(200 * KiB);
    expect(isAligned(big)).toBe(true);
    expect(pool.allocated).toBe(0);
    pool.release(big);
    expect(pool.available).toBe(0);
  });

  it("rejects a size that is not a multiple of 64 KiB", () => {
    expect(() => new BufferPool(100_000)).toThrow(/64 KiB/);
  });

  it("knows which buffers are aligned: its own at 4 KiB multiples, nothing else", () => {
    const pool = new BufferPool(64 * KiB, 2);
    const a = pool.acquire();
    expect(isAligned(a)).toBe(true);
    expect(isAligned(a.subarray(ALIGN))).toBe(true);
    expect(isAligned(a.subarray(512))).toBe(false);
    expect(isAligned(Buffer.alloc(ALIGN))).toBe(false);
  });

  it("its buffers are accepted by O_DIRECT writes, at every 4 KiB offset of every buffer", async () => {
    const file = join(dir, "direct.img");
    const fh = await open(file, constants.O_RDWR | constants.O_CREAT | constants.O_DIRECT);
    try {
      const pool = new BufferPool(64 * KiB, 4);
      const bufs = [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire(), alignedBuffer(128 * KiB)];
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
