/**
 * Resynchronization on the primary: the disks are compared range by range with the
 * replica's by block hashes, 64 KiB first and then 4 KiB inside the blocks that differ, and
 * only the differing 4 KiB blocks are sent. Each range is one cycle, frozen like any other
 * (so what is compared and sent is the disk as of that cycle's freeze), and the progress is
 * saved after each, so a paused or interrupted resynchronization continues where it stopped.
 */
import type { BlockHashesBody } from "../../shared/agent-api.js";
import type { FrozenCycle, FrozenDisk } from "../hypervisor/types.js";
import type { PrimaryRecord } from "../state/relationships.js";
import { Bitmap } from "../tracking/bitmap.js";
import { HASH_BYTES, hashRanges } from "./block-hashes.js";

export const SEGMENT_BYTES = 256 * 1024 * 1024;

/** Whether local time of day at `t` is inside [start, end), a window that may span midnight. */
function inWindow(t: number, start: string, end: string): boolean {
  const d = new Date(t);
  const m = d.getHours() * 60 + d.getMinutes();
  const [s, e] = [start, end].map((x) => Number(x.slice(0, 2)) * 60 + Number(x.slice(3)));
  return s! <= e! ? m >= s! && m < e! : m >= s! || m < e!;
}

/** Whether a required resynchronization should start at `t`: scheduled for then, automatic, or in its window. */
export function resyncDue(rec: Pick<PrimaryRecord, "resyncAt" | "resyncPolicy">, t: number): boolean {
  const policy = rec.resyncPolicy ?? { mode: "manual" };
  if (rec.resyncAt !== null && rec.resyncAt !== undefined && Date.parse(rec.resyncAt) <= t) return true;
  return policy.mode === "automatic" || (policy.mode === "window" && inWindow(t, policy.start, policy.end));
}
const COARSE = 65536 as const;
const FINE = 4096 as const;

export interface ResyncProgress {
  /** Position in the relationship's disk list, and the next byte to compare there. */
  diskPos: number;
  offset: number;
  comparedBytes: number;
  differingBytes: number;
  totalBytes: number;
  startedAt: string;
}

export interface Segment {
  disk: number;
  from: number;
  to: number;
  final: boolean;
}

export function newProgress(disks: { sizeBytes: number }[], startedAt: string): ResyncProgress {
  return { diskPos: 0, offset: 0, comparedBytes: 0, differingBytes: 0, totalBytes: disks.reduce((n, d) => n + d.sizeBytes, 0), startedAt };
}

export function nextSegment(disks: { index: number; sizeBytes: number }[], p: ResyncProgress): Segment {
  const d = disks[p.diskPos]!;
  const to = Math.min(d.sizeBytes, p.offset + SEGMENT_BYTES);
  return { disk: d.index, from: p.offset, to, final: p.diskPos === disks.length - 1 && to === d.sizeBytes };
}

export function advance(disks: { sizeBytes: number }[], p: ResyncProgress, seg: Segment, differing: number): ResyncProgress {
  const done = seg.to === disks[p.diskPos]!.sizeBytes;
  return {
    ...p,
    diskPos: done ? p.diskPos + 1 : p.diskPos,
    offset: done ? 0 : seg.to,
    comparedBytes: p.comparedBytes + (seg.to - seg.from),
    differingBytes: p.differingBytes + differing,
  };
}

/** Hashes of the frozen disk's blocks in the given ranges, in order. */
function localHashes(disk: FrozenDisk, ranges: [number, number][], blockSize: number): Promise<Buffer> {
  return hashRanges(ranges, blockSize, (offset, length) => disk.read(offset / disk.blockSize, (offset + length) / disk.blockSize));
}

/** The ranges (of `blockSize` blocks) whose hashes differ, merged where adjacent. */
function differing(ranges: [number, number][], blockSize: number, mine: Buffer, theirs: Buffer): [number, number][] {
  const out: [number, number][] = [];
  let slot = 0;
  for (const [offset, length] of ranges) {
    for (let off = offset; off < offset + length; off += blockSize, slot++) {
      const a = mine.subarray(slot * HASH_BYTES, (slot + 1) * HASH_BYTES);
      const b = theirs.subarray(slot * HASH_BYTES, (slot + 1) * HASH_BYTES);
      if (a.equals(b)) continue;
      const last = out.at(-1);
      if (last && last[0] + last[1] === off) last[1] += blockSize;
      else out.push([off, blockSize]);
    }
  }
  return out;
}

/** Splits ranges so that no request asks for more than `max` bytes. */
function batches(ranges: [number, number][], max: number): [number, number][][] {
  const out: [number, number][][] = [[]];
  let bytes = 0;
  for (const r of ranges) {
    if (bytes + r[1] > max && out.at(-1)!.length > 0) {
      out.push([]);
      bytes = 0;
    }
    out.at(-1)!.push(r);
    bytes += r[1];
  }
  return out.filter((b) => b.length > 0);
}

/**
 * Narrows a frozen cycle (whose segment range was marked changed before the freeze) to what
 * the replica lacks: inside the segment only the 4 KiB blocks whose hashes differ, outside it
 * the ordinary changes. `theirs` asks the replica for its hashes.
 */
export async function compareSegment(
  frozen: FrozenCycle,
  seg: Segment,
  sizeBytes: number,
  theirs: (body: BlockHashesBody) => Promise<Buffer>,
): Promise<{ cycle: FrozenCycle; differingBytes: number }> {
  const disk = frozen.disks.find((d) => d.index === seg.disk)!;
  const whole: [number, number][] = [[seg.from, seg.to - seg.from]];
  const [mineCoarse, theirsCoarse] = await Promise.all([localHashes(disk, whole, COARSE), theirs({ disk: seg.disk, blockSize: COARSE, ranges: whole })]);
  const coarse = differing(whole, COARSE, mineCoarse, theirsCoarse);
  const fine: [number, number][] = [];
  for (const batch of batches(coarse, 64 * 1024 * 1024)) {
    const [mine, their] = await Promise.all([localHashes(disk, batch, FINE), theirs({ disk: seg.disk, blockSize: FINE, ranges: batch })]);
    fine.push(...differing(batch, FINE, mine, their));
  }

  const blocks = Math.ceil(sizeBytes / disk.blockSize);
  const send = new Bitmap(blocks);
  const segFrom = seg.from / disk.blockSize;
  const segTo = seg.to / disk.blockSize;
  for (const [a, b] of disk.runs(Number.MAX_SAFE_INTEGER)) {
    if (a < segFrom) send.setRange(a, Math.min(b, segFrom));
    if (b > segTo) send.setRange(Math.max(a, segTo), b);
  }
  let differingBytes = 0;
  for (const [offset, length] of fine) {
    send.setRange(offset / disk.blockSize, (offset + length) / disk.blockSize);
    differingBytes += length;
  }
  const narrowed: FrozenDisk = {
    index: disk.index,
    blockSize: disk.blockSize,
    changedBytes: send.count() * disk.blockSize,
    runs: (max) => send.runs(max),
    read: (from, to, into) => disk.read(from, to, into),
  };
  return { cycle: { ...frozen, disks: frozen.disks.map((d) => (d === disk ? narrowed : d)) }, differingBytes };
}
