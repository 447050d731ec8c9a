/**
 * ★ Beyond Hyper-V (issue 3, test 5): a 5-second relationship under a per-VM and then a
 * per-host bandwidth limit keeps to the limit (bytes sent over time) and ends equal.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReplicationStatistics } from "./replication/manager.js";
import { diskHash, startPair, waitFor, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;

interface Rel {
  state: string;
}

describe("bandwidth limits and 5-second replication", () => {
  let pair: Pair;
  let vmId: string;

  const rel = async () => (await pair.primary.ok<Rel[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!;
  const sent = async () => (await pair.primary.ok<ReplicationStatistics>("GET", `/api/v1/vms/${vmId}/replication/statistics`)).sentBytes!;

  /** Bytes the primary put on the wire per second over `ms`, cycles in flight included. */
  async function sendRate(ms: number): Promise<number> {
    const t0 = Date.now();
    const b0 = await sent();
    await new Promise((r) => setTimeout(r, ms));
    const b1 = await sent();
    return (b1 - b0) / ((Date.now() - t0) / 1000);
  }

  beforeAll(async () => {
    pair = await startPair();
    vmId = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "busy-01", disks: [{ sizeBytes: 64 * MiB }], workload: { pattern: "random-4k", rateMiBps: 3 } })).id;
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 5, bandwidthLimitMiBps: 0.5 });
    await waitFor("the initial copy", async () => (await rel()).state === "Replicating");
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    // The guest writes more than the limit lets through: the limit is what bounds the rate.
    await new Promise((r) => setTimeout(r, 2000));
  });
  afterAll(async () => pair?.cleanup());

  it("keeps to the per-VM limit while the guest writes faster", async () => {
    const rate = await sendRate(10_000);
    expect(rate).toBeLessThanOrEqual(0.5 * MiB * 1.15);
    expect(rate).toBeGreaterThan(0.25 * MiB);
    const stats = await pair.primary.ok<ReplicationStatistics>("GET", `/api/v1/vms/${vmId}/replication/statistics`);
    expect(stats).toMatchObject({ frequencySeconds: 5, bandwidthLimitMiBps: 0.5, hostBandwidthLimitMiBps: null });
    expect(stats.pendingBytes).toBeGreaterThan(0);
  });

  it("keeps to the host's limit, shared by its relationships", async () => {
    await pair.primary.ok("PATCH", `/api/v1/vms/${vmId}/replication`, { bandwidthLimitMiBps: null });
    expect(await pair.primary.ok("PUT", "/api/v1/replication-settings", { bandwidthLimitMiBps: 0.25 })).toEqual({ bandwidthLimitMiBps: 0.25 });
    await new Promise((r) => setTimeout(r, 1500));
    const rate = await sendRate(8000);
    expect(rate).toBeLessThanOrEqual(0.25 * MiB * 1.2);
    expect(rate).toBeGreaterThan(0.1 * MiB);
    expect((await pair.primary.ok<ReplicationStatistics>("GET", `/api/v1/vms/${vmId}/replication/statistics`)).hostBandwidthLimitMiBps).toBe(0.25);
    const bad = await pair.primary.api("PUT", "/api/v1/replication-settings", { bandwidthLimitMiBps: 0 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/at least 0.1 MiB\/s/);
  });

  it("catches up once the limits are lifted and ends with equal disks", async () => {
    await pair.primary.ok("PUT", "/api/v1/replication-settings", { bandwidthLimitMiBps: null });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
    await waitFor("the backlog to drain", async () => {
      const out = await pair.primary.ok<{ ok: boolean; changedBytes: number }>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
      return out.ok && out.changedBytes === 0;
    }, 60_000, 200);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    const bad = await pair.primary.api("PATCH", `/api/v1/vms/${vmId}/replication`, { frequencySeconds: 7 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/or 5, 10 or 15 seconds/);
  });
});
