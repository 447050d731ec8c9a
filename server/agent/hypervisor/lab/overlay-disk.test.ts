/**
 * OverlayDisk (test failover disks) against a plain in-memory model: seeded random unaligned
 * writes and reads, partial blocks, writes spanning many blocks, reads mixing overlay and base
 * at odd offsets, the last bytes of the disk, and the base never being written.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { rng, seededBytes } from "../../testing/random.js";
import { OverlayDisk } from "./overlay-disk.js";

const B = 4096;

describe("OverlayDisk", () => {
  let dir: string;
  const open: OverlayDisk[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(process.env.RM_TEST_TMP ?? tmpdir(), "rm-overlay-"));
  });
  afterEach(async () => {
    for (const d of open.splice(0)) await d.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  /** An overlay over an in-memory base; `reads` counts calls to the base. */
  async function make(size: number, seed: number, name = "disk0.overlay") {
    const base = seededBytes(size, seed);
    const pristine = Buffer.from(base);
    const calls: [number, number][] = [];
    const disk = await OverlayDisk.create(0, join(dir, name), size, async (offset, length) => {
      calls.push([offset, length]);
      if (offset < 0 || length < 0 || offset + length > size) throw new Error(`base read out of range: ${offset}+${length}`);
      return Buffer.from(base.subarray(offset, offset + length));
    });
    open.push(disk);
    return { disk, base, pristine, calls, model: Buffer.from(base) };
  }

  it("reads the base untouched before any write, at any offset and length", async () => {
    const { disk, model } = await make(64 * B, 1);
    for (const [o, l] of [
      [0, 1],
      [1, 4095],
      [4095, 2],
      [64 * B - 1, 1],
      [3 * B + 17, 5 * B + 3],
      [0, 64 * B],
    ] as const) {
      expect((await disk.read(o, l)).equals(model.subarray(o, o + l)), `${o}+${l}`).toBe(true);
    }
  });

  it("matches an in-memory model under 3000 seeded random unaligned writes and reads", async () => {
    for (const seed of [7, 8, 9]) {
      const size = 97 * B; // not a power of two: runs end at odd block counts
      const { disk, model, base, pristine } = await make(size, seed, `disk-${seed}.overlay`);
      const next = rng(seed * 1000 + 1);
      const int = (n: number) => Math.floor(next() * n);
      for (let op = 0; op < 1000; op++) {
        const kind = next();
        // Mostly short writes near block boundaries, sometimes long ones spanning many blocks.
        const len = kind < 0.1 ? 1 + int(20 * B) : kind < 0.5 ? 1 + int(64) : 1 + int(2 * B);
        const offset = next() < 0.2 ? Math.max(0, int(size / B) * B - int(3)) : int(size - len + 1);
        const length = Math.min(len, size - offset);
        if (next() < 0.5) {
          const data = seededBytes(length, seed * 100000 + op);
          await disk.write(offset, data);
          data.copy(model, offset);
        } else {
          const got = await disk.read(offset, length);
          expect(got.length).toBe(length);
          if (!got.equals(model.subarray(offset, offset + length))) {
            throw new Error(`seed ${seed} op ${op}: read ${offset}+${length} differs from the model`);
          }
        }
      }
      expect((await disk.read(0, size)).equals(model), `seed ${seed}: whole disk`).toBe(true);
      expect(base.equals(pristine), "the base is never written").toBe(true);
    }
  });

  it("merges partial blocks with the base, not with zeros of the sparse overlay file", async () => {
    const { disk, model } = await make(16 * B, 3);
    // One byte in the middle of a block, and 3 bytes straddling two blocks.
    await disk.write(5 * B + 100, Buffer.from([0xaa]));
    model[5 * B + 100] = 0xaa;
    await disk.write(7 * B - 1, Buffer.from([1, 2, 3]));
    model.set([1, 2, 3], 7 * B - 1);
    expect((await disk.read(4 * B, 5 * B)).equals(model.subarray(4 * B, 9 * B))).toBe(true);
    // Unwritten neighbours still come from the base.
    expect((await disk.read(5 * B - 10, 20)).equals(model.subarray(5 * B - 10, 5 * B + 10))).toBe(true);
  });

  it("writes and reads the very last bytes of the disk, and refuses one byte more", async () => {
    const size = 8 * B;
    const { disk, model } = await make(size, 4);
    await disk.write(size - 3, Buffer.from([9, 9, 9]));
    model.set([9, 9, 9], size - 3);
    expect((await disk.read(size - B, B)).equals(model.subarray(size - B))).toBe(true);
    expect((await disk.read(size - 1, 1))[0]).toBe(9);
    await expect(disk.write(size - 2, Buffer.from([1, 2, 3]))).rejects.toThrow(RangeError);
    await expect(disk.read(size - 1, 2)).rejects.toThrow(RangeError);
    await expect(disk.read(-1, 1)).rejects.toThrow(RangeError);
    // A refused write changed nothing.
    expect((await disk.read(0, size)).equals(model)).toBe(true);
  });

  it("a write spanning many blocks and unaligned at both ends keeps the base at both edges", async () => {
    const size = 200 * B;
    const { disk, model } = await make(size, 5);
    const data = seededBytes(150 * B + 1234, 55);
    await disk.write(10 * B + 777, data);
    data.copy(model, 10 * B + 777);
    expect((await disk.read(0, size)).equals(model)).toBe(true);
    // Odd reads crossing the overlay/base edges.
    for (const [o, l] of [
      [10 * B + 770, 20],
      [10 * B + 777 + data.length - 5, 10],
      [9 * B + 1, 3 * B],
      [160 * B + 1, 3 * B + 3],
    ] as const) {
      expect((await disk.read(o, l)).equals(model.subarray(o, o + l)), `${o}+${l}`).toBe(true);
    }
  });

  it("overlay writes survive later base changes only where written; elsewhere the base shows", async () => {
    // The view under a test VM is frozen in the product; this pins down which bytes come from where.
    const { disk, model, base } = await make(8 * B, 6);
    await disk.write(B + 10, Buffer.from("hello"));
    model.write("hello", B + 10);
    base.fill(0x55, 0, 4 * B);
    const got = await disk.read(0, 4 * B);
    // Block 1 was written (merged whole): it keeps the old base bytes around "hello".
    expect(got.subarray(B, 2 * B).equals(model.subarray(B, 2 * B))).toBe(true);
    expect(got.subarray(0, B).every((x) => x === 0x55)).toBe(true);
    expect(got.subarray(2 * B, 4 * B).every((x) => x === 0x55)).toBe(true);
  });

  it("keeps the overlay file sparse: only written blocks take space", async () => {
    const size = 8 * 1024 * 1024;
    const { disk } = await make(size, 7);
    await disk.write(size - 1, Buffer.from([1]));
    await disk.write(12345, Buffer.from([2]));
    const st = await stat(join(dir, "disk0.overlay"));
    expect(st.size).toBe(size);
    expect(st.blocks * 512).toBeLessThanOrEqual(256 * 1024);
  });

  it("refuses to create an overlay over an existing file", async () => {
    await make(4 * B, 8, "same.overlay");
    await expect(OverlayDisk.create(0, join(dir, "same.overlay"), 4 * B, async () => Buffer.alloc(0))).rejects.toThrow();
  });
});
