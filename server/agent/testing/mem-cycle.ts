/**
 * Frozen cycles over memory for sender and receiver tests without disks or network: disks of
 * mixed content (zero runs, compressible text, random data), a replica image rebuilt from
 * received frames, and the options and expectations of one cycle of a test relationship.
 */
import type { FrozenCycle, FrozenDisk } from "../hypervisor/types.js";
import type { CodecPool } from "../replication/codec-pool.js";
import { FLAG_ZSTD, FrameType, HEADER_SIZE } from "../replication/frames.js";
import { receiveCycle, type ReceivedFrame, type ReceiveExpectations } from "../replication/receiver.js";
import type { SendOptions, SendStats } from "../replication/sender.js";
import type { StreamAuth } from "../replication/stream-auth.js";
import { Bitmap } from "../tracking/bitmap.js";
import { rng } from "./random.js";

export function randomBytes(n: number, seed: number): Buffer {
  const next = rng(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.floor(next() * 2 ** 32), i);
  return b;
}

export function textBytes(n: number, seed: number): Buffer {
  const line = `row ${seed}: INSERT INTO orders VALUES (42, 'replica manager', 'compressible text');\n`;
  return Buffer.from(line.repeat(Math.ceil(n / line.length)).slice(0, n), "latin1");
}

export interface MemDisk {
  index: number;
  blockSize: number;
  data: Buffer;
  dirty: Bitmap;
}

/** Kinds of block content, so frames mix zero runs, compressible and incompressible data. */
export type Kind = "zero" | "random" | "text";

export function makeDisk(index: number, blockSize: number, kinds: Kind[], seed: number): MemDisk {
  const data = Buffer.alloc(kinds.length * blockSize);
  kinds.forEach((k, b) => {
    if (k === "random") randomBytes(blockSize, seed * 100_000 + b).copy(data, b * blockSize);
    if (k === "text") textBytes(blockSize, b).copy(data, b * blockSize);
  });
  return { index, blockSize, data, dirty: new Bitmap(kinds.length) };
}

export function randomKinds(blocks: number, next: () => number): Kind[] {
  const kinds: Kind[] = [];
  while (kinds.length < blocks) {
    const k: Kind = (["zero", "random", "text"] as const)[Math.floor(next() * 3)]!;
    const len = 1 + Math.floor(next() * 12);
    for (let i = 0; i < len && kinds.length < blocks; i++) kinds.push(k);
  }
  return kinds;
}

export function randomDirty(d: MemDisk, next: () => number): void {
  for (let b = 0; b < d.dirty.size; ) {
    const len = 1 + Math.floor(next() * 40);
    if (next() < 0.6) d.dirty.setRange(b, Math.min(d.dirty.size, b + len));
    b += len;
  }
}

/** A FrozenCycle over memory; reads hand out fresh copies (the sender may transfer them to a worker). */
export function memCycle(disks: MemDisk[]): FrozenCycle {
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

export const SENTINEL = 0xee;

export interface Replica {
  images: Map<number, Buffer>;
  frames: ReceivedFrame["header"][];
}

/** Applies frames like the replica does: zstd payloads decoded, zero frames written as zeros. */
export function replicaSink(disks: MemDisk[], pool: CodecPool): { replica: Replica; sink: (f: ReceivedFrame) => Promise<void> } {
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
    if (data.length !== h.length) throw new Error(`frame ${h.index} decoded to ${data.length} bytes for a ${h.length}-byte range`);
    data.copy(img, h.offset);
  };
  return { replica, sink };
}

export function expectReplicaMatches(disks: MemDisk[], replica: Replica): void {
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

export function newStats(): SendStats {
  return { changedBytes: 0, dataBytes: 0, wireBytes: 0, frames: 0 };
}

export const REL = "rel-0001";

/** Sender options for cycle `seq` of REL, built on the cycle before it. */
export function sendOpts(seq: number, compress: boolean, extra: Partial<SendOptions> = {}): SendOptions {
  return { relationshipId: REL, seq, base: seq - 1, compress, marks: { point: null, recoveryHistory: 0, frequencySeconds: 30, resync: null, prepared: false, returnPath: null }, ...extra };
}

export function expectations(disks: MemDisk[], seq: number, auth?: StreamAuth, extra: Partial<ReceiveExpectations> = {}): ReceiveExpectations {
  return { relationshipId: REL, seq, base: seq - 1, disks: new Map(disks.map((d) => [d.index, d.data.length])), auth, ...extra };
}

export async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of stream) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

/** Splits wire bytes into whole frames (header + payload) without verifying them. */
export function splitFrames(wire: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < wire.length; ) {
    const len = HEADER_SIZE + wire.readUInt32LE(at + 20);
    out.push(wire.subarray(at, at + len));
    at += len;
  }
  return out;
}

export async function* feed(buffers: Buffer[]): AsyncGenerator<Buffer> {
  for (const b of buffers) yield b;
}

export async function receiveError(buffers: Buffer[], want: ReceiveExpectations): Promise<unknown> {
  return receiveCycle(feed(buffers), want, async () => undefined).then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** A mixed two-disk cycle with different block sizes, shared by several tests. */
export function mixedDisks(seed: number): MemDisk[] {
  const next = rng(seed);
  const d0 = makeDisk(0, 4096, randomKinds(300, next), seed);
  const d2 = makeDisk(2, 512, randomKinds(700, next), seed + 1);
  randomDirty(d0, next);
  randomDirty(d2, next);
  // Make sure a zero run, a text run and a random run are each in the cycle.
  d0.dirty.setRange(0, 40);
  return [d0, d2];
}
