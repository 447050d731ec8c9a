/**
 * Sender and receiver together, without the network: a hand-made frozen cycle over memory
 * buffers is streamed with real worker-thread compression and verified frame by frame. The
 * replica image rebuilt from the frames must equal the primary exactly on the frozen blocks
 * and be untouched elsewhere; any dropped, repeated or re-signed frame must be refused.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { FrozenCycle, FrozenDisk } from "../hypervisor/types.js";
import { Bitmap } from "../tracking/bitmap.js";
import { CodecPool } from "./codec-pool.js";
import { compress } from "zstd-napi";
import { encodeFrame, FLAG_ZSTD, FrameError, FrameType, HEADER_SIZE, MAX_PAYLOAD } from "./frames.js";
import { receiveCycle, type ReceivedFrame, type ReceiveExpectations, type ReceiveResult } from "./receiver.js";
import { cycleStream, type SendOptions, type SendStats } from "./sender.js";
import type { StreamAuth } from "./stream-auth.js";
import { rng } from "../testing/random.js";

const pool = new CodecPool();
afterAll(async () => {
  await pool.close();
});

function randomBytes(n: number, seed: number): Buffer {
  const next = rng(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.floor(next() * 2 ** 32), i);
  return b;
}

function textBytes(n: number, seed: number): Buffer {
  const line = `row ${seed}: INSERT INTO orders VALUES (42, 'replica manager', 'compressible text');\n`;
  return Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n), "latin1");
}

interface MemDisk {
  index: number;
  blockSize: number;
  data: Buffer;
  dirty: Bitmap;
}

/** Kinds of block content, so frames mix zero runs, compressible and incompressible data. */
type Kind = "zero" | "random" | "text";

function makeDisk(index: number, blockSize: number, kinds: Kind[], seed: number): MemDisk {
  const data = Buffer.alloc(kinds.length * blockSize);
  kinds.forEach((k, b) => {
    if (k === "random") randomBytes(blockSize, seed * 100_000 + b).copy(data, b * blockSize);
    if (k === "text") textBytes(blockSize, b).copy(data, b * blockSize);
  });
  return { index, blockSize, data, dirty: new Bitmap(kinds.length) };
}

function randomKinds(blocks: number, next: () => number): Kind[] {
  const kinds: Kind[] = [];
  while (kinds.length < blocks) {
    const k: Kind = (["zero", "random", "text"] as const)[Math.floor(next() * 3)]!;
    const len = 1 + Math.floor(next() * 12);
    for (let i = 0; i < len && kinds.length < blocks; i++) kinds.push(k);
  }
  return kinds;
}

function randomDirty(d: MemDisk, next: () => number): void {
  for (let b = 0; b < d.dirty.size; ) {
    const len = 1 + Math.floor(next() * 40);
    if (next() < 0.6) d.dirty.setRange(b, Math.min(d.dirty.size, b + len));
    b += len;
  }
}

/** A FrozenCycle over memory; reads hand out fresh copies (the sender may transfer them to a worker). */
function memCycle(disks: MemDisk[]): FrozenCycle {
  return {
    frozenAt: new Date(),
    disks: disks.map(
      (d): FrozenDisk => ({
        index: d.index,
        blockSize: d.blockSize,
        changedBytes: d.dirty.count() * d.blockSize,
        runs: (max) => d.dirty.runs(max),
        read: async (from, to, into) => {
          // The sender must only ask for frozen blocks.
          for (let b = from; b < to; b++) if (!d.dirty.get(b)) throw new Error(`read of block ${b} of disk ${d.index}, which is not in the cycle`);
          if (into && into.length < (to - from) * d.blockSize) throw new Error(`a ${into.length}-byte buffer for ${to - from} blocks`);
          const out = into ? into.subarray(0, (to - from) * d.blockSize) : Buffer.alloc((to - from) * d.blockSize);
          d.data.copy(out, 0, from * d.blockSize, to * d.blockSize);
          return out;
        },
      }),
    ),
    commit: async () => undefined,
    release: async () => undefined,
  };
}

const SENTINEL = 0xee;

interface Replica {
  images: Map<number, Buffer>;
  frames: ReceivedFrame["header"][];
}

/** Applies frames like the replica does: zstd payloads decoded, zero frames written as zeros. */
function replicaSink(disks: MemDisk[]): { replica: Replica; sink: (f: ReceivedFrame) => Promise<void> } {
  const replica: Replica = { images: new Map(disks.map((d) => [d.index, Buffer.alloc(d.data.length, SENTINEL)])), frames: [] };
  const sink = async (f: ReceivedFrame) => {
    const h = f.header;
    replica.frames.push(h);
    const img = replica.images.get(h.disk)!;
    if (h.type === FrameType.Zero) {
      img.fill(0, h.offset, h.offset + h.length);
      return;
    }
    const data = h.flags & FLAG_ZSTD ? pool.decode(f.payload, h.length) : f.payload;
    expect(data.length).toBe(h.length);
    data.copy(img, h.offset);
  };
  return { replica, sink };
}

function expectReplicaMatches(disks: MemDisk[], replica: Replica): void {
  for (const d of disks) {
    const img = replica.images.get(d.index)!;
    for (let b = 0; b < d.dirty.size; b++) {
      const got = img.subarray(b * d.blockSize, (b + 1) * d.blockSize);
      if (d.dirty.get(b)) {
        if (!got.equals(d.data.subarray(b * d.blockSize, (b + 1) * d.blockSize))) throw new Error(`disk ${d.index} block ${b}: replica differs from the frozen data`);
      } else if (!got.every((x) => x === SENTINEL)) {
        throw new Error(`disk ${d.index} block ${b}: not in the cycle, yet the replica wrote it`);
      }
    }
  }
}

function newStats(): SendStats {
  return { changedBytes: 0, dataBytes: 0, wireBytes: 0, frames: 0 };
}

const REL = "rel-0001";

/** Sender options for cycle `seq` of REL, built on the cycle before it. */
function sendOpts(seq: number, compress: boolean, extra: Partial<SendOptions> = {}): SendOptions {
  return { relationshipId: REL, seq, base: seq - 1, compress, marks: { point: null, recoveryHistory: 0, frequencySeconds: 30, resync: null, prepared: false, returnPath: null }, ...extra };
}

function expectations(disks: MemDisk[], seq: number, auth?: StreamAuth, extra: Partial<ReceiveExpectations> = {}): ReceiveExpectations {
  return { relationshipId: REL, seq, base: seq - 1, disks: new Map(disks.map((d) => [d.index, d.data.length])), auth, ...extra };
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of stream) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

/** Splits wire bytes into whole frames (header + payload) without verifying them. */
function splitFrames(wire: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < wire.length; ) {
    const len = HEADER_SIZE + wire.readUInt32LE(at + 20);
    out.push(wire.subarray(at, at + len));
    at += len;
  }
  return out;
}

async function* feed(buffers: Buffer[]): AsyncGenerator<Buffer> {
  for (const b of buffers) yield b;
}

async function receiveError(buffers: Buffer[], want: ReceiveExpectations): Promise<unknown> {
  return receiveCycle(feed(buffers), want, async () => undefined).then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** A mixed two-disk cycle with different block sizes, shared by several tests. */
function mixedDisks(seed: number): MemDisk[] {
  const next = rng(seed);
  const d0 = makeDisk(0, 4096, randomKinds(300, next), seed);
  const d2 = makeDisk(2, 512, randomKinds(700, next), seed + 1);
  randomDirty(d0, next);
  randomDirty(d2, next);
  // Make sure a zero run, a text run and a random run are each in the cycle.
  d0.dirty.setRange(0, 40);
  return [d0, d2];
}

describe("cycleStream → receiveCycle", () => {
  it("delivers exactly the frozen data, zero runs as payload-less zero frames, with consistent counts", async () => {
    for (const seed of [11, 12, 13]) {
      const disks = mixedDisks(seed);
      for (const compress of [true, false]) {
        const stats = newStats();
        const { replica, sink } = replicaSink(disks);
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
    const { replica, sink } = replicaSink(disks);
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
    const { replica, sink } = replicaSink([d]);
    await receiveCycle(cycleStream(memCycle([d]), pool, sendOpts(1, true), newStats()), expectations([d], 1), sink);
    expectReplicaMatches([d], replica);
  });
});

describe("stream integrity", () => {
  async function wireOf(disks: MemDisk[], seq: number, auth?: StreamAuth, stats = newStats()): Promise<Buffer[]> {
    return splitFrames(await collect(cycleStream(memCycle(disks), pool, sendOpts(seq, true, { auth, chunkBytes: 16 * 1024 }), stats)));
  }

  const authA: StreamAuth = { token: "shared-token-A", nonce: "nonce-1" };

  it("the HMAC check passes with the same token and nonce, and fails with another token, another nonce or none from the sender", async () => {
    const disks = mixedDisks(21);
    const stats = newStats();
    const frames = await wireOf(disks, 4, authA, stats);
    const { replica, sink } = replicaSink(disks);
    const result = await receiveCycle(feed(frames), expectations(disks, 4, authA), sink);
    expectReplicaMatches(disks, replica);
    // Both sides agree on the MAC the acknowledgement will cover.
    expect(result.mac).toMatch(/^[0-9a-f]{64}$/);
    expect(result.mac).toBe(stats.mac);

    for (const [name, auth] of [
      ["another token", { ...authA, token: "shared-token-B" }],
      ["another nonce (a replayed upload)", { ...authA, nonce: "nonce-2" }],
    ] as const) {
      const err = await receiveError(frames, expectations(disks, 4, auth));
      expect(err, name).toBeInstanceOf(FrameError);
      expect((err as Error).message, name).toMatch(/signature/);
    }

    const unsigned = await wireOf(disks, 4);
    const missing = await receiveError(unsigned, expectations(disks, 4, authA));
    expect(missing).toBeInstanceOf(FrameError);
    expect((missing as Error).message).toMatch(/signature/);
  });

  it("a data frame altered and re-checksummed in transit is caught by the HMAC", async () => {
    const disks = mixedDisks(22);
    const frames = await wireOf(disks, 5, authA);
    const i = frames.findIndex((f) => f.readUInt8(4) === FrameType.Data && f.readUInt8(5) === 0);
    expect(i).toBeGreaterThanOrEqual(0);
    const f = frames[i]!;
    const payload = Buffer.from(f.subarray(HEADER_SIZE));
    payload[0]! ^= 0xff;
    // xxh3 is not keyed: an attacker can recompute it. Only the stream MAC can notice.
    const header = encodeFrame(
      {
        type: f.readUInt8(4),
        flags: f.readUInt8(5),
        disk: f.readUInt8(6),
        seq: Number(f.readBigUInt64LE(8)),
        index: f.readUInt32LE(16),
        offset: Number(f.readBigUInt64LE(24)),
        length: Number(f.readBigUInt64LE(32)),
      },
      payload,
    );
    const tampered = [...frames.slice(0, i), Buffer.concat([header, payload]), ...frames.slice(i + 1)];
    const err = await receiveError(tampered, expectations(disks, 5, authA));
    expect(err).toBeInstanceOf(FrameError);
    expect((err as Error).message).toMatch(/signature/);
  });

  it("a frame dropped from the middle, duplicated, or reordered is rejected", async () => {
    const disks = mixedDisks(23);
    const frames = await wireOf(disks, 6);
    expect(frames.length).toBeGreaterThan(6);
    const mid = Math.floor(frames.length / 2);
    const variants: [string, Buffer[]][] = [
      ["dropped", [...frames.slice(0, mid), ...frames.slice(mid + 1)]],
      ["duplicated", [...frames.slice(0, mid + 1), frames[mid]!, ...frames.slice(mid + 1)]],
      ["swapped", [...frames.slice(0, mid), frames[mid + 1]!, frames[mid]!, ...frames.slice(mid + 2)]],
      ["last data frame dropped", [...frames.slice(0, -2), frames[frames.length - 1]!]],
    ];
    for (const [name, v] of variants) {
      const err = await receiveError(v, expectations(disks, 6));
      expect(err, name).toBeInstanceOf(FrameError);
      expect((err as Error).message, name).toMatch(/expected/);
    }
    // The untouched stream is accepted, so the rejections above are due to the edits.
    expect(await receiveError(frames, expectations(disks, 6))).toBeUndefined();
  });

  it("a compressed frame that claims more than a frame may carry is rejected before anything is decoded", async () => {
    const d = makeDisk(0, 4096, new Array<Kind>(2048).fill("zero"), 25); // 8 MiB
    const payload = compress(Buffer.alloc(MAX_PAYLOAD + 4096));
    const header = encodeFrame({ type: FrameType.Data, flags: FLAG_ZSTD, disk: 0, seq: 2, index: 0, offset: 0, length: MAX_PAYLOAD + 4096 }, payload);
    const err = await receiveError([Buffer.concat([header, payload])], expectations([d], 2));
    expect(err).toBeInstanceOf(FrameError);
    expect((err as Error).message).toMatch(/more than the 4194304 a frame may carry/);
  });

  it("a stream without its end frame, or for another cycle, relationship, base or disk set is rejected", async () => {
    const disks = mixedDisks(24);
    const frames = await wireOf(disks, 8);
    const noEnd = await receiveError(frames.slice(0, -1), expectations(disks, 8));
    expect(noEnd).toBeInstanceOf(FrameError);
    expect((noEnd as Error).message).toMatch(/end frame/);

    const otherCycle = await receiveError(frames, expectations(disks, 9));
    expect(otherCycle).toBeInstanceOf(FrameError);
    expect((otherCycle as Error).message).toMatch(/cycle 8/);

    const otherRel = await receiveError(frames, expectations(disks, 8, undefined, { relationshipId: "rel-0002" }));
    expect(otherRel).toBeInstanceOf(FrameError);
    expect((otherRel as Error).message).toMatch(/relationship/);

    const otherBase = await receiveError(frames, expectations(disks, 8, undefined, { base: 5 }));
    expect(otherBase).toBeInstanceOf(FrameError);
    expect((otherBase as Error).message).toMatch(/based on cycle 7/);

    const onlyDisk0 = await receiveError(frames, expectations(disks.slice(0, 1), 8));
    expect(onlyDisk0).toBeInstanceOf(FrameError);
    expect((onlyDisk0 as Error).message).toMatch(/disk 2/);
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
    const { replica, sink } = replicaSink([d]);
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
