/**
 * npm run bench: Replica Manager against the tools an administrator would use instead, in
 * one run on this machine, reported as ratios. Figures, not pass/fail: see README.
 *   RM_BENCH_GIB   size of the replicated disk (default 8)
 *   RM_BENCH_DIR   scratch folder (default /var/tmp); needs about 3 × the disk size free
 *   RM_BENCH_FAILOVER_GIB  size of the sparse disk of the failover part (default 64)
 *   RM_BENCH_TRIAL_SECONDS length of each frequency trial (default 45)
 *   RM_BENCH_QEMU_GIB  size of the QEMU VM's qcow2 disk (default 8); 0 skips the QEMU part
 *   RM_BENCH_ONLY  comma-separated parts to run (replication, failover, frequency, tracking,
 *                  compression, qemu); all of them by default
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "../server/agent/agent-process.js";
import { benchCompression, type CompressionResult } from "./compression.js";
import { benchReplication, type ReplicationResult } from "./replication.js";
import { benchTracking, type TrackingResult } from "./tracking.js";
import { benchFailover, type FailoverResult } from "./failover.js";
import { benchFrequency, type FrequencyResult } from "./frequency.js";
import { benchQemuDelta, type QemuDeltaResult } from "./qemu.js";

const MiB = 1024 * 1024;
const fmt = (n: number, d = 2) => n.toFixed(d);
const mib = (b: number) => `${fmt(b / MiB, 1)} MiB`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n");
}

export function printQemu(q: QemuDeltaResult): void {
  console.log(`\nQEMU VM (${q.accelerator}): one delta cycle of a ${q.diskGiB} GiB qcow2 disk after 1% changed (${mib(q.changedBytes)} in random 64 KiB blocks, incompressible)`);
  console.log(
    table([
      ["", "seconds", "bytes sent", "sent / changed", "speed vs rsync"],
      ["rsync --inplace --no-whole-file of the qcow2 file + sync", fmt(q.rsyncSeconds), mib(q.rsyncSentBytes), fmt(q.rsyncSentBytes / q.changedBytes), "1.00×"],
      ["Replica Manager delta cycle (dirty bitmap, fleecing, NBD)", fmt(q.deltaSeconds, 3), mib(q.deltaWireBytes), fmt(q.deltaWireBytes / q.changedBytes, 3), `${fmt(q.rsyncSeconds / q.deltaSeconds, 1)}×`],
    ]),
  );
}

async function main(): Promise<void> {
  const gib = Number(process.env.RM_BENCH_GIB ?? 8);
  const base = process.env.RM_BENCH_DIR ?? "/var/tmp";
  const dir = await mkdtemp(join(base, "rm-bench-"));
  const log = (s: string) => console.log(`  … ${s}`);
  try {
    console.log("Replica Manager benchmark\n");
    const only = process.env.RM_BENCH_ONLY?.split(",").map((s) => s.trim());
    const wanted = (part: string) => !only || only.includes(part);
    if (wanted("compression")) log("compression codecs on guest-like data...");
    const compression = wanted("compression") ? benchCompression() : undefined;
    if (wanted("tracking")) log("guest write throughput, change tracking off and on...");
    const tracking = wanted("tracking") ? await benchTracking(dir) : undefined;
    const repl = wanted("replication") ? await benchReplication(dir, gib, log) : undefined;
    const failover = wanted("failover") ? await benchFailover(dir, Number(process.env.RM_BENCH_FAILOVER_GIB ?? 64), log) : undefined;
    const frequency = wanted("frequency") ? await benchFrequency(dir, log) : undefined;
    const qemuGiB = Number(process.env.RM_BENCH_QEMU_GIB ?? 8);
    const qemu = wanted("qemu") && qemuGiB > 0 ? await benchQemuDelta(dir, qemuGiB, log) : undefined;
    if (repl) printReplication(repl);
    if (qemu) printQemu(qemu);
    if (failover) printFailover(failover);
    if (frequency) printFrequency(frequency);
    if (tracking) printTracking(tracking);
    if (compression) printCompression(compression);
    const equal = (!repl || (repl.equal && repl.resync.equal)) && (qemu?.equal ?? true);
    if (repl || qemu) console.log(`\nReplica equal to primary after the run (SHA-256): ${equal ? "yes" : "NO"}`);
    await mkdir(join(ROOT, "bench-results"), { recursive: true });
    await writeFile(join(ROOT, "bench-results", "agent.json"), JSON.stringify({ date: new Date().toISOString(), replication: repl, qemu, failover, frequency, tracking, compression }, null, 2));
    console.log("(figures saved in bench-results/agent.json)");
    if (!equal) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function printReplication(repl: ReplicationResult): void {
  const initialPlain = repl.cpSeconds / repl.initialPlainSeconds;
  const initialZstd = repl.cpSeconds / repl.initialZstdSeconds;
  const deltaSpeed = repl.rsyncSeconds / repl.deltaSeconds;
  const wire = repl.deltaWireBytes / repl.changedBytes;
  const runs = (xs: number[], digits = 2) => xs.map((x) => fmt(x, digits)).join(", ");
  console.log(`\nInitial replication of a ${repl.diskGiB} GiB disk (HTTPS, mutual TLS) vs cp + sync (each the best of two runs)`);
  console.log(
    table([
      ["", "seconds", "on the wire", "speed vs cp", "target"],
      ["cp + sync", fmt(repl.cpSeconds), "-", "1.00×", ""],
      ["initial, no compression", fmt(repl.initialPlainSeconds), mib(repl.initialPlainWireBytes), `${fmt(initialPlain)}×`, "≥ 0.80×"],
      ["initial, zstd", fmt(repl.initialZstdSeconds), mib(repl.initialZstdWireBytes), `${fmt(initialZstd)}×`, "≥ 0.50×"],
    ]),
  );
  console.log(`  runs: cp ${runs(repl.runs.cp)} s; no compression ${runs(repl.runs.initialPlain)} s; zstd ${runs(repl.runs.initialZstd)} s`);
  console.log(`\nOne delta cycle after 1% of the disk changed (${mib(repl.changedBytes)} in random 64 KiB blocks, incompressible; the best of two rounds)`);
  console.log(
    table([
      ["", "seconds", "bytes sent", "sent / changed", "speed vs rsync", "target"],
      ["rsync --inplace --no-whole-file + sync", fmt(repl.rsyncSeconds), mib(repl.rsyncSentBytes), fmt(repl.rsyncSentBytes / repl.changedBytes), "1.00×", ""],
      ["Replica Manager delta cycle", fmt(repl.deltaSeconds, 3), mib(repl.deltaWireBytes), fmt(wire, 3), `${fmt(deltaSpeed, 1)}×`, "≥ 20×, ≤ 1.05 sent/changed"],
    ]),
  );
  console.log(`  runs: rsync ${runs(repl.runs.rsync)} s; delta cycle ${runs(repl.runs.delta, 3)} s`);
  const rs = repl.resync;
  console.log(`\nResynchronization of the ${repl.diskGiB} GiB disk after 1% of its 4 KiB blocks changed behind the agent's back (${mib(rs.differingBytes)})`);
  console.log(
    table([
      ["", "seconds", "bytes sent", "speed vs rsync"],
      ["rsync --inplace --no-whole-file + sync", fmt(rs.rsyncSeconds), mib(rs.rsyncSentBytes), "1.00×"],
      ["Replica Manager resynchronization", fmt(rs.seconds), `${mib(rs.streamBytes)} + ${mib(rs.hashBytes)} hashes`, `${fmt(rs.rsyncSeconds / rs.seconds)}×`],
    ]),
  );
}

function printFailover(failover: FailoverResult): void {
  console.log(`\nFailover on a ${failover.diskGiB} GiB sparse disk with an hour of history (${failover.points} points, ${mib(failover.historyBytes)} of undo logs)`);
  console.log(
    table([
      ["step", "seconds", "target"],
      ["test failover VM ready, latest point", fmt(failover.testLatestSeconds, 3), "< 2"],
      ["test failover VM ready, oldest point", fmt(failover.testOldestSeconds, 3), "< 2"],
      ["unplanned failover to the oldest point (VM started)", fmt(failover.failoverSeconds, 3), ""],
      ["Complete Failover to the oldest point", fmt(failover.completeOldestSeconds, 3), ""],
      [`(initial copy of the sparse disk)`, fmt(failover.initialSeconds, 1), ""],
    ]),
  );
}

function printFrequency(frequency: FrequencyResult): void {
  console.log(`\nShortest frequency with no missed cycle: 10 VMs writing 1 MiB/s each (${frequency.trialSeconds} s per trial)`);
  console.log(table([["every", "missed", "successful"], ...frequency.trials.map((t) => [`${t.frequencySeconds} s`, String(t.missedCycles), String(t.successfulCycles)])]));
  console.log(`shortest without misses: ${frequency.shortestWithoutMisses ? `${frequency.shortestWithoutMisses} s` : "none of 5-30 s"}`);
}

function printTracking(tracking: TrackingResult[]): void {
  console.log("\nGuest write throughput through the lab block layer, tracking off vs on");
  console.log(
    table([
      ["pattern", "off MiB/s", "on MiB/s", "on / off", "target"],
      ...tracking.map((t) => [t.pattern, fmt(t.offMiBps, 0), fmt(t.onMiBps, 0), `${fmt(t.ratio)}×`, "≥ 0.90×"]),
    ]),
  );
}

function printCompression(compression: CompressionResult[]): void {
  console.log("\nCompression of guest-like data (one core): the stream uses zstd level 1");
  console.log(table([["codec", "MiB/s", "ratio"], ...compression.map((c) => [c.codec, fmt(c.MiBps, 0), `${fmt(c.ratio)}:1`])]));
}

void main();
