import { mkdtemp, utimes } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, MGMT_TOKEN, waitFor } from "../../agent/testing/harness.js";
import { startConsoleFixture, type ConsoleFixture } from "../testing/console-fixture.js";
import { expectTrpcError } from "../testing/expect-error.js";

const MiB = 1024 ** 2;
let f: ConsoleFixture;
let hv01: string;
let hv02: string;

beforeAll(async () => {
  f = await startConsoleFixture();
  const admin = f.as("Administrator");
  hv01 = (await admin.hosts.add({ auth: "token", address: f.pair.primary.url, token: MGMT_TOKEN })).id;
  hv02 = (await admin.hosts.add({ auth: "token", address: f.pair.replica.url, token: MGMT_TOKEN })).id;
}, 60_000);
afterAll(async () => f?.cleanup());

/** A VM on hv01 with two small disks, known to the console. */
async function newVm(name: string): Promise<string> {
  const vm = await f.pair.primary.ok<{ id: string }>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: 8 * MiB }, { sizeBytes: 4 * MiB }] });
  await waitFor(`${name} cached`, async () => (await f.as("Viewer").vms.list({ hostId: hv01 })).some((v) => v.vmId === vm.id), 10_000, 50);
  return vm.id;
}

async function replicationOf(hostId: string, vmId: string) {
  return (await f.as("Viewer").vms.get({ hostId, vmId })).replication;
}

const wizard = (vmId: string) => ({
  hostId: hv01,
  vmId,
  replicaServer: "hv02.lab.test",
  replicaPort: f.pair.replica.ports.https,
  authMode: "https" as const,
  compression: true,
  disks: [0],
  frequencySeconds: 30,
  bandwidthLimitMiBps: null,
  recoveryHistory: 2,
  appConsistentFrequencyHours: 1,
  initialReplication: { method: "network" as const },
});

describe("Specify Replica Server (checkReplicaServer)", () => {
  it("finds a connected Replica server by FQDN or short name and says what it accepts", async () => {
    const found = await f.as("Viewer").replication.checkReplicaServer({ hostId: hv01, replicaServer: "HV02.lab.test" });
    expect(found).toMatchObject({ hostId: hv02, name: "hv02.lab.test", authMode: "https", port: f.pair.replica.ports.https, authorization: "any", trustGroup: "DEFAULT", storageLocation: join(f.pair.dir, "hv02", "replicas") });
    expect(found.https).toEqual({ enabled: true, port: f.pair.replica.ports.https, usable: true });
    expect(found.http).toEqual({ enabled: true, port: f.pair.replica.ports.http, usable: true });
    expect((await f.as("Viewer").replication.checkReplicaServer({ hostId: hv01, replicaServer: "hv02" })).hostId).toBe(hv02);
  });

  it("names the field when the server is unknown, the primary itself, malformed or not a Replica server", async () => {
    const viewer = f.as("Viewer");
    const unknown = await expectTrpcError(viewer.replication.checkReplicaServer({ hostId: hv01, replicaServer: "hv09.lab.test" }), "NOT_FOUND", "replicaServer");
    expect(unknown.message).toMatch(/not connected to this console.*Connect to Server/);
    await expectTrpcError(viewer.replication.checkReplicaServer({ hostId: hv01, replicaServer: "hv01.lab.test" }), "BAD_REQUEST", "replicaServer");
    await expectTrpcError(viewer.replication.checkReplicaServer({ hostId: hv01, replicaServer: "bad name!" }), "BAD_REQUEST", "replicaServer");
    await expectTrpcError(viewer.replication.checkReplicaServer({ hostId: hv01, replicaServer: "" }), "BAD_REQUEST", "replicaServer");
    await expectTrpcError(f.as(null).replication.checkReplicaServer({ hostId: hv01, replicaServer: "hv02.lab.test" }), "UNAUTHORIZED");
    const admin = f.as("Administrator");
    const settings = await admin.replicaServer.get({ hostId: hv02 });
    await admin.replicaServer.update({ hostId: hv02, settings: { ...settings, enabled: false } });
    try {
      const off = await expectTrpcError(viewer.replication.checkReplicaServer({ hostId: hv01, replicaServer: "hv02.lab.test" }), "PRECONDITION_FAILED", "replicaServer");
      expect(off.message).toMatch(/not enabled as a Replica server/);
      const entries = [{ primaryServer: "*.elsewhere.test", storageLocation: join(f.pair.dir, "elsewhere"), trustGroup: "ELSEWHERE" }];
      await admin.replicaServer.update({ hostId: hv02, settings: { ...settings, authorization: { mode: "entries", entries } } });
      const refused = await expectTrpcError(viewer.replication.checkReplicaServer({ hostId: hv01, replicaServer: "hv02.lab.test" }), "PRECONDITION_FAILED", "replicaServer");
      expect(refused.message).toMatch(/refuses this primary server: primary server 'hv01\.lab\.test' is not authorized/);
      await admin.replicaServer.update({ hostId: hv02, settings: { ...settings, authorization: { mode: "entries", entries: [...entries, { ...entries[0]!, primaryServer: "*.lab.test", trustGroup: "LAB" }] } } });
      expect(await viewer.replication.checkReplicaServer({ hostId: hv01, replicaServer: "hv02.lab.test" })).toMatchObject({ authorization: "entries", trustGroup: "LAB" });
    } finally {
      await admin.replicaServer.update({ hostId: hv02, settings });
    }
  });
});

describe("Enable Replication", () => {
  let vmId: string;

  it("estimates the initial copy of the chosen disks and the recovery history's storage", async () => {
    vmId = await newVm("app-01");
    const est = await f.as("Viewer").replication.estimate({ hostId: hv01, vmId, disks: [0], recoveryHistory: 4 });
    expect(est.initialCopyBytes).toBe(8 * MiB);
    expect(est.disks).toEqual([{ index: 0, sizeBytes: 8 * MiB }]);
    expect(est.history).toMatchObject({ recoveryHistory: 4, diskBytes: 12 * MiB });
    expect(est.history.totalBytes).toBe(est.history.perPointBytes * 4);
    expect((await f.as("Viewer").replication.estimate({ hostId: hv01, vmId, recoveryHistory: 0 })).initialCopyBytes).toBe(12 * MiB);
    await expectTrpcError(f.as("Viewer").replication.estimate({ hostId: hv01, vmId, recoveryHistory: 30 }), "BAD_REQUEST", "recoveryHistory");
  });

  it("refuses bad wizard entries field by field, its own checks and the agent's alike", async () => {
    const admin = f.as("Administrator");
    const good = wizard(vmId);
    const inAWeekAndADay = new Date(Date.now() + 8 * 24 * 3600_000).toISOString();
    await expectTrpcError(admin.replication.enable({ ...good, frequencySeconds: 60 }), "BAD_REQUEST", "frequencySeconds");
    await expectTrpcError(admin.replication.enable({ ...good, replicaPort: 70000 }), "BAD_REQUEST", "replicaPort");
    await expectTrpcError(admin.replication.enable({ ...good, disks: [] }), "BAD_REQUEST", "disks");
    await expectTrpcError(admin.replication.enable({ ...good, recoveryHistory: 0 }), "BAD_REQUEST", "appConsistentFrequencyHours");
    await expectTrpcError(admin.replication.enable({ ...good, appConsistentFrequencyHours: 13 }), "BAD_REQUEST", "appConsistentFrequencyHours");
    await expectTrpcError(admin.replication.enable({ ...good, bandwidthLimitMiBps: 0 }), "BAD_REQUEST", "bandwidthLimitMiBps");
    await expectTrpcError(admin.replication.enable({ ...good, initialReplication: { method: "network", startAt: inAWeekAndADay } }), "BAD_REQUEST", "initialReplication.startAt");
    await expectTrpcError(admin.replication.enable({ ...good, initialReplication: { method: "external-media", folder: "media/usb" } }), "BAD_REQUEST", "initialReplication.folder");
    await expectTrpcError(admin.replication.enable({ ...good, replicaServer: "hv01.lab.test" }), "BAD_REQUEST", "replicaServer");
    // The agent's own refusal, named in its message: a disk the VM does not have.
    const disk = await expectTrpcError(admin.replication.enable({ ...good, disks: [3] }), "BAD_REQUEST", "disks");
    expect(disk.message).toMatch(/no disk 3/);
    expect((await replicationOf(hv01, vmId))).toBeNull();
  });

  it("is for Administrators only", async () => {
    for (const role of ["Operator", "Viewer"] as const) await expectTrpcError(f.as(role).replication.enable(wizard(vmId)), "FORBIDDEN");
    const audit = await f.db.auditEntry.findMany({ where: { action: "replication.enable", userName: "operator" } });
    expect(audit.map((a) => [a.result, a.target])).toEqual([["failure", "host=hv01.lab.test vm=app-01"]]);
  });

  it("enables replication with every wizard option; the replica equals the primary", async () => {
    const done = await f.as("Administrator").replication.enable({ ...wizard(vmId), bandwidthLimitMiBps: 50, resyncPolicy: { mode: "automatic" } });
    expect(done.replicaServer).toBe("hv02.lab.test");
    await waitFor("Replicating, Normal", async () => {
      const r = await replicationOf(hv01, vmId);
      return r?.state === "Replicating" && r.health === "Normal";
    }, 30_000);
    const rec = (await f.pair.primary.ok<Record<string, unknown>[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!;
    expect(rec).toMatchObject({ frequencySeconds: 30, recoveryHistory: 2, appConsistentFrequencyHours: 1, bandwidthLimitMiBps: 50, compression: true, disks: [{ index: 0, sizeBytes: 8 * MiB }] });
    await f.pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=4096`, Buffer.alloc(64 * 1024, 7));
    await f.pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(await diskHash(f.pair.replica, vmId, 0)).toBe(await diskHash(f.pair.primary, vmId, 0));
    await waitFor("the replica VM cached", async () => (await replicationOf(hv02, vmId))?.state === "Replicating", 10_000);
  });

  it("Replication Settings shows and changes frequency, history, compression, resync policy and bandwidth", async () => {
    const before = await f.as("Viewer").replication.settings({ hostId: hv01, vmId });
    expect(before).toMatchObject({ frequencySeconds: 30, recoveryHistory: 2, appConsistentFrequencyHours: 1, compression: true, resyncPolicy: { mode: "automatic" }, bandwidthLimitMiBps: 50 });
    const change = { hostId: hv01, vmId, frequencySeconds: 300, recoveryHistory: 4, appConsistentFrequencyHours: null, compression: false, resyncPolicy: { mode: "window" as const, start: "22:00", end: "05:00" }, bandwidthLimitMiBps: null };
    await expectTrpcError(f.as("Operator").replication.updateSettings(change), "FORBIDDEN");
    const saved = await f.as("Administrator").replication.updateSettings(change);
    expect(saved).toMatchObject({ frequencySeconds: 300, recoveryHistory: 4, appConsistentFrequencyHours: null, compression: false, resyncPolicy: { mode: "window", start: "22:00", end: "05:00" }, bandwidthLimitMiBps: null });
    expect((await replicationOf(hv01, vmId))?.frequencySeconds).toBe(300);
    const admin = f.as("Administrator");
    await expectTrpcError(admin.replication.updateSettings({ hostId: hv01, vmId, recoveryHistory: 0, appConsistentFrequencyHours: 2 }), "BAD_REQUEST", "appConsistentFrequencyHours");
    // Only the agent knows the stored history is 0 after this: its refusal reaches the field too.
    await admin.replication.updateSettings({ hostId: hv01, vmId, recoveryHistory: 0 });
    await expectTrpcError(admin.replication.updateSettings({ hostId: hv01, vmId, appConsistentFrequencyHours: 2 }), "BAD_REQUEST", "appConsistentFrequencyHours");
    await expectTrpcError(admin.replication.updateSettings({ hostId: hv01, vmId }), "BAD_REQUEST", "frequencySeconds");
    await expectTrpcError(admin.replication.updateSettings({ hostId: hv01, vmId, resyncPolicy: { mode: "window", start: "25:00", end: "05:00" } }), "BAD_REQUEST", "resyncPolicy.start");
    await expectTrpcError(admin.replication.settings({ hostId: hv02, vmId }), "CONFLICT");
  });

  it("pauses and resumes on either side for Operators", async () => {
    const op = f.as("Operator");
    await expectTrpcError(f.as("Viewer").replication.pause({ hostId: hv01, vmId }), "FORBIDDEN");
    expect(await op.replication.pause({ hostId: hv01, vmId })).toEqual({ state: "Suspended" });
    expect((await replicationOf(hv01, vmId))?.state).toBe("Suspended");
    const again = await expectTrpcError(op.replication.pause({ hostId: hv01, vmId }), "CONFLICT");
    expect(again.message).toMatch(/Suspended|paused/i);
    expect(await op.replication.resume({ hostId: hv01, vmId })).toMatchObject({ state: "Replicating" });
    // Resuming runs a cycle at once; the replica is paused once it was applied (a pause while a
    // cycle is being applied is lost by the agent: its apply ends by setting Replicating).
    await f.pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(await op.replication.pause({ hostId: hv02, vmId })).toEqual({ state: "Suspended" });
    await waitFor("paused on the replica: Critical", async () => (await replicationOf(hv02, vmId))?.health === "Critical", 5000, 50);
    expect(await op.replication.resume({ hostId: hv02, vmId })).toEqual({ state: "Replicating" });
    await expectTrpcError(op.replication.resume({ hostId: hv02, vmId }), "CONFLICT");
    await expectTrpcError(op.replication.pause({ hostId: hv01, vmId: "nope" }), "BAD_REQUEST", "vmId");
  });

  it("resynchronizes at a time or now, once resynchronization is required", async () => {
    const op = f.as("Operator");
    await expectTrpcError(op.replication.resynchronize({ hostId: hv01, vmId }), "CONFLICT");
    // A disk image modified while the agent was stopped: change tracking cannot vouch for it.
    await f.pair.primary.stop();
    const later = new Date(Date.now() + 5000);
    await utimes(join(f.pair.dir, "hv01", "vms", vmId, "disk0.raw"), later, later);
    await f.pair.primary.start();
    await waitFor("Resynchronization required", async () => (await replicationOf(hv01, vmId))?.state === "Resynchronization required", 15_000);
    await expectTrpcError(op.replication.resynchronize({ hostId: hv01, vmId, at: new Date(Date.now() + 8 * 24 * 3600_000).toISOString() }), "BAD_REQUEST", "at");
    await expectTrpcError(op.replication.resynchronize({ hostId: hv01, vmId, at: "tomorrow" }), "BAD_REQUEST", "at");
    await expectTrpcError(f.as("Viewer").replication.resynchronize({ hostId: hv01, vmId }), "FORBIDDEN");
    const at = new Date(Date.now() + 3600_000).toISOString();
    expect(await op.replication.resynchronize({ hostId: hv01, vmId, at })).toEqual({ state: "Resynchronization required", resyncAt: at });
    await op.replication.resynchronize({ hostId: hv01, vmId });
    await waitFor("Replicating again", async () => (await replicationOf(hv01, vmId))?.state === "Replicating", 30_000);
    expect(await diskHash(f.pair.replica, vmId, 0)).toBe(await diskHash(f.pair.primary, vmId, 0));
  });

  it("removes replication per side: on the Replica server the VM stays, as an ordinary VM", async () => {
    await expectTrpcError(f.as("Operator").replication.remove({ hostId: hv02, vmId }), "FORBIDDEN");
    await f.as("Administrator").replication.remove({ hostId: hv02, vmId });
    const kept = await f.as("Viewer").vms.get({ hostId: hv02, vmId });
    expect(kept).toMatchObject({ isReplica: false, replication: null });
    await f.as("Administrator").replication.remove({ hostId: hv01, vmId });
    expect(await replicationOf(hv01, vmId)).toBeNull();
    await expectTrpcError(f.as("Administrator").replication.remove({ hostId: hv01, vmId }), "NOT_FOUND");
  });
});

describe("initial replication methods", () => {
  it("a scheduled initial copy waits; Start Replication (Operators) starts it now", async () => {
    const vmId = await newVm("web-02");
    const startAt = new Date(Date.now() + 3600_000).toISOString();
    await f.as("Administrator").replication.enable({ ...wizard(vmId), recoveryHistory: 0, appConsistentFrequencyHours: null, initialReplication: { method: "network", startAt } });
    expect((await replicationOf(hv01, vmId))?.state).toBe("Ready for initial replication");
    await expectTrpcError(f.as("Viewer").replication.startInitial({ hostId: hv01, vmId }), "FORBIDDEN");
    await f.as("Operator").replication.startInitial({ hostId: hv01, vmId });
    await waitFor("Replicating", async () => (await replicationOf(hv01, vmId))?.state === "Replicating", 30_000);
    await expectTrpcError(f.as("Operator").replication.startInitial({ hostId: hv01, vmId }), "CONFLICT");
  });

  it("external media: exported on enabling, then Import Initial Replica on the Replica server (Administrators)", async () => {
    const vmId = await newVm("file-03");
    await f.pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/1/data?offset=0`, Buffer.alloc(128 * 1024, 9));
    const folder = join(await mkdtemp(join(f.pair.dir, "media-")), "file-03");
    await f.as("Administrator").replication.enable({ ...wizard(vmId), disks: [0, 1], recoveryHistory: 0, appConsistentFrequencyHours: null, initialReplication: { method: "external-media", folder } });
    const placeholder = await waitFor("placeholder cached", async () => {
      const r = await replicationOf(hv02, vmId);
      return r?.awaitingImport && r;
    }, 10_000);
    expect(placeholder.state).toBe("Waiting for initial replication");
    await expectTrpcError(f.as("Operator").replication.importInitial({ hostId: hv02, vmId, folder }), "FORBIDDEN");
    await expectTrpcError(f.as("Administrator").replication.importInitial({ hostId: hv02, vmId, folder: "usb/file-03" }), "BAD_REQUEST", "folder");
    await expectTrpcError(f.as("Administrator").replication.importInitial({ hostId: hv02, vmId, folder: join(f.pair.dir, "nothing-here") }), "BAD_REQUEST", "folder");
    expect(await f.as("Administrator").replication.importInitial({ hostId: hv02, vmId, folder })).toEqual({ state: "Replicating" });
    await f.pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(await diskHash(f.pair.replica, vmId, 1)).toBe(await diskHash(f.pair.primary, vmId, 1));
  });

  it("Finish against an unreachable Replica server says so and enables nothing", async () => {
    const vmId = await newVm("db-04");
    await f.pair.replica.kill();
    try {
      // The primary's connection test before enabling: nothing listens there any more.
      const e = await expectTrpcError(f.as("Administrator").replication.enable({ ...wizard(vmId), recoveryHistory: 0, appConsistentFrequencyHours: null }), "PRECONDITION_FAILED", "replicaPort");
      expect(e.message).toMatch(/nothing listens on port \d+ of hv02\.lab\.test/);
      expect(await replicationOf(hv01, vmId)).toBeNull();
      await expectTrpcError(f.as("Viewer").replication.checkReplicaServer({ hostId: hv01, replicaServer: "hv02.lab.test" }), "SERVICE_UNAVAILABLE", "replicaServer");
    } finally {
      await f.pair.replica.start();
    }
  });
});
