/**
 * Test Replication Connection and Start Replication at a time, through the router against real
 * agents: the checks the primary made, failures on their field (also at Finish), roles and
 * bad input; scheduling, rescheduling and cancelling the initial copy, then starting it now.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, freePort, MGMT_TOKEN, waitFor } from "../../agent/testing/harness.js";
import { startConsoleFixture, type ConsoleFixture } from "../testing/console-fixture.js";
import { expectTrpcError } from "../testing/expect-error.js";

const MiB = 1024 ** 2;
const HOUR = 3600_000;
let f: ConsoleFixture;
let hv01: string;

beforeAll(async () => {
  f = await startConsoleFixture();
  const admin = f.as("Administrator");
  hv01 = (await admin.hosts.add({ auth: "token", address: f.pair.primary.url, token: MGMT_TOKEN })).id;
  await admin.hosts.add({ auth: "token", address: f.pair.replica.url, token: MGMT_TOKEN });
}, 60_000);
afterAll(async () => f?.cleanup());

async function newVm(name: string): Promise<string> {
  const vm = await f.pair.primary.ok<{ id: string }>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: 8 * MiB }] });
  await waitFor(`${name} cached`, async () => (await f.as("Viewer").vms.list({ hostId: hv01 })).some((v) => v.vmId === vm.id), 10_000, 50);
  return vm.id;
}

const replicationOf = async (vmId: string) => (await f.as("Viewer").vms.get({ hostId: hv01, vmId })).replication;
const connection = (extra: Record<string, unknown> = {}) => ({ hostId: hv01, replicaServer: "hv02.lab.test", replicaPort: f.pair.replica.ports.https, authMode: "https" as const, ...extra });
const wizard = (vmId: string, extra: Record<string, unknown> = {}) => ({
  ...connection(),
  vmId,
  compression: true,
  disks: [0],
  frequencySeconds: 300,
  bandwidthLimitMiBps: null,
  recoveryHistory: 0,
  appConsistentFrequencyHours: null,
  initialReplication: { method: "network" as const },
  ...extra,
});

describe("Test Replication Connection (replication.testConnection)", () => {
  it("lists the checks the primary made against the Replica server", async () => {
    const ok = await f.as("Operator").replication.testConnection(connection());
    expect(ok).toMatchObject({ ok: true, failure: null, trustGroup: "DEFAULT", replicaServer: "hv02.lab.test" });
    expect(ok.checks.every((c) => c.status === "passed")).toBe(true);
    const http = await f.as("Administrator").replication.testConnection(connection({ replicaServer: "HV02.lab.test", replicaPort: f.pair.replica.ports.http, authMode: "http" }));
    expect(http.ok).toBe(true);
  });

  it("answers a failure with the field to change and how", async () => {
    const wrongPort = await f.as("Operator").replication.testConnection(connection({ replicaPort: await freePort() }));
    expect(wrongPort.ok).toBe(false);
    expect(wrongPort.failure).toMatchObject({ check: "connection", field: "replicaPort" });
    expect(wrongPort.failure!.message).toMatch(/nothing listens on port \d+ of hv02\.lab\.test/);
    const otherMode = await f.as("Operator").replication.testConnection(connection({ replicaPort: f.pair.replica.ports.http }));
    expect(otherMode.failure).toMatchObject({ field: "replicaPort", code: "NOT_TLS" });
  });

  it("is for Operators and Administrators; bad input names the field", async () => {
    await expectTrpcError(f.as("Viewer").replication.testConnection(connection()), "FORBIDDEN");
    await expectTrpcError(f.as(null).replication.testConnection(connection()), "UNAUTHORIZED");
    await expectTrpcError(f.as("Operator").replication.testConnection(connection({ replicaPort: 0 })), "BAD_REQUEST", "replicaPort");
    await expectTrpcError(f.as("Operator").replication.testConnection(connection({ authMode: "ftp" })), "BAD_REQUEST", "authMode");
    await expectTrpcError(f.as("Operator").replication.testConnection(connection({ replicaServer: "bad name!" })), "BAD_REQUEST", "replicaServer");
    const self = await expectTrpcError(f.as("Operator").replication.testConnection(connection({ replicaServer: "hv01.lab.test" })), "BAD_REQUEST", "replicaServer");
    expect(self.message).toMatch(/is the primary server/);
  });

  it("Finish tests the connection first: a wrong port lands on its field and nothing is enabled", async () => {
    const vmId = await newVm("conn-01");
    const e = await expectTrpcError(f.as("Administrator").replication.enable(wizard(vmId, { replicaPort: f.pair.replica.ports.http })), "PRECONDITION_FAILED", "replicaPort");
    expect(e.message).toMatch(/does not speak TLS \(it may be the HTTP port\)/);
    expect(await replicationOf(vmId)).toBeNull();
    expect(await f.pair.replica.ok("GET", `/api/v1/vms/${vmId}/replication`).catch(() => [])).toEqual([]);
  });
});

describe("Start Replication now or at a date and time (replication.startInitial)", () => {
  it("schedules, reschedules and cancels the initial copy, then starts it now", async () => {
    const vmId = await newVm("sched-01");
    await f.pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${MiB}`, Buffer.alloc(64 * 1024, 7));
    await f.as("Administrator").replication.enable(wizard(vmId, { initialReplication: { method: "network", startAt: new Date(Date.now() + HOUR).toISOString() } }));
    const at = new Date(Date.now() + 3 * HOUR).toISOString();
    await expectTrpcError(f.as("Viewer").replication.startInitial({ hostId: hv01, vmId, initialStartAt: at }), "FORBIDDEN");
    expect(await f.as("Operator").replication.startInitial({ hostId: hv01, vmId, initialStartAt: at })).toEqual({ ok: true, initialStartAt: at });
    expect((await f.as("Viewer").replication.settings({ hostId: hv01, vmId })).initialStartAt).toBe(at);

    await expectTrpcError(f.as("Operator").replication.startInitial({ hostId: hv01, vmId, initialStartAt: new Date(Date.now() - HOUR).toISOString() }), "BAD_REQUEST", "initialStartAt");
    await expectTrpcError(f.as("Operator").replication.startInitial({ hostId: hv01, vmId, initialStartAt: new Date(Date.now() + 8 * 24 * HOUR).toISOString() }), "BAD_REQUEST", "initialStartAt");
    await expectTrpcError(f.as("Operator").replication.startInitial({ hostId: hv01, vmId, initialStartAt: "tomorrow" }), "BAD_REQUEST", "initialStartAt");
    expect((await f.as("Viewer").replication.settings({ hostId: hv01, vmId })).initialStartAt).toBe(at);

    expect(await f.as("Operator").replication.startInitial({ hostId: hv01, vmId, initialStartAt: null })).toEqual({ ok: true, initialStartAt: null });
    expect((await f.as("Viewer").replication.settings({ hostId: hv01, vmId })).initialStartAt).toBeNull();
    expect((await replicationOf(vmId))?.state).toBe("Ready for initial replication");

    await f.as("Operator").replication.startInitial({ hostId: hv01, vmId });
    await waitFor("Replicating", async () => (await replicationOf(vmId))?.state === "Replicating", 30_000);
    expect(await diskHash(f.pair.replica, vmId)).toBe(await diskHash(f.pair.primary, vmId));
    const late = await expectTrpcError(f.as("Operator").replication.startInitial({ hostId: hv01, vmId, initialStartAt: at }), "CONFLICT");
    expect(late.message).toMatch(/has already started/);
  });
});
