import { randomBytes } from "node:crypto";
import { open, stat, truncate, writeFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../../testing/harness.js";
import { BlockSet } from "./block-set.js";
import { UndoLog } from "./undo-log.js";

const B = 4096;

describe("BlockSet", () => {
  it("reports the missing runs of a range, across sparse chunks", () => {
    const s = new BlockSet();
    s.addRange(10, 20);
    s.addRange(40_000, 40_002);
    expect([...s.missing(0, 30)]).toEqual([[0, 10], [20, 30]]);
    expect([...s.missing(12, 18)]).toEqual([]);
    expect([...s.missing(39_999, 100_000)]).toEqual([[39_999, 40_000], [40_002, 100_000]]);
    expect(s.size).toBe(12);
  });
});

describe("UndoLog", () => {
  async function disk(dir: string, size: number): Promise<{ data: Buffer; readOld: (d: number, off: number, len: number) => Promise<Buffer> }> {
    const data = randomBytes(size);
    return { data, readOld: async (_d, off, len) => Buffer.from(data.subarray(off, off + len)) };
  }

  it("keeps only the first before-image of a block, and lays it over a read", async () => {
    const dir = await tempDir();
    const { data, readOld } = await disk(dir, 64 * B);
    const log = await UndoLog.open(join(dir, "p.undo"), 0);
    const first = Buffer.from(data);
    expect(await log.record([{ disk: 0, offset: 2 * B, length: 4 * B }], readOld)).toBe(4 * B);
    data.fill(1, 2 * B, 6 * B); // the cycle's new data
    // A later cycle overlapping the same blocks records only the new ones.
    expect(await log.record([{ disk: 0, offset: 4 * B, length: 4 * B }], readOld)).toBe(2 * B);
    data.fill(2, 4 * B, 8 * B);
    const view = Buffer.from(data.subarray(0, 16 * B));
    await log.overlay(0, 0, view);
    expect(view.equals(first.subarray(0, 16 * B))).toBe(true);
    await log.release();
  });

  it("cuts a torn tail on open and keeps the whole entries before it", async () => {
    const dir = await tempDir();
    const path = join(dir, "p.undo");
    const { readOld } = await disk(dir, 64 * B);
    const log = await UndoLog.open(path, 0);
    await log.record([{ disk: 0, offset: 0, length: 2 * B }], readOld);
    const whole = log.bytes;
    await log.record([{ disk: 0, offset: 8 * B, length: 2 * B }], readOld);
    await log.release();
    await truncate(path, whole + 100); // the second entry torn by a crash
    const again = await UndoLog.open(path, whole);
    expect(again.bytes).toBe(whole);
    expect((await stat(path)).size).toBe(whole);
    // The torn blocks are recorded again (the disk was not yet written for them).
    expect(await again.record([{ disk: 0, offset: 8 * B, length: 2 * B }], readOld)).toBe(2 * B);
    await again.release();
  });

  it("drops an entry whose data was corrupted past the durable mark", async () => {
    const dir = await tempDir();
    const path = join(dir, "p.undo");
    const { readOld } = await disk(dir, 64 * B);
    const log = await UndoLog.open(path, 0);
    await log.record([{ disk: 0, offset: 0, length: B }], readOld);
    const whole = log.bytes;
    await log.record([{ disk: 0, offset: 4 * B, length: B }], readOld);
    await log.release();
    const fh = await open(path, "r+");
    await fh.write(Buffer.from([0xff ^ (await readFile(path))[whole + 40]!]), 0, 1, whole + 40);
    await fh.close();
    expect((await UndoLog.open(path, whole)).bytes).toBe(whole);
  });

  it("refuses a log damaged inside its durable part, naming it", async () => {
    const dir = await tempDir();
    const path = join(dir, "p.undo");
    await writeFile(path, Buffer.alloc(100));
    await expect(UndoLog.open(path, 64)).rejects.toThrow(/damaged inside its durable part/);
  });
});
