/**
 * Adversarial tests of resynchronization by block hashes: kill -9 of either agent in the
 * middle of a range, and a guest writing all through it (HTTP tampering: resync-tamper.test.ts).
 * Every scenario ends with equal disk hashes.
 */
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome } from "./replication/primary.js";
import { diskHash, startPair, waitFor, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;

interface Rel {
  state: string;
  reason: string | null;
  lastAckedSeq: number;
  resync?: { comparedBytes: number; totalBytes: number } | null;
  stats: { lastError: string | null };
}
interface Ev {
  id: number;
  kind: string;
  message: string;
  data: { comparedBytes?: number; differingBytes?: number; totalBytes?: number } | null;
}

describe("resynchronization, adversarially", () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => pair?.cleanup());

  const rel = async (vmId: string) => (await pair.primary.ok<Rel[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!;
  const events = (vmId: string, host = pair.primary) => host.ok<Ev[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
  const lastEventId = async (vmId: string) => (await events(vmId)).at(-1)?.id ?? 0;

  async function replicated(name: string, sizeBytes: number, extra: Record<string, unknown> = {}): Promise<string> {
    const vm = await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes }] });
    for (let i = 0; i < 6; i++) await pair.primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=${i * Math.floor(sizeBytes / 8 / 4096) * 4096}`, randomBytes(64 * 1024));
    await pair.primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: pair.replica.ports.http,
      authMode: "http",
      frequencySeconds: 900,
      startInitialReplication: false,
      ...extra,
    });
    const out = await pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
    expect(out.ok, out.error).toBe(true);
    return vm.id;
  }

  /** Writes straight into the primary's image while its agent is stopped (tracking off). */
  async function writeBehindTheAgentsBack(vmId: string, writes: [number, number][]): Promise<void> {
    await pair.primary.stop();
    const fh = await open(join(pair.dir, "hv01", "vms", vmId, "disk0.raw"), "r+");
    for (const [offset, length] of writes) await fh.write(randomBytes(length), 0, length, offset);
    await fh.close();
    await pair.primary.start();
    expect((await rel(vmId)).state).toBe("Resynchronization required");
  }

  async function completion(vmId: string, after: number, timeoutMs = 120_000): Promise<Ev> {
    return waitFor("resynchronization to complete", async () => (await events(vmId)).find((e) => e.id > after && e.kind === "replication.resync-complete"), timeoutMs, 200);
  }

  // A disk of two ranges (256 MiB, then 16 MiB), differing blocks in each and across the boundary.
  const SIZE = 272 * MiB;
  const WRITES: [number, number][] = [
    [MiB, 4096],
    [3 * MiB + 8192, 8192],
    [100 * MiB, 65536],
    [256 * MiB - 4096, 8192],
    [260 * MiB, 12288],
    [SIZE - 4096, 4096],
  ];
  const DIFFERING = WRITES.reduce((n, [, l]) => n + l, 0);

  it.each([
    ["replica", "replica.receive-mid"],
    ["replica", "replica.apply-mid"],
    ["replica", "replica.after-apply"],
    ["primary", "primary.send-mid"],
    ["primary", "primary.after-ack"],
  ] as const)("continues after the %s is killed at %s during a range, and ends with equal disks", async (who, fp) => {
    const vmId = await replicated(`kill-${fp}`, SIZE);
    await writeBehindTheAgentsBack(vmId, WRITES);
    const agent = who === "replica" ? pair.replica : pair.primary;
    // Armed now: the only cycles from here on are the resynchronization's ranges.
    if (who === "replica") await pair.replica.restart([fp]);
    else {
      await pair.primary.restart([fp]);
      expect((await rel(vmId)).state).toBe("Resynchronization required");
    }
    const mark = await lastEventId(vmId);
    const started = await pair.primary.api("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await agent.exited(60_000);
    await agent.start();
    const done = await completion(vmId, mark);
    expect(await rel(vmId)).toMatchObject({ state: "Replicating", reason: null, resync: null });
    expect(done.data?.comparedBytes).toBe(SIZE);
    // A range compared twice (its cycle was applied, the acknowledgement lost) differs 0 the second time.
    expect(done.data!.differingBytes).toBeLessThanOrEqual(DIFFERING);
    // Ordinary cycles follow (a 4 KiB change away from every repaired block, so equal disks
    // below also prove the resynchronization itself left none behind).
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${7 * MiB}`, randomBytes(4096));
    const next = await pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(next.ok, next.error).toBe(true);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    await pair.primary.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
    await pair.replica.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
  });

  it("ends with equal disks when the guest writes all through the resynchronization", async () => {
    const vmId = await replicated("busy-guest", SIZE);
    await writeBehindTheAgentsBack(vmId, WRITES);
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/workload`, { pattern: "random-4k", rateMiBps: 8 });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    const mark = await lastEventId(vmId);
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
    const done = await completion(vmId, mark);
    expect(done.data?.comparedBytes).toBe(SIZE);
    // Keep writing a little after the end, then stop and send the rest.
    await new Promise((r) => setTimeout(r, 500));
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
    const last = await pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(last.ok, last.error).toBe(true);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    await pair.primary.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
    await pair.replica.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
  });
});
