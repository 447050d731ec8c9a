/**
 * Failover speed on a large sparse disk with an hour of recovery history: how soon a test
 * failover VM is ready (latest and oldest point), and how long an unplanned failover to the
 * oldest point takes to complete. Hyper-V's equivalents copy or merge disks; ours must not
 * depend on the disk's size.
 */
import { randomBytes, randomInt } from "node:crypto";
import { join } from "node:path";
import { startPair, type VmView } from "../server/agent/testing/harness.js";
import type { CycleOutcome } from "../server/agent/replication/primary.js";
import type { RecoveryPointInfo } from "../server/agent/replication/replica-store.js";

const MiB = 1024 * 1024;
const MINUTE = 60_000;

export interface FailoverResult {
  diskGiB: number;
  points: number;
  historyBytes: number;
  initialSeconds: number;
  testLatestSeconds: number;
  testOldestSeconds: number;
  failoverSeconds: number;
  completeOldestSeconds: number;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const v = await fn();
  return [v, Number(process.hrtime.bigint() - t) / 1e9];
}

export async function benchFailover(dir: string, diskGiB: number, log: (s: string) => void): Promise<FailoverResult> {
  const size = diskGiB * 1024 * MiB;
  const pair = await startPair({ dir: join(dir, "failover") });
  try {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "bench-failover", disks: [{ sizeBytes: size }] });
    const churn = async (n: number) => {
      for (let i = 0; i < n; i++) await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=${randomInt(size / MiB) * MiB}`, randomBytes(MiB));
    };
    await churn(32);
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, frequencySeconds: 300, recoveryHistory: 2, startInitialReplication: false });
    log(`failover: initial copy of a ${diskGiB} GiB sparse disk...`);
    const [, initialSeconds] = await timed(() => primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`));
    log("failover: an hour of 5-minute cycles (test clock), 64 MiB changing per cycle...");
    for (let i = 0; i < 13; i++) {
      await pair.advanceClock(5 * MINUTE);
      await churn(64);
      const out = await primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
      if (!out.ok) throw new Error(`cycle failed: ${out.error}`);
    }
    const points = (await replica.ok<RecoveryPointInfo[]>("GET", `/api/v1/vms/${vm.id}/recovery-points`)).filter((p) => p.kind !== "latest");
    const oldest = points.at(-1)!;
    const testOf = async (pointId: string) => {
      const [, s] = await timed(() => replica.ok("POST", `/api/v1/vms/${vm.id}/replication/test-failover`, { pointId }));
      await replica.ok("DELETE", `/api/v1/vms/${vm.id}/replication/test-failover`);
      return s;
    };
    log("failover: test failover from the latest and from the oldest point...");
    const testLatestSeconds = await testOf("latest");
    const testOldestSeconds = await testOf(oldest.id);
    log("failover: unplanned failover to the oldest point, then Complete...");
    await primary.kill();
    const [, failoverSeconds] = await timed(() => replica.ok("POST", `/api/v1/vms/${vm.id}/replication/failover`, { pointId: oldest.id, start: true }));
    const [, completeOldestSeconds] = await timed(() => replica.ok("POST", `/api/v1/vms/${vm.id}/replication/failover/complete`));
    return { diskGiB, points: points.length, historyBytes: points.reduce((n, p) => n + p.sizeBytes, 0), initialSeconds, testLatestSeconds, testOldestSeconds, failoverSeconds, completeOldestSeconds };
  } finally {
    await pair.cleanup();
  }
}
