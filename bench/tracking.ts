/**
 * Guest write throughput through the lab block layer, change tracking off vs on. Both run on
 * the same pre-written image, alternately, and the medians count: on this machine, fresh page
 * cache costs more than tracking does, and would otherwise decide the result.
 */
import { randomFillSync, randomInt } from "node:crypto";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { TrackedDisk } from "../server/agent/tracking/tracked-disk.js";
import { createSparseFile } from "../server/agent/util/files.js";
import { SerialQueue } from "../server/agent/util/serial-queue.js";

const MiB = 1024 * 1024;
const DISK = 1024 * MiB;
const ROUNDS = 5;

export interface TrackingResult {
  pattern: string;
  offMiBps: number;
  onMiBps: number;
  ratio: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function run(file: string, tracking: boolean, pattern: "random-4k" | "sequential-1m", bytes: number): Promise<number> {
  await rm(`${file}.track`, { force: true });
  const disk = await TrackedDisk.open(0, file, DISK);
  if (tracking) await disk.startTracking(false);
  const q = new SerialQueue();
  const size = pattern === "random-4k" ? 4096 : MiB;
  const buf = Buffer.allocUnsafe(size);
  randomFillSync(buf);
  const started = process.hrtime.bigint();
  // The lab guest keeps a few writes queued, as a guest's disk driver would.
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < bytes / size; i++) {
    const offset = pattern === "random-4k" ? randomInt(DISK / 4096) * 4096 : (i * size) % DISK;
    inflight.push(q.run(() => disk.write(offset, buf)));
    if (inflight.length >= 8) await inflight.shift();
  }
  await Promise.all(inflight);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await disk.close();
  return bytes / MiB / seconds;
}

export async function benchTracking(dir: string): Promise<TrackingResult[]> {
  const file = join(dir, "tracking.raw");
  await createSparseFile(file, DISK);
  const fh = await open(file, "r+");
  const fill = Buffer.alloc(4 * MiB, 1);
  for (let pos = 0; pos < DISK; pos += fill.length) await fh.write(fill, 0, fill.length, pos);
  await fh.close();
  const results: TrackingResult[] = [];
  for (const [pattern, bytes] of [
    ["random-4k", 64 * MiB],
    ["sequential-1m", 1024 * MiB],
  ] as const) {
    const off: number[] = [];
    const on: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      off.push(await run(file, false, pattern, bytes));
      on.push(await run(file, true, pattern, bytes));
    }
    results.push({ pattern, offMiBps: median(off), onMiBps: median(on), ratio: median(on) / median(off) });
  }
  await rm(file, { force: true });
  await rm(`${file}.track`, { force: true });
  return results;
}
