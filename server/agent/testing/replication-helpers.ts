/**
 * What replication tests do over and over on a pair of agents: read the primary's record,
 * the events of a VM, replicate now, make a replicated VM, change a disk behind the agent's
 * back, and resynchronize. `pair` is a getter: the pair is made in beforeAll.
 */
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import type { CycleOutcome } from "../replication/primary.js";
import { waitFor, type AgentProcess, type Pair, type VmView } from "./harness.js";

/** The fields of a relationship record these tests read. */
export interface RelView {
  state: string;
  reason: string | null;
  lastAckedSeq: number;
  resync?: { comparedBytes: number; totalBytes: number } | null;
  stats: { lastError: string | null };
}

export interface EventRow {
  id: number;
  kind: string;
  message: string;
  data: ({ comparedBytes?: number; differingBytes?: number; totalBytes?: number } & Record<string, unknown>) | null;
}

export function replicationHelpers(pair: () => Pair) {
  const primary = () => pair().primary;
  const events = (vmId: string, host: AgentProcess = primary()) => host.ok<EventRow[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
  const lastEventId = async (vmId: string, host: AgentProcess = primary()) => (await events(vmId, host)).at(-1)?.id ?? 0;

  /** A cycle now; its outcome, success or not. */
  const replicateNow = (vmId: string) => primary().ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
  /** A cycle now, which must succeed. */
  async function replicateOk(vmId: string): Promise<CycleOutcome> {
    const out = await replicateNow(vmId);
    expect(out.ok, out.error).toBe(true);
    return out;
  }

  /** Waits for the resynchronization-complete event after event `after`. */
  const completion = (vmId: string, after: number, timeoutMs = 120_000) =>
    waitFor("resynchronization to complete", async () => (await events(vmId)).find((e) => e.id > after && e.kind === "replication.resync-complete"), timeoutMs, 200);

  return {
    events,
    lastEventId,
    replicateNow,
    replicateOk,
    completion,

    rel: async (vmId: string) => (await primary().ok<RelView[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!,

    /**
     * A VM with 64 KiB written on each of its disks, replicated to hv02 (HTTP mode unless
     * `extra` says otherwise) through its initial copy.
     */
    async replicated(name: string, disks: number[], extra: Record<string, unknown> = {}): Promise<string> {
      const vm = await primary().ok<VmView>("POST", "/api/v1/vms", { name, disks: disks.map((sizeBytes) => ({ sizeBytes })) });
      for (const [i, size] of disks.entries()) {
        for (let k = 0; k < 6; k++) await primary().ok("PUT", `/api/v1/vms/${vm.id}/disks/${i}/data?offset=${k * Math.floor(size / 8 / 4096) * 4096}`, randomBytes(64 * 1024));
      }
      await primary().ok("POST", `/api/v1/vms/${vm.id}/replication`, {
        replicaServer: "hv02.lab.test",
        replicaPort: pair().replica.ports.http,
        authMode: "http",
        frequencySeconds: 900,
        startInitialReplication: false,
        ...extra,
      });
      await replicateOk(vm.id);
      return vm.id;
    },

    /**
     * Writes straight into the primary's image of disk 0 while its agent is stopped (tracking
     * off); the agent must then say Resynchronization required (unless its policy starts one,
     * which may even have finished by now).
     */
    async writeBehindTheAgentsBack(vmId: string, writes: [number, number][], opts = { resyncStartsByItself: false }): Promise<void> {
      await primary().stop();
      const fh = await open(join(pair().dir, "hv01", "vms", vmId, "disk0.raw"), "r+");
      for (const [offset, length] of writes) await fh.write(randomBytes(length), 0, length, offset);
      await fh.close();
      await primary().start();
      if (opts.resyncStartsByItself) return;
      expect((await primary().ok<RelView[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!.state).toBe("Resynchronization required");
    },

    async resyncAndWait(vmId: string): Promise<EventRow> {
      const mark = await lastEventId(vmId);
      await primary().ok("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
      return completion(vmId, mark);
    },
  };
}
