/**
 * The failover and jobs routers against two real agents: recovery points, test failover,
 * planned failover as a job (failed, retried, interrupted and resumed), failback, unplanned
 * failover with its data loss, cancel, complete and reverse replication. Disk hashes through
 * the agent API where bytes matter.
 */
import { randomBytes, randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, MGMT_TOKEN, waitFor, type AgentProcess } from "../../agent/testing/harness.js";
import type { JobView } from "../../jobs/types.js";
import { startConsoleFixture, type ConsoleFixture } from "../testing/console-fixture.js";
import { expectTrpcError } from "../testing/expect-error.js";

const MiB = 1024 * 1024;
const DISK = 16 * MiB;

/** Stops a job before the named step: `reached` resolves there, and it waits for `release`. */
const gate = { step: "", reached: () => {}, release: Promise.resolve() };

let f: ConsoleFixture;
let hv01: string;
let hv02: string;
let vmId: string;

const replicateNow = (a: AgentProcess) => a.ok<{ ok: boolean; error?: string }>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
const power = (a: AgentProcess, action: string) => a.ok("POST", `/api/v1/vms/${vmId}/power`, { action });
const agentVm = (a: AgentProcess) => a.ok<{ state: string; isReplica: boolean; replication: { role: string; state: string }[] }>("GET", `/api/v1/vms/${vmId}`);
async function scatter(a: AgentProcess, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await a.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${randomInt(DISK / 4096) * 4096}`, randomBytes(4096));
}
const eventsOf = async (a: AgentProcess, kind: string) => (await a.ok<{ kind: string }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`)).filter((e) => e.kind === kind).length;
const cachedState = (hostId: string, state: string) =>
  waitFor(`${state} in the console's cache`, async () => (await f.as("Viewer").vms.get({ hostId, vmId })).replication?.state === state, 15_000);
const finished = (id: string) => waitFor(`job ${id} finished`, async () => {
  const j = await f.as("Viewer").jobs.get({ id });
  return ["succeeded", "failed", "cancelled"].includes(j.status) && j;
}, 60_000);

beforeAll(async () => {
  f = await startConsoleFixture({
    jobs: {
      async beforeStep(_job, step) {
        if (step !== gate.step) return;
        gate.step = "";
        gate.reached();
        await gate.release;
      },
    },
  });
  const admin = f.as("Administrator");
  hv01 = (await admin.hosts.add({ auth: "token", address: f.pair.primary.url, token: MGMT_TOKEN })).id;
  hv02 = (await admin.hosts.add({ auth: "token", address: f.pair.replica.url, token: MGMT_TOKEN })).id;
  vmId = (await f.pair.primary.ok<{ id: string }>("POST", "/api/v1/vms", { name: "sql-01", disks: [{ sizeBytes: DISK }], workload: { pattern: "idle", rateMiBps: 1 } })).id;
  await f.pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: f.pair.replica.ports.https, frequencySeconds: 900, recoveryHistory: 4, startInitialReplication: false });
  expect((await replicateNow(f.pair.primary)).ok).toBe(true);
  await cachedState(hv02, "Replicating");
}, 120_000);
afterAll(async () => f?.cleanup());

describe("recovery points and test failover", () => {
  let olderPoint: string;

  it("lists a replica's recovery points with time, kind, size and the data each gives up", async () => {
    await scatter(f.pair.primary, 8);
    await f.pair.advanceClock(3600_000);
    expect((await replicateNow(f.pair.primary)).ok).toBe(true);
    await scatter(f.pair.primary, 8);
    expect((await replicateNow(f.pair.primary)).ok).toBe(true);
    const list = await f.as("Viewer").failover.recoveryPoints({ hostId: hv02, vmId });
    expect(list.points[0]).toMatchObject({ id: "latest", kind: "latest", secondsBeforeLastReplicated: 0 });
    expect(list.points.length).toBeGreaterThanOrEqual(2);
    const older = list.points.at(-1)!;
    expect(older.kind).toMatch(/standard|application-consistent/);
    expect(older.secondsBeforeLastReplicated).toBeGreaterThan(3000);
    olderPoint = older.id;
    // The primary's own row has no recovery points: the message says where to look.
    const e = await expectTrpcError(f.as("Viewer").failover.recoveryPoints({ hostId: hv01, vmId }), "CONFLICT", "vmId");
    expect(e.message).toMatch(/Replica server/);
  });

  it("starts a test failover from the older point (Operators), with that point's bytes, and stops it", async () => {
    await expectTrpcError(f.as("Viewer").failover.testFailover({ hostId: hv02, vmId, pointId: olderPoint }), "FORBIDDEN");
    await expectTrpcError(f.as("Operator").failover.testFailover({ hostId: hv02, vmId, pointId: "older" }), "BAD_REQUEST", "pointId");
    await expectTrpcError(f.as("Operator").failover.testFailover({ hostId: hv02, vmId, network: "x".repeat(65) }), "BAD_REQUEST", "network");
    const test = await f.as("Operator").failover.testFailover({ hostId: hv02, vmId, pointId: olderPoint, network: null });
    expect(test.name).toBe("sql-01 - Test");
    const pointHash = (await f.pair.replica.ok<{ sha256: string }>("GET", `/api/v1/vms/${vmId}/recovery-points/${olderPoint}/disks/0/hash`)).sha256;
    expect(await diskHash(f.pair.replica, test.testVmId)).toBe(pointHash);
    expect(pointHash).not.toBe(await diskHash(f.pair.replica, vmId));
    expect((await f.as("Viewer").vms.get({ hostId: hv02, vmId })).replication?.testFailover?.testVmId).toBe(test.testVmId);
    await f.as("Operator").failover.stopTestFailover({ hostId: hv02, vmId });
    expect((await f.pair.replica.api("GET", `/api/v1/vms/${test.testVmId}`)).status).toBe(404);
    await expectTrpcError(f.as("Operator").failover.stopTestFailover({ hostId: hv02, vmId }), "CONFLICT", "vmId");
  });
});

describe("planned failover as a job", () => {
  it("lists the checks; a job refused by a check fails at prepare saying why, and completes when retried", async () => {
    await power(f.pair.primary, "start");
    const checks = await f.as("Viewer").failover.plannedChecks({ hostId: hv01, vmId });
    expect(checks.steps.find((s) => s.step === "Check virtual machine is turned off")?.ok).toBe(false);
    expect(checks.replicaServer).toBe("hv02.lab.test");
    await expectTrpcError(f.as("Viewer").failover.planned({ hostId: hv01, vmId }), "FORBIDDEN");
    await expectTrpcError(f.as("Operator").failover.planned({ hostId: hv02, vmId }), "CONFLICT", "vmId");

    const job = await f.as("Operator").failover.planned({ hostId: hv01, vmId });
    expect(job).toMatchObject({ kind: "planned-failover", status: "queued", createdBy: "operator" });
    const failed = await finished(job.id);
    expect(failed.status).toBe("failed");
    expect(failed.steps[0]).toMatchObject({ status: "failed" });
    expect(failed.error).toMatch(/turned off/);
    expect(failed.error).toMatch(/Retry/);
    // Only one open job per VM.
    await expectTrpcError(f.as("Operator").failover.planned({ hostId: hv01, vmId }), "CONFLICT");

    await scatter(f.pair.primary, 16);
    await power(f.pair.primary, "turn-off");
    const finalHash = await diskHash(f.pair.primary, vmId);
    await expectTrpcError(f.as("Viewer").jobs.retry({ id: job.id }), "FORBIDDEN");
    await f.as("Operator").jobs.retry({ id: job.id });
    const done = await finished(job.id);
    expect(done.status, done.error ?? "").toBe("succeeded");
    expect(done.steps.map((s) => s.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"]);
    // Zero data loss: hv02 runs the VM from exactly hv01's last bytes, and hv01 holds the replica.
    expect(await agentVm(f.pair.replica)).toMatchObject({ state: "Running", isReplica: false, replication: [{ role: "primary" }] });
    expect(await agentVm(f.pair.primary)).toMatchObject({ isReplica: true, replication: [{ role: "replica" }] });
    await power(f.pair.replica, "turn-off");
    expect(await diskHash(f.pair.replica, vmId)).toBe(finalHash);
    expect(f.jobNotices.some((j) => j.id === job.id && j.status === "running")).toBe(true);
    const audit = await f.db.auditEntry.findMany({ where: { action: "failover.planned" } });
    expect(audit.map((a) => a.result).sort()).toEqual(["failure", "failure", "failure", "success"]);
  });

  it("resumes a job interrupted between steps, and a step run again does not repeat its effect (failback)", async () => {
    await scatter(f.pair.replica, 16);
    expect((await replicateNow(f.pair.replica)).ok).toBe(true);
    await cachedState(hv02, "Replicating");
    const reached = new Promise<void>((ok) => (gate.reached = ok));
    let release!: () => void;
    gate.release = new Promise((ok) => (release = ok));
    gate.step = "Fail over on the Replica server";

    const job = await f.as("Operator").failover.planned({ hostId: hv02, vmId, start: false });
    expect(job.kind).toBe("failback");
    await reached;
    // The console stops between "prepare" and "fail over".
    const stopping = f.jobs.stop();
    release();
    await stopping;
    const halted = await f.as("Viewer").jobs.get({ id: job.id });
    expect(halted).toMatchObject({ status: "running", stepIndex: 1 });
    expect(halted.steps.map((s) => s.status)).toEqual(["succeeded", "pending", "pending", "skipped"]);
    // As if it had died after the agent prepared and before the step was saved: prepare runs again.
    await f.db.job.update({ where: { id: job.id }, data: { stepIndex: 0 } });
    const prepared = await eventsOf(f.pair.replica, "replication.prepared");

    await f.restartJobs();
    const done = await finished(job.id);
    expect(done.status, done.error ?? "").toBe("succeeded");
    expect(done.steps[0]!.detail).toMatch(/already prepared/);
    expect(done.steps[3]).toMatchObject({ status: "skipped", detail: "not requested" });
    expect(await eventsOf(f.pair.replica, "replication.prepared")).toBe(prepared);
    expect(await agentVm(f.pair.primary)).toMatchObject({ state: "Off", isReplica: false, replication: [{ role: "primary", state: "Replicating" }] });
    expect(await diskHash(f.pair.primary, vmId)).toBe(await diskHash(f.pair.replica, vmId));
    const listed = await f.as("Viewer").jobs.list({ vmId });
    expect(listed.map((j: JobView) => j.kind)).toEqual(["failback", "planned-failover"]);
  });

  it("cancels a failed job, bringing a prepared primary back to replicating", async () => {
    // Prepared, then the Replica server's agent goes down: the failover step cannot reach it and fails after its retries.
    const reached = new Promise<void>((ok) => (gate.reached = ok));
    gate.release = reached.then(() => f.pair.replica.kill());
    gate.step = "Fail over on the Replica server";
    const job = await f.as("Operator").failover.planned({ hostId: hv01, vmId });
    const failed = await finished(job.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/answers again/);
    expect(failed.steps.map((s) => s.status)).toEqual(["succeeded", "failed", "pending", "pending"]);
    expect((await agentVm(f.pair.primary)).replication[0]?.state).toBe("Prepared for planned failover");
    await f.pair.replica.start();
    await f.as("Operator").jobs.cancel({ id: job.id });
    expect((await f.as("Viewer").jobs.get({ id: job.id })).status).toBe("cancelled");
    expect((await agentVm(f.pair.primary)).replication[0]?.state).toBe("Replicating");
    await expectTrpcError(f.as("Operator").jobs.retry({ id: job.id }), "CONFLICT");
    await expectTrpcError(f.as("Operator").jobs.get({ id: "" }), "BAD_REQUEST", "id");
    await expectTrpcError(f.as("Operator").jobs.cancel({ id: "nope" }), "NOT_FOUND");
  });
});

describe("unplanned failover", () => {
  it("is refused while the primary runs, with what was checked", async () => {
    await cachedState(hv02, "Replicating");
    await power(f.pair.primary, "start");
    const e = await expectTrpcError(f.as("Operator").failover.failover({ hostId: hv02, vmId, pointId: "latest" }), "PRECONDITION_FAILED");
    expect(e.message).toMatch(/Failed: .*Running/);
    await expectTrpcError(f.as("Viewer").failover.failover({ hostId: hv02, vmId, pointId: "latest" }), "FORBIDDEN");
    await expectTrpcError(f.as("Operator").failover.failover({ hostId: hv02, vmId, pointId: "one" }), "BAD_REQUEST", "pointId");
  });

  it("fails over to a chosen point with the data loss, cancels, completes, and reverse replication resyncs", async () => {
    // An hour's point, then newer writes (the planned failovers started the history anew).
    await f.pair.advanceClock(3600_000);
    expect((await replicateNow(f.pair.primary)).ok).toBe(true);
    await scatter(f.pair.primary, 8);
    expect((await replicateNow(f.pair.primary)).ok).toBe(true);
    await f.pair.primary.kill();
    await waitFor("hv01 unreachable", async () => (await f.as("Viewer").hosts.list()).find((h) => h.id === hv01)?.status === "unreachable", 15_000);
    const { points, primary } = await f.as("Viewer").failover.recoveryPoints({ hostId: hv02, vmId });
    expect(primary).toMatchObject({ host: "hv01.lab.test", status: "unreachable", vmState: "Running" });
    const older = points.at(-1)!;
    expect(older.secondsBeforePrimaryLastSeen).not.toBeNull();

    const res = await f.as("Operator").failover.failover({ hostId: hv02, vmId, pointId: older.id, start: true });
    expect(res.dataLoss.seconds).toBeGreaterThan(3000);
    await f.as("Operator").failover.cancelFailover({ hostId: hv02, vmId });
    const latestHash = (await f.pair.replica.ok<{ sha256: string }>("GET", `/api/v1/vms/${vmId}/recovery-points/latest/disks/0/hash`)).sha256;
    await f.as("Operator").failover.failover({ hostId: hv02, vmId, pointId: "latest", start: false });
    await expectTrpcError(f.as("Viewer").failover.completeFailover({ hostId: hv02, vmId }), "FORBIDDEN");
    await f.as("Operator").failover.completeFailover({ hostId: hv02, vmId });
    expect(await diskHash(f.pair.replica, vmId)).toBe(latestHash);
    await cachedState(hv02, "Failover complete");

    await f.pair.primary.start();
    await waitFor("hv01 connected", async () => (await f.as("Viewer").hosts.list()).find((h) => h.id === hv01)?.status === "connected", 15_000);
    const defaults = await f.as("Viewer").failover.reverseDefaults({ hostId: hv02, vmId });
    expect(defaults).toMatchObject({ replicaServer: "hv01.lab.test", authMode: "https", replicaPort: f.pair.primary.ports.https, frequencySeconds: 900, recoveryHistory: 4 });
    await expectTrpcError(f.as("Operator").failover.reverse({ hostId: hv02, vmId, frequencySeconds: 7 }), "BAD_REQUEST", "frequencySeconds");
    await expectTrpcError(f.as("Operator").failover.reverse({ hostId: hv02, vmId, replicaServer: "hv03.lab.test" }), "BAD_REQUEST", "replicaServer");
    await expectTrpcError(f.as("Operator").failover.reverse({ hostId: hv02, vmId, appConsistentFrequencyHours: 13 }), "BAD_REQUEST", "appConsistentFrequencyHours");
    await expectTrpcError(f.as("Viewer").failover.reverse({ hostId: hv02, vmId }), "FORBIDDEN");
    const job = await f.as("Operator").failover.reverse({ hostId: hv02, vmId, replicaPort: defaults.replicaPort!, authMode: "https", frequencySeconds: 300 });
    const done = await finished(job.id);
    expect(done.status, done.error ?? "").toBe("succeeded");
    expect(done.steps.map((s) => s.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    // hv01 gave up what it wrote after the failover point: it now equals hv02, replicating from it.
    expect(await agentVm(f.pair.primary)).toMatchObject({ isReplica: true, state: "Off", replication: [{ role: "replica" }] });
    expect(await agentVm(f.pair.replica)).toMatchObject({ replication: [{ role: "primary", state: "Replicating" }] });
    expect(await diskHash(f.pair.primary, vmId)).toBe(await diskHash(f.pair.replica, vmId));
  });
});
