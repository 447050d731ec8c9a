/**
 * The shortest frequency at which 10 VMs, each with a guest writing 1 MiB/s, replicate with
 * no missed cycle on this machine: each candidate runs for a while and the agent's own
 * missed-cycle count decides.
 */
import { join } from "node:path";
import { startPair, type VmView } from "../server/agent/testing/harness.js";

const MiB = 1024 * 1024;

export interface FrequencyResult {
  vms: number;
  churnMiBps: number;
  trialSeconds: number;
  trials: { frequencySeconds: number; missedCycles: number; successfulCycles: number }[];
  shortestWithoutMisses: number | null;
}

export async function benchFrequency(dir: string, log: (s: string) => void, trialSeconds = Number(process.env.RM_BENCH_TRIAL_SECONDS ?? 45)): Promise<FrequencyResult> {
  const pair = await startPair({ dir: join(dir, "frequency") });
  const trials: FrequencyResult["trials"] = [];
  try {
    const { primary, replica } = pair;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: `churn-${i}`, disks: [{ sizeBytes: 256 * MiB }], workload: { pattern: "random-4k", rateMiBps: 1 } });
      ids.push(vm.id);
      await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, frequencySeconds: 30, startInitialReplication: false });
      await primary.ok("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
      await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    }
    for (const frequencySeconds of [5, 10, 15, 30]) {
      log(`frequency: 10 VMs at 1 MiB/s each, every ${frequencySeconds} s for ${trialSeconds} s...`);
      for (const id of ids) {
        await primary.ok("PATCH", `/api/v1/vms/${id}/replication`, { frequencySeconds });
        await primary.ok("POST", `/api/v1/vms/${id}/replication/statistics/reset`);
      }
      await new Promise((r) => setTimeout(r, trialSeconds * 1000));
      let missed = 0;
      let ok = 0;
      for (const id of ids) {
        // Cycles due since the reset (by the frequency) against cycles that succeeded; one
        // cycle of slack for where the trial window falls in the schedule.
        const s = await primary.ok<{ monitoring: { expectedCycles: number; successfulCycles: number }; errorsEncountered: number }>("GET", `/api/v1/vms/${id}/replication/statistics`);
        missed += Math.max(0, s.monitoring.expectedCycles - 1 - s.monitoring.successfulCycles) + s.errorsEncountered;
        ok += s.monitoring.successfulCycles;
      }
      trials.push({ frequencySeconds, missedCycles: missed, successfulCycles: ok });
      if (missed === 0) break;
    }
    return { vms: 10, churnMiBps: 1, trialSeconds, trials, shortestWithoutMisses: trials.find((t) => t.missedCycles === 0)?.frequencySeconds ?? null };
  } finally {
    await pair.cleanup();
  }
}
