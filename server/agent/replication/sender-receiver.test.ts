/**
 * Sender and receiver together, without the network: a hand-made frozen cycle over memory
 * buffers is streamed with real worker-thread compression and verified frame by frame. The
 * replica image rebuilt from the frames must equal the primary exactly on the frozen blocks
 * and be untouched elsewhere (stream-integrity.test.ts: what is refused).
 */
import { afterAll, describe, expect, it } from "vitest";
import { Bitmap } from "../tracking/bitmap.js";
import { CodecPool } from "./codec-pool.js";
import { FLAG_ZSTD, FrameType, HEADER_SIZE } from "./frames.js";
import { receiveCycle, type ReceiveResult } from "./receiver.js";
import { cycleStream, type SendStats } from "./sender.js";
import { collect, expectations, expectReplicaMatches, feed, makeDisk, memCycle, mixedDisks, newStats, replicaSink, sendOpts, splitFrames, type Kind, type MemDisk } from "../testing/mem-cycle.js";

const pool = new CodecPool();
afterAll(async () => {
  await pool.close();
});

describe("cycleStream → receiveCycle", () => {
  it("delivers exactly the frozen data, zero runs as payload-less zero frames, with consistent counts", async () => {
    for (const seed of [11, 12, 13]) {
      const disks = mixedDisks(seed);
      for (const compress of [true, false]) {
        const stats = newStats();
        const { replica, sink } = replicaSink(disks, pool);
        // Small chunks: many worker tasks in flight, so ordering across the lookahead is exercised.
        const opts = sendOpts(7, compress, { chunkBytes: 16 * 1024, lookahead: 3 });
        const result = await receiveCycle(cycleStream(memCycle(disks), pool, opts, stats), expectations(disks, 7), sink);

        expectReplicaMatches(disks, replica);

        // Zero frames carry no payload and cover exactly the frozen all-zero blocks.
        for (const d of disks) {
          const zeroCovered = new Bitmap(d.dirty.size);
          for (const h of replica.frames.filter((f) => f.disk === d.index && f.type === FrameType.Zero)) {
            expect(h.payloadLength).toBe(0);
            expect(h.flags).toBe(0);
            zeroCovered.setRange(h.offset / d.blockSize, (h.offset + h.length) / d.blockSize);
          }
          const frozenZero = new Bitmap(d.dirty.size);
          for (let b = 0; b < d.dirty.size; b++) {
            if (d.dirty.get(b) && d.data.subarray(b * d.blockSize, (b + 1) * d.blockSize).every((x) => x === 0)) frozenZero.set(b);
          }
          expect([...zeroCovered.runs()]).toEqual([...frozenZero.runs()]);
        }
        if (!compress) expect(replica.frames.every((f) => (f.flags & FLAG_ZSTD) === 0)).toBe(true);
        else expect(replica.frames.some((f) => (f.flags & FLAG_ZSTD) !== 0)).toBe(true);

        const nonZeroBytes = disks.reduce((n, d) => {
          for (let b = 0; b < d.dirty.size; b++) {
            if (d.dirty.get(b) && !d.data.subarray(b * d.blockSize, (b + 1) * d.blockSize).every((x) => x === 0)) n += d.blockSize;
          }
          return n;
        }, 0);
        expect(result.dataBytes).toBe(nonZeroBytes);
        expect(stats.dataBytes).toBe(nonZeroBytes);
        expect(stats.changedBytes).toBe(disks.reduce((n, d) => n + d.dirty.count() * d.blockSize, 0));
        expect(result.frames).toBe(replica.frames.length);
        expect(stats.frames).toBe(result.frames);
        expect(result.wireBytes).toBe(stats.wireBytes);
        // Frames come in index order, disk by disk as the cycle lists them.
        expect(replica.frames.map((f) => f.index)).toEqual(replica.frames.map((_, i) => i));
        expect(replica.frames.map((f) => f.disk)).toEqual([...replica.frames.map((f) => f.disk)].sort((a, b) => a - b));
      }
    }
  });

  it("an empty cycle is just the end frame", async () => {
    const disks = [makeDisk(0, 4096, ["random", "zero"], 1)];
    const stats = newStats();
    const { replica, sink } = replicaSink(disks, pool);
    const result = await receiveCycle(cycleStream(memCycle(disks), pool, sendOpts(3, true), stats), expectations(disks, 3), sink);
    expect(result).toMatchObject({ frames: 0, dataBytes: 0 });
    expect(replica.frames).toEqual([]);
    expect(stats.wireBytes).toBe(result.wireBytes);
  });

  it("reuses pooled read buffers for a consumer done with each chunk before the next: the same stream, every buffer back", async () => {
    const own = new CodecPool();
    try {
      for (const compress of [false, true]) {
        const disks = mixedDisks(17);
        const plain = await collect(cycleStream(memCycle(disks), own, sendOpts(4, compress, { chunkBytes: 64 * 1024 }), newStats()));
        // collect() copies each chunk before asking for the next, as PeerClient.stream is done with it.
        const reused = await collect(cycleStream(memCycle(disks), own, sendOpts(4, compress, { chunkBytes: 64 * 1024, reuseBuffers: true }), newStats()));
        expect(reused.equals(plain)).toBe(true);
        for (const pool of [own.sharedBuffers, own.buffers]) {
          expect(pool.bytes.allocated).toBeGreaterThan(0);
          expect(pool.bytes.idle).toBe(pool.bytes.allocated);
        }
      }
      // A consumer that stops early (an error, an abort) still gets every buffer back to the pool.
      const stream = cycleStream(memCycle(mixedDisks(18)), own, sendOpts(5, false, { chunkBytes: 64 * 1024, reuseBuffers: true }), newStats());
      let n = 0;
      for await (const _ of stream) if (++n === 5) break;
      for (const pool of [own.sharedBuffers, own.buffers]) expect(pool.bytes.idle).toBe(pool.bytes.allocated);
    } finally {
      await own.close();
    }
  });

  // FrozenDisk.blockSize is the driver's tracking granularity: QEMU dirty bitmaps default to
  // the image's cluster size, and qcow2 clusters range from 512 B to 2 MiB.
  it.each([64 * 1024, 256 * 1024, 2 * 1024 * 1024])("carries disks whose block size is %i bytes", async (blockSize) => {
    const d = makeDisk(1, blockSize, ["random", "zero", "text", "text", "zero"], 5);
    d.dirty.setAll();
    const { replica, sink } = replicaSink([d], pool);
    await receiveCycle(cycleStream(memCycle([d]), pool, sendOpts(1, true), newStats()), expectations([d], 1), sink);
    expectReplicaMatches([d], replica);
  });
});

describe("compression", () => {
  function wholeDisk(kind: Kind, blocks: number, seed: number): MemDisk {
    const d = makeDisk(0, 4096, new Array<Kind>(blocks).fill(kind), seed);
    d.dirty.setAll();
    return d;
  }

  async function send(d: MemDisk, compress: boolean): Promise<{ frames: Buffer[]; stats: SendStats; result: ReceiveResult }> {
    const stats = newStats();
    const frames = splitFrames(await collect(cycleStream(memCycle([d]), pool, sendOpts(1, compress), stats)));
    const { replica, sink } = replicaSink([d], pool);
    const result = await receiveCycle(feed(frames), expectations([d], 1), sink);
    expectReplicaMatches([d], replica);
    return { frames, stats, result };
  }

  it("sends incompressible data raw: the wire carries no more than the data plus headers", async () => {
    const d = wholeDisk("random", 512, 31); // 2 MiB
    const { frames, stats } = await send(d, true);
    const data = frames.filter((f) => f.readUInt8(4) === FrameType.Data);
    expect(data.every((f) => (f.readUInt8(5) & FLAG_ZSTD) === 0)).toBe(true);
    const endFrame = frames[frames.length - 1]!;
    const headers = (frames.length - 1) * HEADER_SIZE + endFrame.length;
    expect(stats.wireBytes).toBeLessThanOrEqual(1.01 * d.data.length + headers);
    expect(stats.dataBytes).toBe(d.data.length);
  });

  it("compresses compressible data, including frames large enough to decode in a worker", async () => {
    const d = wholeDisk("text", 512, 32); // 2 MiB in 1 MiB chunks
    const { frames, stats, result } = await send(d, true);
    const data = frames.filter((f) => f.readUInt8(4) === FrameType.Data);
    expect(data.every((f) => (f.readUInt8(5) & FLAG_ZSTD) !== 0)).toBe(true);
    expect(data.some((f) => f.readBigUInt64LE(32) > 256n * 1024n)).toBe(true);
    expect(stats.wireBytes).toBeLessThan(d.data.length / 10);
    expect(result.dataBytes).toBe(d.data.length);
  });

  it("with compression off, compressible data goes raw", async () => {
    const d = wholeDisk("text", 64, 33);
    const { frames, stats } = await send(d, false);
    expect(frames.every((f) => (f.readUInt8(5) & FLAG_ZSTD) === 0)).toBe(true);
    expect(stats.wireBytes).toBeGreaterThan(d.data.length);
  });

  it("stops trying to compress after a chunk that did not compress, then probes again", async () => {
    // 1 MiB chunks: 8 of random data, then 24 of text. Each miss skips the next 15 chunks
    // (counted from the chunks prepared after it), so the text that follows the random data
    // goes raw at first, and compression comes back when a probe succeeds.
    const kinds = [...new Array<Kind>(8 * 256).fill("random"), ...new Array<Kind>(24 * 256).fill("text")];
    const d = makeDisk(0, 4096, kinds, 34);
    d.dirty.setAll();
    const { frames } = await send(d, true);
    const perChunk = frames
      .filter((f) => f.readUInt8(4) === FrameType.Data)
      .map((f) => ({ chunk: Number(f.readBigUInt64LE(24)) / (1024 * 1024), zstd: (f.readUInt8(5) & FLAG_ZSTD) !== 0 }));
    const compressedChunks = new Set(perChunk.filter((c) => c.zstd).map((c) => Math.floor(c.chunk)));
    for (let c = 0; c < 20; c++) expect(compressedChunks.has(c), `chunk ${c} sent raw`).toBe(false);
    for (let c = 24; c < 32; c++) expect(compressedChunks.has(c), `chunk ${c} compressed`).toBe(true);
  });
});
