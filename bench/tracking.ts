/** Guest write throughput through the lab block layer, change tracking off vs on. */
import { randomFillSync, randomInt } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { TrackedDisk } from "../server/agent/tracking/tracked-disk.js";
import { createSparseFile } from "../server/agent/util/files.js";
import { SerialQueue } from "../server/agent/util/serial-queue.js";

const MiB = 1024 * 1024;
const DISK = 4096 * MiB;

export interface TrackingResult {
  pattern: string;
  offMiBps: number;
  onMiBps: number;
  ratio: number;
}

async function run(dir: string, tracking: boolean, pattern: "random-4k" | "sequential-1m", bytes: number): Promise<number> {
  const file = join(dir, `tracking-${tracking}.raw`);
  await rm(file, { force: true });
  await rm(`${file}.track`, { force: true });
  await createSparseFile(file, DISK);
  const disk = await TrackedDisk.open(0, file, DISK);
  if (tracking) await disk.startTracking(false);
  const q = new SerialQueue();
  const size = pattern === "random-4k" ? 4096 : MiB;
  const buf = Buffer.allocUnsafe(size);
  randomFillSync(buf);
  const count = bytes / size;
  const started = process.hrtime.bigint();
  // The lab guest keeps a few writes queued, as a guest's disk driver would.
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const offset = pattern === "random-4k" ? randomInt(DISK / 4096) * 4096 : (i * size) % DISK;
    inflight.push(q.run(() => disk.write(offset, buf)));
    if (inflight.length >= 8) await inflight.shift();
  }
  await Promise.all(inflight);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await disk.close();
  await rm(file, { force: true });
  await rm(`${file}.track`, { force: true });
  return bytes / MiB / seconds;
}

export async function benchTracking(dir: string): Promise<TrackingResult[]> {
  const results: TrackingResult[] = [];
  for (const [pattern, bytes] of [
    ["random-4k", 256 * MiB],
    ["sequential-1m", 2048 * MiB],
  ] as const) {
    // Alternate and keep the best of three, so page-cache warm-up favours neither side.
    let off = 0;
    let on = 0;
    for (let i = 0; i < 3; i++) {
      off = Math.max(off, await run(dir, false, pattern, bytes));
      on = Math.max(on, await run(dir, true, pattern, bytes));
    }
    results.push({ pattern, offMiBps: off, onMiBps: on, ratio: on / off });
  }
  return results;
}
