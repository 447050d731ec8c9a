/**
 * Replication health and statistics (issue 3, test 3): pending initial replication, pause on
 * either side, a replica down for over an hour (test clock), missed cycles; each gives the
 * documented health and reason. Statistics reset, export as CSV, and the cycle history.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReplicationStatistics } from "./replication/manager.js";
import { startPair, type AgentProcess, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const MINUTE = 60_000;

interface Health {
  state: string;
  health: string;
  healthReasons: string[];
}

describe("replication health and statistics", () => {
  let pair: Pair;
  let vmId: string;

  const health = async (a: AgentProcess, id = vmId) => (await a.ok<Health[]>("GET", `/api/v1/vms/${id}/replication`))[0]!;
  const replicateNow = (id = vmId) => pair.primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${id}/replication/replicate-now`);
  const write = (id = vmId) => pair.primary.ok("PUT", `/api/v1/vms/${id}/disks/0/data?offset=0`, randomBytes(8192));

  beforeAll(async () => {
    pair = await startPair();
    vmId = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "health-01", disks: [{ sizeBytes: 8 * MiB }] })).id;
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
  });
  afterAll(async () => pair?.cleanup());

  it("is Warning while initial replication is pending, on both sides, then Normal", async () => {
    expect(await health(pair.primary)).toMatchObject({ health: "Warning", healthReasons: ["Initial replication is not complete."] });
    expect(await health(pair.replica)).toMatchObject({ health: "Warning", healthReasons: ["Initial replication is not complete."] });
    expect((await replicateNow()).ok).toBe(true);
    expect(await health(pair.primary)).toMatchObject({ state: "Replicating", health: "Normal", healthReasons: [] });
    expect(await health(pair.replica)).toMatchObject({ state: "Replicating", health: "Normal", healthReasons: [] });
  });

  it("is Warning when paused on the primary and Critical when paused on the Replica server", async () => {
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/pause`);
    expect(await health(pair.primary)).toMatchObject({ health: "Warning", healthReasons: ["Replication is paused on the primary server."] });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resume`);
    await pair.replica.ok("POST", `/api/v1/vms/${vmId}/replication/pause`);
    expect(await health(pair.replica)).toMatchObject({ health: "Critical", healthReasons: ["Replication is paused on the Replica server."] });
    await pair.replica.ok("POST", `/api/v1/vms/${vmId}/replication/resume`);
    expect((await replicateNow()).ok).toBe(true);
    expect((await health(pair.primary)).health).toBe("Normal");
  });

  it("stays paused on the Replica server when paused while a cycle is being applied", async () => {
    const big = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "pause-mid-cycle", disks: [{ sizeBytes: 96 * MiB }] })).id;
    await pair.primary.ok("POST", `/api/v1/vms/${big}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, compression: false, startInitialReplication: false });
    expect((await replicateNow(big)).ok).toBe(true);
    for (let i = 0; i < 64; i++) await pair.primary.ok("PUT", `/api/v1/vms/${big}/disks/0/data?offset=${i * MiB}`, randomBytes(MiB));
    const cycle = replicateNow(big);
    await new Promise((r) => setTimeout(r, 50));
    await pair.replica.ok("POST", `/api/v1/vms/${big}/replication/pause`);
    await cycle; // applied (it was under way) or refused (it was not yet): either way the replica stays paused
    expect((await health(pair.replica, big)).state).toBe("Suspended");
    await pair.replica.ok("POST", `/api/v1/vms/${big}/replication/resume`);
    const after = await replicateNow(big);
    expect(after.ok, JSON.stringify(after)).toBe(true);
    expect((await health(pair.replica, big)).state).toBe("Replicating");
  });

  it("is Critical when the Replica server has been down for over an hour, and Normal once it is back", async () => {
    await pair.replica.stop();
    await pair.advanceClock(61 * MINUTE);
    await write();
    expect((await replicateNow()).ok).toBe(false);
    const h = await health(pair.primary);
    expect(h.health).toBe("Critical");
    expect(h.healthReasons[0]).toMatch(/^The primary server cannot send replication data: cannot reach hv02\.lab\.test/);
    expect(h.healthReasons[1]).toMatch(/^No replication data has been sent for more than 1 hour/);
    await pair.replica.start();
    expect((await health(pair.replica)).healthReasons).toEqual([expect.stringMatching(/^No replication data has been received for more than 1 hour/)]);
    expect((await replicateNow()).ok).toBe(true);
    expect(await health(pair.primary)).toMatchObject({ health: "Normal", healthReasons: [] });
    expect(await health(pair.replica)).toMatchObject({ health: "Normal", healthReasons: [] });
  });

  it("is Warning when more than 20% of the interval's cycles were missed, until statistics are reset", async () => {
    // The interval must not start anew during the test (it would at 09:00 or 21:00 with the
    // default): make it begin an hour before now, local time as the agent counts it.
    const start = new Date(pair.clockNow() - 60 * MINUTE);
    const startTime = `${String(start.getHours()).padStart(2, "0")}:${String(start.getMinutes()).padStart(2, "0")}`;
    const settings = await pair.primary.ok<Record<string, unknown>>("GET", "/api/v1/replica-server");
    await pair.primary.ok("PUT", "/api/v1/replica-server", { ...settings, monitoring: { intervalHours: 24, startTime } });
    const fast = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "health-30s", disks: [{ sizeBytes: 4 * MiB }] })).id;
    await pair.primary.ok("POST", `/api/v1/vms/${fast}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 30, startInitialReplication: false });
    expect((await replicateNow(fast)).ok).toBe(true);
    // Ten minutes pass with only two more cycles: 20 were due.
    await pair.advanceClock(10 * MINUTE);
    for (let i = 0; i < 2; i++) {
      await write(fast);
      expect((await replicateNow(fast)).ok).toBe(true);
    }
    const h = await health(pair.primary, fast);
    expect(h.health).toBe("Warning");
    expect(h.healthReasons).toEqual([expect.stringMatching(/^More than 20 percent of replication cycles have been missed in the monitoring interval \(1[78] of 20\)/)]);
    const stats = await pair.primary.ok<ReplicationStatistics>("GET", `/api/v1/vms/${fast}/replication/statistics`);
    expect(stats).toMatchObject({ mode: "Primary", health: "Warning", successfulCycles: 3, errorsEncountered: 0, primaryServer: "hv01.lab.test", replicaServer: "hv02.lab.test" });
    expect(stats.maximumSizeBytes).toBeGreaterThan(8192);
    expect(stats.maximumSizeBytes).toBeGreaterThanOrEqual(stats.averageSizeBytes);
    expect(stats.pendingBytes).toBe(0);

    const reset = await pair.primary.ok<ReplicationStatistics>("POST", `/api/v1/vms/${fast}/replication/statistics/reset`);
    expect(reset).toMatchObject({ health: "Normal", successfulCycles: 0, missedCycles: 0, errorsEncountered: 0 });
    const cycles = await pair.primary.ok<{ seq: number; status: string; changedBytes: number }[]>("GET", `/api/v1/vms/${fast}/replication/cycles?limit=10`);
    expect(cycles.map((c) => [c.seq, c.status])).toEqual([
      [2, "acknowledged"],
      [1, "acknowledged"],
      [0, "acknowledged"],
    ]);
    expect(cycles[0]!.changedBytes).toBe(8192);
  });

  it("exports View Replication Health as CSV, on the replica with its test failover time", async () => {
    await pair.replica.ok("POST", `/api/v1/vms/${vmId}/replication/test-failover`, {});
    await pair.replica.ok("DELETE", `/api/v1/vms/${vmId}/replication/test-failover`);
    const res = await fetch(`${pair.replica.url}/api/v1/vms/${vmId}/replication/statistics.csv`, { headers: { authorization: "Bearer test-management-token-0123456789" } });
    expect(res.headers.get("content-type")).toMatch(/^text\/csv/);
    expect(res.headers.get("content-disposition")).toMatch(/health-01-replication-statistics\.csv/);
    const [header, row] = (await res.text()).trim().split("\n");
    const cols = header!.split(",");
    expect(cols).toEqual(expect.arrayContaining(["vmName", "mode", "state", "health", "averageSizeBytes", "maximumSizeBytes", "averageLatencyMs", "errorsEncountered", "successfulCycles", "missedCycles", "lastSynchronizedAt", "lastTestFailoverAt"]));
    const values = row!.split(",");
    expect(values[cols.indexOf("mode")]).toBe("Replica");
    expect(values[cols.indexOf("lastTestFailoverAt")]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await pair.replica.api("GET", `/api/v1/vms/${vmId}/replication/cycles?limit=0`)).status).toBe(400);
  });

  it("estimates the storage a recovery history needs from the measured churn, before and after enabling", async () => {
    interface Estimate { perPointBytes: number; totalBytes: number; churnBytesPerHour: number; basis: string; diskBytes: number }
    const id = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "estimate-01", disks: [{ sizeBytes: 64 * MiB }] })).id;
    for (let i = 0; i < 4; i++) await pair.primary.ok("PUT", `/api/v1/vms/${id}/disks/0/data?offset=${i * MiB}`, randomBytes(MiB));
    const before = await pair.primary.ok<Estimate>("GET", `/api/v1/vms/${id}/replication/history-estimate?recoveryHistory=4`);
    expect(before.basis).toMatch(/guest's writes/);
    expect(before.churnBytesPerHour).toBeGreaterThan(0);
    // At most the whole disk per point, whatever the churn.
    expect(before.perPointBytes).toBe(Math.min(before.churnBytesPerHour, 64 * MiB));
    expect(before.totalBytes).toBe(4 * before.perPointBytes);

    await pair.primary.ok("POST", `/api/v1/vms/${id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    for (let i = 0; i < 3; i++) {
      await pair.primary.ok("PUT", `/api/v1/vms/${id}/disks/0/data?offset=${8 * MiB}`, randomBytes(64 * 1024));
      expect((await replicateNow(id)).ok).toBe(true);
    }
    const after = await pair.primary.ok<Estimate>("GET", `/api/v1/vms/${id}/replication/history-estimate?recoveryHistory=2`);
    expect(after.basis).toMatch(/last 2 replication cycles/);
    expect(after.totalBytes).toBe(2 * after.perPointBytes);
    const bad = await pair.primary.api("GET", `/api/v1/vms/${id}/replication/history-estimate?recoveryHistory=25`);
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/recoveryHistory must be 0-24/);
  });

  it("takes the monitoring interval from the Replica server settings, checked field by field", async () => {
    const settings = await pair.replica.ok<Record<string, unknown>>("GET", "/api/v1/replica-server");
    expect(settings.monitoring).toEqual({ intervalHours: 12, startTime: "09:00" });
    const bad = await pair.replica.api("PUT", "/api/v1/replica-server", { ...settings, monitoring: { intervalHours: 30, startTime: "9am" } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/intervalHours must be 1-24 hours, or 2-7 days/);
    expect(JSON.stringify(bad.body)).toMatch(/startTime must be a time of day as HH:MM/);
    await pair.replica.ok("PUT", "/api/v1/replica-server", { ...settings, monitoring: { intervalHours: 48, startTime: "00:00" } });
    const stats = await pair.replica.ok<ReplicationStatistics>("GET", `/api/v1/vms/${vmId}/replication/statistics`);
    expect(Date.parse(stats.monitoring.to) - Date.parse(stats.monitoring.from)).toBeLessThanOrEqual(48 * 60 * MINUTE);
  });
});
