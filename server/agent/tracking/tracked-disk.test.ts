/**
 * Change tracking on a real sparse file: which blocks a cycle carries, that a frozen cycle
 * reads as of its freeze while the guest keeps writing (copy-before-write), and that the
 * region log lets a restarted agent trust — or honestly distrust — what it tracked.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, open, rm, stat, utimes, writeFile, type FileHandle } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BLOCK_SIZE, TrackedDisk } from "./tracked-disk.js";
import { CbwStore } from "./cbw-store.js";
import { DiskSnapshot } from "./disk-snapshot.js";
import { Bitmap } from "./bitmap.js";
import { RegionLog } from "./region-log.js";
import { SerialQueue } from "../util/serial-queue.js";
import { createSparseFile } from "../util/files.js";
import { rng } from "../testing/random.js";

const BS = BLOCK_SIZE;
const REGION = RegionLog.regionBlocks(BS); // blocks per 16 MiB region
// Three whole regions plus a ragged fourth of 3 blocks, so the last region is partial.
const BLOCKS = 3 * REGION + 3;
const SIZE = BLOCKS * BS;

/** Bytes that differ per tag and per byte, so a block from the wrong time or place is caught. */
function pattern(tag: number, length: number, salt = 0): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let x = (tag * 2654435761 + salt * 40503 + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    buf[i] = x >>> 24;
  }
  return buf;
}

let dir: string;
let diskPath: string;
const opened: TrackedDisk[] = [];

async function openDisk(): Promise<TrackedDisk> {
  const d = await TrackedDisk.open(0, diskPath, SIZE);
  opened.push(d);
  return d;
}

/**
 * What a killed agent leaves behind: its descriptors are closed by the OS and the clean-close
 * header is never written. Closing the handles here only avoids leaking descriptors in the
 * test process; nothing is written.
 */
async function abandon(disk: TrackedDisk): Promise<void> {
  const i = opened.indexOf(disk);
  if (i >= 0) opened.splice(i, 1);
  const d = disk as unknown as { fh?: FileHandle; regionLog?: { fh?: FileHandle } };
  await d.regionLog?.fh?.close();
  await d.fh?.close();
}

function allRuns(s: DiskSnapshot): [number, number][] {
  return [...s.runs(Number.MAX_SAFE_INTEGER)];
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rm-tracked-disk-"));
  diskPath = join(dir, "disk0.img");
  await createSparseFile(diskPath, SIZE);
});

afterEach(async () => {
  for (const d of opened.splice(0)) await d.close().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe("TrackedDisk change tracking", () => {
  it("marks every block a write touches, and freeze() captures exactly those", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    expect(disk.tracking).toBe(true);
    expect(disk.pendingBytes).toBe(0);

    await disk.write(3 * BS, pattern(1, BS)); // one aligned block
    await disk.write(10 * BS + 100, pattern(2, 2 * BS)); // unaligned: touches 10, 11 and 12
    await disk.write((REGION - 1) * BS, pattern(3, 2 * BS)); // straddles the region 0/1 boundary
    await disk.write(SIZE - 10, pattern(4, 10)); // tail of the last, partial block

    const snap = disk.freeze();
    expect(allRuns(snap)).toEqual([
      [3, 4],
      [10, 13],
      [REGION - 1, REGION + 1],
      [BLOCKS - 1, BLOCKS],
    ]);
    expect(snap.changedBytes).toBe(7 * BS);
    expect(disk.pendingBytes).toBe(7 * BS);
  });

  it("startTracking(true) makes every block dirty for the initial copy", async () => {
    const disk = await openDisk();
    await disk.startTracking(true);
    expect(allRuns(disk.freeze())).toEqual([[0, BLOCKS]]);
  });

  it("a disk that is not tracked cannot freeze, and one cycle at a time", async () => {
    const disk = await openDisk();
    await disk.write(0, pattern(1, BS));
    expect(() => disk.freeze()).toThrow(/not tracked/);
    await disk.startTracking(false);
    disk.freeze();
    expect(() => disk.freeze()).toThrow(/already has a cycle in flight/);
  });

  it("rejects writes outside the disk", async () => {
    const disk = await openDisk();
    await expect(disk.write(SIZE - 1, Buffer.alloc(2))).rejects.toThrow(RangeError);
    await expect(disk.write(-1, Buffer.alloc(1))).rejects.toThrow(RangeError);
  });

  it("release() puts the frozen blocks back into the next cycle, with those written meanwhile", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(1 * BS, pattern(1, BS));
    const first = disk.freeze();
    expect(allRuns(first)).toEqual([[1, 2]]);
    await disk.write(50 * BS, pattern(2, BS)); // after the freeze: belongs to the next cycle
    expect(disk.pendingBytes).toBe(2 * BS);
    await disk.release();
    expect(allRuns(disk.freeze())).toEqual([
      [1, 2],
      [50, 51],
    ]);
  });

  it("commit() forgets the frozen blocks; writes after the freeze land in the next cycle", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(1 * BS, pattern(1, BS));
    disk.freeze();
    await disk.write(50 * BS, pattern(2, BS));
    await disk.write(1 * BS, pattern(3, BS)); // a frozen block written again: dirty again
    await disk.commit();
    expect(disk.pendingBytes).toBe(2 * BS);
    expect(allRuns(disk.freeze())).toEqual([
      [1, 2],
      [50, 51],
    ]);
    await disk.commit();
    expect(disk.pendingBytes).toBe(0);
    expect(allRuns(disk.freeze())).toEqual([]);
  });

  it("stopTracking() removes the region log", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(0, pattern(1, BS));
    expect(existsSync(`${diskPath}.track`)).toBe(true);
    await disk.stopTracking();
    expect(disk.tracking).toBe(false);
    expect(existsSync(`${diskPath}.track`)).toBe(false);
  });
});

describe("DiskSnapshot reads as of the freeze (copy-before-write)", () => {
  it("returns the frozen content after the guest overwrote, partly overwrote or straddled frozen blocks", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    const old = pattern(1, 8 * BS);
    await disk.write(0, old);
    const snap = disk.freeze();

    await disk.write(2 * BS, pattern(2, 4 * BS)); // blocks 2..5 whole
    await disk.write(6 * BS + 50, pattern(3, 100)); // a few bytes inside block 6
    await disk.write(7 * BS + 10, pattern(4, 2 * BS)); // block 7 (frozen) into 8 and 9 (not frozen)

    expect((await snap.read(0, 8)).equals(old)).toBe(true);
    // The guest sees its own writes.
    expect((await disk.read(2 * BS, 4 * BS)).equals(pattern(2, 4 * BS))).toBe(true);
    expect((await disk.read(6 * BS + 50, 100)).equals(pattern(3, 100))).toBe(true);
    // The blocks written after the freeze are the next cycle's.
    await disk.commit();
    expect(allRuns(disk.freeze())).toEqual([
      [2, 10],
    ]);
  });

  it("a frozen block already read is not preserved again and reads stay correct", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(0, pattern(1, 4 * BS));
    const snap = disk.freeze();
    expect((await snap.read(0, 2)).equals(pattern(1, 2 * BS))).toBe(true);
    await disk.write(0, pattern(2, 4 * BS));
    expect((await snap.read(2, 4)).equals(pattern(1, 4 * BS).subarray(2 * BS))).toBe(true);
  });

  // Ways to let the event loop advance between issuing the write and the read, so the read
  // lands before, during and after the write's copy-before-write.
  const pauses: [string, () => Promise<void>][] = [
    ["no pause", async () => undefined],
    ["1 microtask", () => Promise.resolve()],
    [
      "5 microtasks",
      async () => {
        for (let i = 0; i < 5; i++) await Promise.resolve();
      },
    ],
    ["setImmediate", () => new Promise<void>((r) => setImmediate(r))],
    ["one fs round trip", async () => void (await stat(diskPath))],
    [
      "two fs round trips",
      async () => {
        await stat(diskPath);
        await stat(diskPath);
      },
    ],
  ];

  it("a snapshot read and a guest write of the same block, issued together, read the frozen content", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    const queue = new SerialQueue();
    const guestWrite = (offset: number, data: Buffer) => queue.run(() => disk.write(offset, data));

    const frozenBlocks = 7 * pauses.length;
    const old = pattern(7, frozenBlocks * BS);
    await guestWrite(0, old);
    const snap = await queue.run(() => disk.freeze());
    const oldBlock = (b: number, n = 1) => old.subarray(b * BS, (b + n) * BS);

    let b = 0;
    for (const [name, pause] of pauses) {
      // Read issued first, then the write.
      {
        const r = snap.read(b, b + 1);
        const w = guestWrite(b * BS, pattern(100 + b, BS));
        const [got] = await Promise.all([r, w]);
        expect(got.equals(oldBlock(b)), `read first, ${name}, block ${b}`).toBe(true);
        b++;
      }
      // Write issued first, read after a pause (before, during or after its copy-out).
      {
        const w = guestWrite(b * BS, pattern(100 + b, BS));
        await pause();
        const r = snap.read(b, b + 1);
        const [, got] = await Promise.all([w, r]);
        expect(got.equals(oldBlock(b)), `write first, ${name}, block ${b}`).toBe(true);
        b++;
      }
      // A multi-block read racing writes that cover part of it and spill past its end.
      {
        const w1 = guestWrite((b + 1) * BS + 7, pattern(200 + b, 10));
        await pause();
        const r = snap.read(b, b + 3);
        const w2 = guestWrite((b + 2) * BS, pattern(300 + b, 3 * BS));
        const [, got] = await Promise.all([w1, r, w2]);
        expect(got.equals(oldBlock(b, 3)), `multi-block, ${name}, blocks ${b}..${b + 2}`).toBe(true);
        b += 5; // w2 also wrote b+3 and b+4; leave them out of the later cases
      }
    }
    expect(b).toBeLessThanOrEqual(frozenBlocks);
    await queue.drain();
  });

  it("concurrent run reads and a stream of guest writes (seeded) always read the freeze point", async () => {
    for (const seed of [1, 2, 3, 4]) {
      const next = rng(seed);
      const disk = await openDisk();
      await disk.startTracking(false);
      const queue = new SerialQueue();
      const span = 300; // blocks under test
      const model = Buffer.alloc(span * BS + BS); // what the guest has written (disk starts as zeros)
      const guestWrite = (offset: number, data: Buffer): Promise<void> => {
        data.copy(model, offset); // writes are applied in issue order by the queue
        return queue.run(() => disk.write(offset, data));
      };

      // Frozen set: most blocks, with gaps, so runs have ragged edges.
      for (let blk = 0; blk < span; blk++) if (blk % 7 !== 3) await guestWrite(blk * BS, pattern(seed, BS, blk));
      const snap = await queue.run(() => disk.freeze());
      const atFreeze = Buffer.from(model);
      const runs = [...snap.runs(6)];

      const reads: Promise<void>[] = [];
      const writes: Promise<void>[] = [];
      let ri = 0;
      let wi = 0;
      while (ri < runs.length) {
        const roll = next();
        if (roll < 0.45) {
          const [from, to] = runs[ri++]!;
          reads.push(
            snap.read(from, to).then((got) => {
              const want = atFreeze.subarray(from * BS, to * BS);
              if (!got.equals(want)) throw new Error(`seed ${seed}: frozen run ${from}..${to} read content from after the freeze`);
            }),
          );
        } else if (roll < 0.9) {
          const at = Math.floor(next() * span * BS);
          const len = 1 + Math.floor(next() * 3 * BS);
          writes.push(guestWrite(at, pattern(1000 + wi++, Math.min(len, span * BS + BS - at), seed)));
        } else {
          await new Promise<void>((r) => setImmediate(r));
        }
      }
      await Promise.all([...reads, ...writes]);
      await queue.drain();
      // The guest's view is every write in order, untouched by the snapshot machinery.
      expect((await disk.read(0, model.length)).equals(model), `seed ${seed}: final disk content`).toBe(true);
      await queue.run(() => disk.release());
      await disk.close();
      opened.splice(opened.indexOf(disk), 1);
      // A fresh disk for the next seed: the model starts from zeros.
      await rm(diskPath);
      await rm(`${diskPath}.track`, { force: true });
      await createSparseFile(diskPath, SIZE);
    }
  });
});

describe("DiskSnapshot with a spilled CBW store (fault injection)", () => {
  /**
   * Deterministic replay of an interleaving that a loaded host can produce: the guest writes
   * blocks 0..2 where only 0 and 2 are frozen; while block 0 is being copied out, the engine
   * starts reading block 2, and its disk read is slower than the copy-out of block 2 that
   * follows. The before-image of block 2 goes to the spill file (memory cap reached) and that
   * write is slow. The engine's read must still return block 2 as of the freeze.
   * Private fields are reached by name to inject the slow I/O; the test fails loudly if they move.
   */
  it("a read never returns a spilled before-image whose spill write is still in flight", async () => {
    const old = Buffer.concat([0, 1, 2, 3].map((b) => pattern(500 + b, BS)));
    const diskFh = await open(diskPath, "r+");
    const spillPath = join(dir, "snap.cbw");
    const spillFh = await open(spillPath, "w+");
    try {
      await diskFh.write(old, 0, old.length, 0);

      let releaseCopyOut0!: () => void;
      const copyOut0 = new Promise<void>((r) => (releaseCopyOut0 = r));
      let releaseEngineRead!: () => void;
      const engineRead = new Promise<void>((r) => (releaseEngineRead = r));
      let block0Reads = 0;
      let block2Reads = 0;
      const disk = {
        read: async (buf: Buffer, off: number, len: number, pos: number) => {
          if (pos === 0 && block0Reads++ === 0) await copyOut0; // copy-out of block 0 is in progress for a while
          if (pos === 2 * BS && block2Reads++ === 0) await engineRead; // the engine's read of block 2 is slow
          const res = await diskFh.read(buf, off, len, pos);
          if (pos === 2 * BS && block2Reads === 2) releaseEngineRead(); // ...and finishes after block 2's copy-out read
          return res;
        },
      } as unknown as FileHandle;
      const slowSpill = {
        write: async (buf: Uint8Array, off: number, len: number, pos: number) => {
          await new Promise((r) => setTimeout(r, 30));
          return spillFh.write(buf, off, len, pos);
        },
        read: (buf: Buffer, off: number, len: number, pos: number) => spillFh.read(buf, off, len, pos),
        close: () => spillFh.close(),
      };

      const frozen = new Bitmap(4);
      frozen.set(0);
      frozen.set(2);
      const snap = new DiskSnapshot(disk, frozen, BS, spillPath);
      const cbw = new CbwStore(spillPath, BS, 0); // memory cap 0: every before-image spills
      const internals = snap as unknown as { cbw: unknown };
      const cbwInternals = cbw as unknown as { file: unknown };
      expect(internals.cbw).toBeInstanceOf(CbwStore);
      expect("file" in cbwInternals).toBe(true);
      await (internals.cbw as CbwStore).dispose(); // the store being replaced holds nothing yet
      internals.cbw = cbw;
      cbwInternals.file = Promise.resolve(slowSpill); // the store opens its spill file lazily, as a promise

      // The guest's write path (as TrackedDisk.write does it), and the engine's read, together.
      const write = snap.preserve(0, 3).then(() => diskFh.write(pattern(600, 3 * BS), 0, 3 * BS, 0));
      const read = snap.read(2, 3);
      releaseCopyOut0();
      const [got] = await Promise.all([read, write]);
      expect(got.equals(old.subarray(2 * BS, 3 * BS)), "block 2 as of the freeze").toBe(true);
      await snap.dispose();
    } finally {
      await diskFh.close();
      await spillFh.close().catch(() => undefined);
    }
  });
});

describe("CbwStore", () => {
  it("keeps before-images in memory up to memCap, then spills them to its file", async () => {
    const spill = join(dir, "spill.cbw");
    const store = new CbwStore(spill, BS, 2 * BS);
    for (let b = 0; b < 6; b++) await store.put(b, pattern(b, BS, 99));
    expect(store.size).toBe(6);
    // Two fit in memory, four went to the file.
    expect((await stat(spill)).size).toBe(4 * BS);
    for (let b = 0; b < 6; b++) {
      expect(store.has(b)).toBe(true);
      expect((await store.get(b))?.equals(pattern(b, BS, 99)), `block ${b}`).toBe(true);
    }
    expect(store.has(6)).toBe(false);
    expect(await store.get(6)).toBeUndefined();

    store.delete(4); // on file
    store.delete(0); // in memory: frees room for the next put
    expect(store.has(4)).toBe(false);
    expect(store.has(0)).toBe(false);
    expect(await store.get(4)).toBeUndefined();
    await store.put(10, pattern(10, BS, 99));
    expect((await stat(spill)).size).toBe(4 * BS); // went to memory, not the file
    expect((await store.get(10))?.equals(pattern(10, BS, 99))).toBe(true);
    expect(store.size).toBe(5);

    await store.dispose();
    expect(existsSync(spill)).toBe(false);
    expect(store.has(5)).toBe(false);
  });

  it("with memCap 0 everything spills and reads back", async () => {
    const spill = join(dir, "all.cbw");
    const store = new CbwStore(spill, BS, 0);
    const blocks = [9, 3, 1000, 4];
    for (const b of blocks) await store.put(b, pattern(b, BS, 5));
    expect((await stat(spill)).size).toBe(blocks.length * BS);
    for (const b of blocks) expect((await store.get(b))?.equals(pattern(b, BS, 5))).toBe(true);
    await store.dispose();
    expect(existsSync(spill)).toBe(false);
  });

  it("a store that never spilled creates no file", async () => {
    const spill = join(dir, "none.cbw");
    const store = new CbwStore(spill, BS);
    await store.put(1, pattern(1, BS));
    expect(existsSync(spill)).toBe(false);
    await store.dispose();
  });
});

describe("RegionLog persistence across agent restarts", () => {
  const region = (r: number): [number, number] => [r * REGION, Math.min(BLOCKS, (r + 1) * REGION)];

  it("after a crash (no close), resumeTracking reports no loss and a whole-region superset of the writes", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    const written = [5, REGION + 476, BLOCKS - 1]; // regions 0, 1 and the partial region 3
    for (const b of written) await disk.write(b * BS, pattern(b, BS));
    await abandon(disk);

    const again = await openDisk();
    expect(await again.resumeTracking()).toBeUndefined();
    const runs = allRuns(again.freeze());
    expect(runs).toEqual([
      [0, 2 * REGION],
      region(3),
    ]);
    for (const b of written) expect(runs.some(([f, t]) => b >= f && b < t), `block ${b}`).toBe(true);
  });

  it("a crash with a cycle in flight keeps the frozen blocks and the ones written since", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(0, pattern(1, BS));
    disk.freeze();
    await disk.write(2 * REGION * BS, pattern(2, BS));
    await abandon(disk); // the replica never confirmed the cycle

    const again = await openDisk();
    expect(await again.resumeTracking()).toBeUndefined();
    expect(allRuns(again.freeze())).toEqual([region(0), region(2)]);
  });

  it("a crash after commit forgets the committed regions", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(0, pattern(1, BS));
    disk.freeze();
    await disk.write(2 * REGION * BS, pattern(2, BS));
    await disk.commit();
    await abandon(disk);

    const again = await openDisk();
    expect(await again.resumeTracking()).toBeUndefined();
    expect(allRuns(again.freeze())).toEqual([region(2)]);
  });

  it("tracking resumed after a crash keeps logging new writes", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(0, pattern(1, BS));
    await abandon(disk);

    const second = await openDisk();
    expect(await second.resumeTracking()).toBeUndefined();
    await second.write(REGION * BS + 3, pattern(2, 10));
    await abandon(second);

    const third = await openDisk();
    expect(await third.resumeTracking()).toBeUndefined();
    expect(allRuns(third.freeze())).toEqual([[0, 2 * REGION]]);
  });

  it("after a clean close with the disk untouched, nothing is lost", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(REGION * BS, pattern(1, BS));
    await disk.close();
    opened.splice(opened.indexOf(disk), 1);

    const again = await openDisk();
    expect(await again.resumeTracking()).toBeUndefined();
    expect(allRuns(again.freeze())).toEqual([region(1)]);
  });

  it("a disk modified while the agent was off is reported, and everything is dirty", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.write(0, pattern(1, BS));
    await disk.close();
    opened.splice(opened.indexOf(disk), 1);

    const before = await stat(diskPath);
    const when = new Date(before.mtimeMs - 3_600_000); // an hour earlier: surely different
    await utimes(diskPath, when, when);

    const again = await openDisk();
    expect(await again.resumeTracking()).toBe("disk-modified-while-off");
    expect(allRuns(again.freeze())).toEqual([[0, BLOCKS]]);
  });

  it("a missing .track file is reported as log-missing, and everything is dirty", async () => {
    const disk = await openDisk();
    expect(existsSync(`${diskPath}.track`)).toBe(false);
    expect(await disk.resumeTracking()).toBe("log-missing");
    expect(allRuns(disk.freeze())).toEqual([[0, BLOCKS]]);
    // Tracking goes on with a fresh log.
    expect(existsSync(`${diskPath}.track`)).toBe(true);
  });

  it("a .track file that is not a region log is reported as log-corrupt", async () => {
    await writeFile(`${diskPath}.track`, Buffer.alloc(256, 0x5a));
    const disk = await openDisk();
    expect(await disk.resumeTracking()).toBe("log-corrupt");
    expect(allRuns(disk.freeze())).toEqual([[0, BLOCKS]]);
  });

  it("the log header records the clean state and the block size, not just the bitmap", async () => {
    const disk = await openDisk();
    await disk.startTracking(false);
    await disk.close();
    opened.splice(opened.indexOf(disk), 1);
    const fh = await open(`${diskPath}.track`, "r");
    try {
      const head = Buffer.alloc(16);
      await fh.read(head, 0, 16, 0);
      expect(head.toString("latin1", 0, 8)).toBe("RMTRACK1");
      expect(head.readUInt32LE(8)).toBe(REGION);
      expect(head.readUInt8(12)).toBe(0); // clean
    } finally {
      await fh.close();
    }
  });
});
