import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { defineAgent, MGMT_TOKEN, REPL_TOKEN, waitFor } from "../../agent/testing/harness.js";
import type { VmView } from "../../fleet/vm-model.js";
import { startConsoleFixture, type ConsoleFixture } from "../testing/console-fixture.js";
import { expectTrpcError } from "../testing/expect-error.js";

let f: ConsoleFixture;
let hv01: string;
let hv02: string;
beforeAll(async () => {
  f = await startConsoleFixture();
});
afterAll(async () => f?.cleanup());

const newVm = (hostId: string, name: string) => ({
  hostId,
  name,
  cpus: 2,
  memoryMiB: 2048,
  disks: [{ sizeGiB: 1 }],
  workload: { pattern: "idle" as const, rateMiBps: 1 },
});

describe("hosts", () => {
  it("connects to two servers by address and token; both become connected", async () => {
    const admin = f.as("Administrator");
    const a = await admin.hosts.add({ auth: "token", address: f.pair.primary.url, token: MGMT_TOKEN });
    const b = await admin.hosts.add({ auth: "token", address: `${f.pair.replica.url}/`, token: MGMT_TOKEN });
    expect([a.name, b.name]).toEqual(["hv01.lab.test", "hv02.lab.test"]);
    hv01 = a.id;
    hv02 = b.id;
    await waitFor("both hosts connected", async () => (await f.as("Viewer").hosts.list()).every((h) => h.status === "connected"), 10_000);
    expect(f.notices.some((n) => n.type === "hostChanged")).toBe(true);
  });

  it("names the field that is wrong when connecting", async () => {
    const admin = f.as("Administrator");
    await expectTrpcError(admin.hosts.add({ auth: "token", address: "hv03", token: MGMT_TOKEN }), "BAD_REQUEST", "address");
    await expectTrpcError(admin.hosts.add({ auth: "token", address: f.pair.primary.url.replace(/\d+$/, "1"), token: MGMT_TOKEN }), "BAD_REQUEST", "address");
    await expectTrpcError(admin.hosts.add({ auth: "token", address: "http://127.0.0.1:9", token: "short" }), "BAD_REQUEST", "token");
    await expectTrpcError(admin.hosts.add({ auth: "token", address: f.pair.primary.url, token: "wrong-token-wrong-token" }), "CONFLICT", "address");
    const other = await admin.hosts.remove({ id: hv02 });
    expect(other.name).toBe("hv02.lab.test");
    await expectTrpcError(admin.hosts.add({ auth: "token", address: f.pair.replica.url, token: "wrong-token-wrong-token" }), "BAD_REQUEST", "token");
    hv02 = (await admin.hosts.add({ auth: "token", address: f.pair.replica.url, token: MGMT_TOKEN })).id;
  });

  it("lets only Administrators add and remove servers", async () => {
    for (const role of ["Operator", "Viewer"] as const) {
      await expectTrpcError(f.as(role).hosts.add({ auth: "token", address: "http://127.0.0.1:1", token: MGMT_TOKEN }), "FORBIDDEN");
      await expectTrpcError(f.as(role).hosts.remove({ id: hv01 }), "FORBIDDEN");
    }
    await expectTrpcError(f.as(null).hosts.list(), "UNAUTHORIZED");
    await expectTrpcError(f.as("Administrator").hosts.remove({ id: "nope" }), "NOT_FOUND");
    expect((await f.as("Viewer").hosts.list()).length).toBe(2);
  });
});

describe("vms", () => {
  let vmId: string;

  it("creates a VM on a host (Administrator) and lists it", async () => {
    const created = await f.as("Administrator").vms.create(newVm(hv01, "app-01"));
    vmId = created.vmId;
    const list = await f.as("Viewer").vms.list({ hostId: hv01 });
    expect(list.find((v) => v.vmId === vmId)).toMatchObject({ name: "app-01", state: "Off", cpus: 2, memoryMiB: 2048, replication: null });
    expect(await f.pair.primary.ok<{ name: string }>("GET", `/api/v1/vms/${vmId}`)).toMatchObject({ name: "app-01" });
  });

  it("names the field of a bad VM and refuses creating to non-Administrators", async () => {
    const admin = f.as("Administrator");
    await expectTrpcError(admin.vms.create({ ...newVm(hv01, "a/b") }), "BAD_REQUEST", "name");
    await expectTrpcError(admin.vms.create({ ...newVm(hv01, "x"), cpus: 0 }), "BAD_REQUEST", "cpus");
    await expectTrpcError(admin.vms.create({ ...newVm(hv01, "x"), disks: [] }), "BAD_REQUEST", "disks");
    await expectTrpcError(admin.vms.create({ ...newVm(hv01, "x"), memoryMiB: 8 }), "BAD_REQUEST", "memoryMiB");
    await expectTrpcError(admin.vms.create(newVm("no-such-host", "x")), "NOT_FOUND", "hostId");
    await expectTrpcError(f.as("Operator").vms.create(newVm(hv01, "x")), "FORBIDDEN");
    expect((await f.as("Viewer").vms.list({ hostId: hv01 })).map((v) => v.name)).toEqual(["app-01"]);
  });

  it("runs power actions for Operators; the cache and the browsers hear of it", async () => {
    const op = f.as("Operator");
    f.notices.length = 0;
    expect(await op.vms.power({ hostId: hv01, vmId, action: "start" })).toMatchObject({ state: "Running" });
    const vm = await f.as("Viewer").vms.get({ hostId: hv01, vmId });
    expect(vm.state).toBe("Running");
    expect(vm.upSince).not.toBeNull();
    expect(vm.assignedMemoryMiB).toBe(2048);
    expect(f.notices.some((n) => n.type === "vmChanged" && (n.payload[0] as VmView).state === "Running")).toBe(true);
    expect(await op.vms.power({ hostId: hv01, vmId, action: "pause" })).toMatchObject({ state: "Paused" });
    expect(await op.vms.power({ hostId: hv01, vmId, action: "resume" })).toMatchObject({ state: "Running" });
  });

  it("changes the guest workload in Settings (Administrators only)", async () => {
    const changed = await f.as("Administrator").vms.setWorkload({ hostId: hv01, vmId, workload: { pattern: "random-4k", rateMiBps: 2 } });
    expect(changed.workload).toEqual({ pattern: "random-4k", rateMiBps: 2 });
    expect((await f.as("Viewer").vms.get({ hostId: hv01, vmId })).workload).toEqual({ pattern: "random-4k", rateMiBps: 2 });
    await expectTrpcError(f.as("Operator").vms.setWorkload({ hostId: hv01, vmId, workload: { pattern: "idle", rateMiBps: 1 } }), "FORBIDDEN");
    await expectTrpcError(f.as("Administrator").vms.setWorkload({ hostId: hv01, vmId, workload: { pattern: "idle", rateMiBps: 5000 } }), "BAD_REQUEST", "workload.rateMiBps");
    await f.as("Administrator").vms.setWorkload({ hostId: hv01, vmId, workload: { pattern: "idle", rateMiBps: 1 } });
  });

  it("shows the CPU usage of running VMs as the agent measures it, live", async () => {
    await f.as("Administrator").vms.setWorkload({ hostId: hv01, vmId, workload: { pattern: "sequential-1m", rateMiBps: 128 } });
    f.notices.length = 0;
    const busy = await waitFor("CPU usage above 0 %", async () => ((await f.as("Viewer").vms.get({ hostId: hv01, vmId })).cpuUsagePercent ?? 0) > 0, 10_000, 100);
    expect(busy).toBe(true);
    const metrics = f.notices.filter((n) => n.type === "vmMetrics");
    expect(metrics[0]?.payload).toEqual([hv01, expect.arrayContaining([{ vmId, cpuUsagePercent: expect.any(Number) }])]);
    await f.as("Administrator").vms.setWorkload({ hostId: hv01, vmId, workload: { pattern: "idle", rateMiBps: 1 } });
    await waitFor("back to 0 % when idle", async () => (await f.as("Viewer").vms.get({ hostId: hv01, vmId })).cpuUsagePercent === 0, 10_000, 100);
    // Not running: no figure, as in Hyper-V Manager.
    const other = await f.as("Administrator").vms.create(newVm(hv01, "cpu-off"));
    expect((await f.as("Viewer").vms.get({ hostId: hv01, vmId: other.vmId })).cpuUsagePercent).toBeNull();
    await f.as("Administrator").vms.delete({ hostId: hv01, vmId: other.vmId });
  });

  it("passes on the agent's refusal, and refuses power to Viewers", async () => {
    const e = await expectTrpcError(f.as("Operator").vms.power({ hostId: hv01, vmId, action: "start" }), "CONFLICT");
    expect(e.message).toMatch(/Running/);
    await expectTrpcError(f.as("Viewer").vms.power({ hostId: hv01, vmId, action: "turn-off" }), "FORBIDDEN");
    // @ts-expect-error an unknown action
    await expectTrpcError(f.as("Operator").vms.power({ hostId: hv01, vmId, action: "explode" }), "BAD_REQUEST", "action");
    await expectTrpcError(f.as("Operator").vms.power({ hostId: hv01, vmId: "not-a-uuid", action: "start" }), "BAD_REQUEST", "vmId");
    expect((await f.as("Viewer").vms.get({ hostId: hv01, vmId })).state).toBe("Running");
  });

  it("follows changes made on the agent directly, within a second", async () => {
    const started = Date.now();
    await f.pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "save" });
    await waitFor("Saved in the cache", async () => (await f.as("Viewer").vms.get({ hostId: hv01, vmId })).state === "Saved", 5000, 20);
    expect(Date.now() - started).toBeLessThan(1000);
    const events = await waitFor("the Saved event", async () => {
      const list = await f.as("Viewer").events.list({ hostId: hv01, vmId });
      return list[0]?.message.includes("to Saved") && list;
    }, 5000, 20);
    expect(events.slice(0, 2).map((e) => e.message)).toEqual(["'app-01' changed from Saving to Saved.", "'app-01' changed from Running to Saving."]);
    const warnings = await f.as("Viewer").events.list({ hostId: hv01, severity: ["warning"] });
    expect(warnings.every((e) => e.severity === "warning")).toBe(true);
    expect(warnings.some((e) => e.kind === "vm.power-refused")).toBe(true);
  });

  it("shows replication set up on the agent, with health", async () => {
    await f.pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: f.pair.replica.ports.https, authMode: "https", frequencySeconds: 30 });
    const vm = await waitFor("Replicating", async () => {
      const v = await f.as("Viewer").vms.get({ hostId: hv01, vmId });
      return v.replication?.state === "Replicating" && v;
    }, 30_000);
    expect(vm.replication).toMatchObject({ mode: "Primary", health: "Normal", primaryServer: "hv01.lab.test", replicaServer: "hv02.lab.test", frequencySeconds: 30 });
    // The replica's own events arrive on its own stream, a moment after the primary's.
    const replica = await waitFor("replica VM cached, replicating", async () => (await f.as("Viewer").vms.list({ hostId: hv02 })).find((v) => v.vmId === vmId && v.replication?.state === "Replicating"), 10_000);
    expect(replica).toMatchObject({ isReplica: true, replication: { mode: "Replica" } });
    const everywhere = (await f.as("Viewer").vms.list({})).filter((v) => v.vmId === vmId);
    expect(everywhere.map((v) => [v.hostId, v.isReplica])).toEqual(expect.arrayContaining([[hv01, false], [hv02, true]]));
    // Time alone: two hours without a sync turns both sides Warning, even without agent news.
    expect(await f.fleet.recheckHealth(Date.now() + 2 * 3600_000)).toBeGreaterThanOrEqual(2);
    expect((await f.as("Viewer").vms.get({ hostId: hv02, vmId })).replication).toMatchObject({ health: "Warning", reasons: ["No replication data has been received for more than 1 hour."] });
    await f.fleet.recheckHealth();
    expect((await f.as("Viewer").vms.get({ hostId: hv02, vmId })).replication?.health).toBe("Normal");
    await f.pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/pause`);
    await waitFor("paused: Warning", async () => {
      const v = await f.as("Viewer").vms.get({ hostId: hv01, vmId });
      return v.replication?.health === "Warning" && v.replication.reasons.some((r) => /paused/.test(r));
    }, 5000);
  });

  it("deletes a VM only when the agent allows it, and only for Administrators", async () => {
    const admin = f.as("Administrator");
    const other = await admin.vms.create(newVm(hv01, "scratch"));
    await expectTrpcError(f.as("Operator").vms.delete({ hostId: hv01, vmId: other.vmId }), "FORBIDDEN");
    await f.as("Operator").vms.power({ hostId: hv01, vmId: other.vmId, action: "start" });
    await expectTrpcError(admin.vms.delete({ hostId: hv01, vmId: other.vmId }), "CONFLICT");
    await f.as("Operator").vms.power({ hostId: hv01, vmId: other.vmId, action: "turn-off" });
    await admin.vms.delete({ hostId: hv01, vmId: other.vmId });
    expect((await admin.vms.list({ hostId: hv01 })).some((v) => v.vmId === other.vmId)).toBe(false);
    expect((await f.pair.primary.api("GET", `/api/v1/vms/${other.vmId}`)).status).toBe(404);
    const audit = await f.db.auditEntry.findMany({ where: { action: "vms.delete", target: { contains: "vm=scratch" } }, orderBy: { id: "asc" } });
    expect(audit.map((a) => `${a.userName}:${a.result}`)).toEqual(["operator:failure", "administrator:failure", "administrator:success"]);
    expect(audit.map((a) => a.target)).toEqual(Array(3).fill("host=hv01.lab.test vm=scratch"));
  });

  it("marks a killed agent unreachable with the reason, and reconnects with a full re-sync", async () => {
    await f.pair.replica.kill();
    const down = await waitFor("unreachable", async () => (await f.as("Viewer").hosts.list()).find((h) => h.id === hv02 && h.status === "unreachable"), 5000, 50);
    expect(down.statusReason).toMatch(/refused|closed the connection/);
    await f.pair.replica.start();
    await waitFor("connected again", async () => (await f.as("Viewer").hosts.list()).find((h) => h.id === hv02 && h.status === "connected"), 10_000, 50);
    await f.as("Viewer").hosts.refresh({ id: hv02 });
    expect((await f.as("Viewer").vms.list({ hostId: hv02 })).some((v) => v.vmId === vmId)).toBe(true);
  });

  it("follows an agent that comes back with a new data folder: its log starts over, the cache is re-read", async () => {
    await f.pair.replica.kill();
    const fresh = await defineAgent({ hostName: "hv02.lab.test", dataDir: join(f.pair.dir, "hv02-new"), ports: f.pair.replica.ports, replicationToken: REPL_TOKEN });
    await fresh.start();
    try {
      const vm = await fresh.ok<{ id: string }>("POST", "/api/v1/vms", { name: "after-reset", disks: [{ sizeBytes: 1024 * 1024 }] });
      const list = await waitFor("the new agent's VMs only", async () => {
        const vms = await f.as("Viewer").vms.list({ hostId: hv02 });
        return vms.length === 1 && vms[0]!.vmId === vm.id && vms;
      }, 10_000, 50);
      expect(list[0]!.name).toBe("after-reset");
      const events = await waitFor("the new agent's events", async () => {
        const e = await f.as("Viewer").events.list({ hostId: hv02 });
        return e.some((x) => x.message.includes("after-reset")) && e;
      }, 10_000, 50);
      expect(events.every((e) => e.vmId === null || e.vmId === vm.id)).toBe(true);
    } finally {
      await fresh.kill();
    }
  });
});
