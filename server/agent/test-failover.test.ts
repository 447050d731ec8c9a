/**
 * Test Failover (issue 4, test 1): "<VM> - Test" runs from a chosen recovery point on an
 * overlay, its writes never reach the replica, replication keeps running, and stopping it
 * leaves the replica as it was plus the cycles that arrived.
 */
import { randomBytes, randomInt } from "node:crypto";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome } from "./replication/primary.js";
import type { RecoveryPointInfo } from "./replication/replica-store.js";
import { diskHash, startPair, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const DISK = 64 * MiB;
const HOUR = 3600_000;

interface TestVm extends VmView {
  networkConnected: boolean;
  networkName: string | null;
  testOf: { vmId: string; pointId: string; seq: number } | null;
}

describe("test failover", () => {
  let pair: Pair;
  let vmId: string;
  const expected = new Map<number, string>();

  const replicateNow = () => pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
  const points = () => pair.replica.ok<RecoveryPointInfo[]>("GET", `/api/v1/vms/${vmId}/recovery-points`);
  const begin = (body: unknown) => pair.replica.api<TestVm>("POST", `/api/v1/vms/${vmId}/replication/test-failover`, body);
  const end = () => pair.replica.api("DELETE", `/api/v1/vms/${vmId}/replication/test-failover`);

  async function churn(): Promise<void> {
    for (let i = 0; i < 8; i++) {
      await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${randomInt(DISK / (64 * 1024)) * 64 * 1024}`, randomBytes(64 * 1024));
    }
  }

  async function cycle(): Promise<number> {
    await churn();
    const hash = await diskHash(pair.primary, vmId);
    const out = await replicateNow();
    expect(out.ok, out.error).toBe(true);
    expected.set(out.seq, hash);
    return out.seq;
  }

  beforeAll(async () => {
    pair = await startPair();
    vmId = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "erp-01", disks: [{ sizeBytes: DISK }] })).id;
    await churn();
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: pair.replica.ports.https,
      frequencySeconds: 900,
      recoveryHistory: 6,
      startInitialReplication: false,
    });
    expected.set(0, await diskHash(pair.primary, vmId));
    expect((await replicateNow()).ok).toBe(true);
    for (let h = 0; h < 4; h++) {
      await pair.advanceClock(HOUR);
      await cycle();
      await cycle();
    }
  });
  afterAll(async () => pair?.cleanup());

  it("runs '<VM> - Test' from the third-newest point, disconnected, while replication goes on", async () => {
    const third = (await points()).filter((p) => p.kind !== "latest")[2]!;
    const replicaBefore = await diskHash(pair.replica, vmId);
    const res = await begin({ pointId: third.id });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const test = res.body;
    expect(test).toMatchObject({ name: "erp-01 - Test", state: "Off", networkConnected: false, networkName: null, isReplica: false });
    expect(test.testOf).toMatchObject({ vmId, pointId: third.id, seq: third.seq });
    expect(await diskHash(pair.replica, test.id)).toBe(expected.get(third.seq));

    // The test VM starts and is written to; none of it reaches the replica.
    await pair.replica.ok("POST", `/api/v1/vms/${test.id}/power`, { action: "start" });
    const mine = randomBytes(3 * 4096 + 100);
    await pair.replica.ok("PUT", `/api/v1/vms/${test.id}/disks/0/data?offset=${5 * MiB + 7}`, mine);
    const back = await pair.replica.bytes(`/api/v1/vms/${test.id}/disks/0/data?offset=${5 * MiB + 7}&length=${mine.length}`);
    expect(back.equals(mine)).toBe(true);
    expect(await diskHash(pair.replica, vmId)).toBe(replicaBefore);

    // Replication carries on into the replica during the test.
    const seq = await cycle();
    expect(await diskHash(pair.replica, vmId)).toBe(expected.get(seq));
    // ... and the test VM still sees its point, around its own writes.
    const around = await pair.replica.bytes(`/api/v1/vms/${test.id}/disks/0/data?offset=${4 * MiB}&length=${2 * MiB}`);
    const point = await pair.replica.bytes(`/api/v1/vms/${vmId}/recovery-points/${third.id}/disks/0/data?offset=${4 * MiB}&length=${2 * MiB}`);
    point.set(mine, MiB + 7);
    expect(around.equals(point)).toBe(true);

    const pointsDuring = await points();
    expect((await end()).status).toBe(204);
    expect((await pair.replica.api("GET", `/api/v1/vms/${test.id}`)).status).toBe(404);
    await expect(stat(join(pair.dir, "hv02", "replicas", vmId, ".test"))).rejects.toThrow();
    expect(await diskHash(pair.replica, vmId)).toBe(expected.get(seq));
    expect(await points()).toEqual(pointsDuring);
    const [rel] = await pair.replica.ok<{ testFailover: unknown; lastTestFailoverAt: string | null }[]>("GET", `/api/v1/vms/${vmId}/replication`);
    expect(rel).toMatchObject({ testFailover: null });
    expect(rel!.lastTestFailoverAt).toBeTruthy();
  });

  it("takes the latest point by default and can join a named test network", async () => {
    const res = await begin({ network: "dr-test" });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ networkConnected: true, networkName: "dr-test" });
    expect(res.body.testOf!.pointId).toBe("latest");
    const latest = await diskHash(pair.replica, vmId);
    await cycle();
    // Cycles applied after the test began do not show through in the test VM.
    expect(await diskHash(pair.replica, res.body.id)).toBe(latest);
    expect((await end()).status).toBe(204);
  });

  it("allows one test at a time and refuses what makes no sense, changing nothing", async () => {
    const first = await begin({});
    expect(first.status).toBe(201);
    const again = await begin({});
    expect(again.status).toBe(409);
    expect(JSON.stringify(again.body)).toMatch(/already running/);
    const del = await pair.replica.api("DELETE", `/api/v1/vms/${first.body.id}`);
    expect(del.status).toBe(409);
    expect(JSON.stringify(del.body)).toMatch(/Stop Test Failover/);
    const remove = await pair.replica.api("DELETE", `/api/v1/vms/${vmId}/replication`);
    expect(remove.status).toBe(409);
    expect(JSON.stringify(remove.body)).toMatch(/stop it before removing replication/);
    const enable = await pair.replica.api("POST", `/api/v1/vms/${first.body.id}/replication`, { replicaServer: "hv01.lab.test", replicaPort: pair.primary.ports.https });
    expect(enable.status).toBe(409);
    expect((await end()).status).toBe(204);
    const twice = await end();
    expect(twice.status).toBe(409);
    expect(JSON.stringify(twice.body)).toMatch(/no test failover/);
    expect((await pair.primary.api("POST", `/api/v1/vms/${vmId}/replication/test-failover`, {})).status).toBe(409);
    expect((await begin({ pointId: "00000000-0000-4000-8000-000000000000" })).status).toBe(404);
    const bad = await begin({ pointId: "last-tuesday", network: "" });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/pointId/);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("discards a test VM when the replica's agent restarts, and says so", async () => {
    const res = await begin({});
    expect(res.status).toBe(201);
    await pair.replica.kill();
    await pair.replica.start();
    expect((await pair.replica.api("GET", `/api/v1/vms/${res.body.id}`)).status).toBe(404);
    const events = await pair.replica.ok<{ kind: string; message: string }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
    expect(events.some((e) => e.kind === "replica.test-failover-ended")).toBe(true);
    expect((await begin({})).status).toBe(201);
    expect((await end()).status).toBe(204);
    expect((await replicateNow()).ok).toBe(true);
  });
});
