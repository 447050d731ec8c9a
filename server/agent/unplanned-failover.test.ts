/**
 * Unplanned failover (issue 4, test 3): the primary agent is killed; the replica fails over
 * to a chosen point (hash check), cancels, fails over to another point and completes; the
 * old primary comes back fenced, becomes the replica, and only differing blocks are sent.
 */
import { randomBytes, randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome } from "./replication/primary.js";
import type { RecoveryPointInfo } from "./replication/replica-store.js";
import { diskHash, startPair, waitFor, type AgentProcess, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const DISK = 32 * MiB;
const HOUR = 3600_000;

interface Step {
  step: string;
  ok: boolean;
  detail: string;
}

describe("unplanned failover", () => {
  let pair: Pair;
  let vmId: string;
  const expected = new Map<number, string>();

  const vm = (a: AgentProcess) => a.ok<VmView & { isReplica: boolean }>("GET", `/api/v1/vms/${vmId}`);
  const replicateNow = (a: AgentProcess) => a.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
  const points = () => pair.replica.ok<RecoveryPointInfo[]>("GET", `/api/v1/vms/${vmId}/recovery-points`);
  const failover = (body: unknown) => pair.replica.api<{ steps: Step[]; dataLoss: { seconds: number } }>("POST", `/api/v1/vms/${vmId}/replication/failover`, body);

  async function scatter(a: AgentProcess, count: number): Promise<void> {
    for (let i = 0; i < count; i++) await a.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${randomInt(DISK / 4096) * 4096}`, randomBytes(4096 * randomInt(1, 4)));
  }

  async function differingBytes(a: AgentProcess, b: AgentProcess): Promise<number> {
    let n = 0;
    for (let off = 0; off < DISK; off += 8 * MiB) {
      const [x, y] = await Promise.all([a.bytes(`/api/v1/vms/${vmId}/disks/0/data?offset=${off}&length=${8 * MiB}`), b.bytes(`/api/v1/vms/${vmId}/disks/0/data?offset=${off}&length=${8 * MiB}`)]);
      for (let i = 0; i < x.length; i += 4096) if (!x.subarray(i, i + 4096).equals(y.subarray(i, i + 4096))) n += 4096;
    }
    return n;
  }

  beforeAll(async () => {
    pair = await startPair();
    vmId = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "web-01", disks: [{ sizeBytes: DISK }] })).id;
    await scatter(pair.primary, 20);
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, recoveryHistory: 4, startInitialReplication: false });
    expected.set(0, await diskHash(pair.primary, vmId));
    expect((await replicateNow(pair.primary)).ok).toBe(true);
    for (let h = 0; h < 3; h++) {
      await pair.advanceClock(HOUR);
      await scatter(pair.primary, 10);
      const hash = await diskHash(pair.primary, vmId);
      const out = await replicateNow(pair.primary);
      expected.set(out.seq, hash);
      await scatter(pair.primary, 5);
      expect((await replicateNow(pair.primary)).ok).toBe(true);
    }
    // Changes that never reach the replica, then the primary host is lost.
    await scatter(pair.primary, 6);
    await pair.primary.kill();
  });
  afterAll(async () => pair?.cleanup());

  it("fails over to a chosen point while the primary is unreachable, and cancels back to the replica as it was", async () => {
    const before = await points();
    const replicaHash = await diskHash(pair.replica, vmId);
    const second = before.filter((p) => p.kind !== "latest")[1]!;
    const res = await failover({ pointId: second.id, start: false });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.steps[0]).toMatchObject({ step: "Check the primary virtual machine is not running", ok: true });
    expect(res.body.steps[0]!.detail).toMatch(/unreachable/);
    expect(res.body.dataLoss.seconds).toBeGreaterThan(3000);
    expect(await diskHash(pair.replica, vmId)).toBe(expected.get(second.seq));
    expect((await vm(pair.replica)).replication[0]).toMatchObject({ state: "Failed over (waiting for completion)" });

    await pair.replica.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    await scatter(pair.replica, 4);
    const again = await failover({ pointId: "latest" });
    expect(again.status).toBe(409);
    expect(JSON.stringify(again.body)).toMatch(/cancel the failover to choose another point/);

    const back = await pair.replica.ok<{ state: string }>("POST", `/api/v1/vms/${vmId}/replication/failover/cancel`);
    expect(back.state).toBe("Replicating");
    expect(await vm(pair.replica)).toMatchObject({ state: "Off", isReplica: true });
    expect(await diskHash(pair.replica, vmId)).toBe(replicaHash);
    expect(await points()).toEqual(before);
  });

  it("fails over to another point, survives a restart, and completes it into the disks", async () => {
    const third = (await points()).filter((p) => p.kind !== "latest")[2]!;
    expect((await failover({ pointId: third.id, start: true })).status).toBe(200);
    expect((await vm(pair.replica)).state).toBe("Running");
    await scatter(pair.replica, 5);
    // The failed-over VM keeps its writes across an agent restart.
    const running = await diskHash(pair.replica, vmId);
    await pair.replica.kill();
    await pair.replica.start();
    expect(await diskHash(pair.replica, vmId)).toBe(running);
    await pair.replica.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    await scatter(pair.replica, 3);
    const final = await diskHash(pair.replica, vmId);
    const done = await pair.replica.ok<{ state: string; reason: string }>("POST", `/api/v1/vms/${vmId}/replication/failover/complete`);
    expect(done.state).toBe("Failover complete");
    expect(done.reason).toMatch(/Reverse Replication/);
    expect(await diskHash(pair.replica, vmId)).toBe(final);
    expect((await points()).filter((p) => p.kind !== "latest")).toEqual([]);
    // Still the same bytes after a restart: they are in the images themselves.
    await pair.replica.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
    await pair.replica.stop();
    await pair.replica.start();
    expect(await diskHash(pair.replica, vmId)).toBe(final);
  });

  it("fences the old primary when it comes back, reverses into it and sends only the differing blocks", async () => {
    await pair.primary.start();
    expect((await replicateNow(pair.primary)).ok).toBe(false);
    const fenced = await vm(pair.primary);
    expect(fenced.replication[0]).toMatchObject({ role: "primary", state: "Failover complete" });
    const start = await pair.primary.api<{ error: { message: string } }>("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    expect(start.status).toBe(409);
    expect(start.body.error.message).toMatch(/second primary/);

    const differing = await differingBytes(pair.primary, pair.replica);
    expect(differing).toBeGreaterThan(0);
    const mark = (await pair.replica.ok<{ id: number }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`)).at(-1)!.id;
    const reversed = await pair.replica.ok<{ role: string; state: string }>("POST", `/api/v1/vms/${vmId}/replication/reverse`, {});
    expect(reversed).toMatchObject({ role: "primary", state: "Resynchronizing" });
    const complete = await waitFor("the resynchronization after reversing", async () => {
      const events = await pair.replica.ok<{ id: number; kind: string; data: { differingBytes: number; comparedBytes: number } }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
      return events.find((e) => e.id > mark && e.kind === "replication.resync-complete");
    });
    expect(complete.data).toMatchObject({ comparedBytes: DISK, differingBytes: differing });
    expect(await diskHash(pair.primary, vmId)).toBe(await diskHash(pair.replica, vmId));
    expect(await vm(pair.primary)).toMatchObject({ isReplica: true, state: "Off" });

    // Replication now runs from the new primary.
    await scatter(pair.replica, 2);
    expect((await replicateNow(pair.replica)).ok).toBe(true);
    expect(await diskHash(pair.primary, vmId)).toBe(await diskHash(pair.replica, vmId));
  });

  it("refuses a failover while the primary VM is known to be running", async () => {
    // Now hv02 is the primary and hv01 the replica: fail over on hv01 while hv02 runs the VM.
    await pair.replica.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    const res = await pair.primary.api<{ error: { message: string; details: { steps: Step[] } } }>("POST", `/api/v1/vms/${vmId}/replication/failover`, {});
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/is Running on hv02\.lab\.test \(checked just now\)/);
    expect((await vm(pair.primary)).isReplica).toBe(true);
    await pair.replica.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
  });
});
