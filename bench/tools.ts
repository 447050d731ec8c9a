/** What the benchmark parts share: timing, and the tools an administrator would use instead. */
import { execFile } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { promisify } from "node:util";
import type { CycleOutcome } from "../server/agent/replication/primary.js";
import type { AgentProcess } from "../server/agent/testing/harness.js";

export const run = promisify(execFile);
export const MiB = 1024 * 1024;

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const v = await fn();
  return [v, Number(process.hrtime.bigint() - t) / 1e9];
}

/** The run that took the least time. */
export function fastest<T extends { seconds: number }>(runs: T[]): T {
  return runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

/**
 * `rsync --inplace --no-whole-file` of `source` onto `target` (the delta algorithm, as across a
 * network), then `sync`: like a cycle, which is durable once acknowledged.
 */
export async function rsyncInPlace(source: string, target: string, extra: string[] = []): Promise<{ seconds: number; sentBytes: number }> {
  const [out, seconds] = await timed(async () => {
    const o = await run("rsync", ["--inplace", "--no-whole-file", ...extra, "--stats", source, target], { maxBuffer: 10 * MiB });
    await run("sync", [target]);
    return o;
  });
  const sent = /Total bytes sent: ([\d,.]+)/.exec(out.stdout)?.[1] ?? "0";
  return { seconds, sentBytes: Number(sent.replace(/[,.]/g, "")) };
}

/** Writes incompressible data over 1% of a VM's disk in random 64 KiB blocks, through the guest's block layer; answers the bytes changed. */
export async function changeOnePercent(agent: AgentProcess, vmId: string, diskBytes: number): Promise<number> {
  const blocks = Math.floor((diskBytes * 0.01) / (64 * 1024));
  const used = new Set<number>();
  while (used.size < blocks) used.add(randomInt(diskBytes / (64 * 1024)));
  for (const b of used) await agent.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${b * 64 * 1024}`, randomBytes(64 * 1024));
  return blocks * 64 * 1024;
}

/** One replication cycle now, timed until it is acknowledged (durable on the replica). */
export async function deltaCycle(agent: AgentProcess, vmId: string): Promise<{ seconds: number; wireBytes: number }> {
  const [outcome, seconds] = await timed(() => agent.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`));
  if (!outcome.ok) throw new Error(`delta cycle failed: ${outcome.error}`);
  return { seconds, wireBytes: outcome.wireBytes };
}
