/**
 * View Replication Health, read-only dashboard links and health alerts, through createCaller
 * against two real agents replicating a running VM, and a real HTTP server as the webhook.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MGMT_TOKEN, waitFor } from "../../agent/testing/harness.js";
import { createSession } from "../../console/auth/sessions.js";
import { dashboardLinkOf } from "../../console/auth/dashboard-links.js";
import { Alerter } from "../../fleet/alerts.js";
import { wallSnapshot } from "../../fleet/wall-model.js";
import { serveStatisticsCsv, STATISTICS_CSV_PATH } from "../statistics-csv.js";
import { startConsoleFixture, type ConsoleFixture } from "../testing/console-fixture.js";
import { expectTrpcError } from "../testing/expect-error.js";

let f: ConsoleFixture;
let hv01: string;
let hv02: string;
let vmId: string;
/** What the test webhook received; it answers 500 on /broken. */
const received: { path: string; body: Record<string, unknown> }[] = [];
let hook: Server;
let hookUrl: string;

beforeAll(async () => {
  f = await startConsoleFixture();
  hook = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      received.push({ path: req.url ?? "", body: JSON.parse(body || "{}") });
      res.writeHead(req.url === "/broken" ? 500 : 204).end();
    });
  });
  await new Promise<void>((ok) => hook.listen(0, "127.0.0.1", ok));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
  const admin = f.as("Administrator");
  hv01 = (await admin.hosts.add({ auth: "token", address: f.pair.primary.url, token: MGMT_TOKEN })).id;
  hv02 = (await admin.hosts.add({ auth: "token", address: f.pair.replica.url, token: MGMT_TOKEN })).id;
  vmId = (await admin.vms.create({ hostId: hv01, name: "sql-01", cpus: 2, memoryMiB: 1024, disks: [{ sizeGiB: 1 }], workload: { pattern: "random-4k", rateMiBps: 1 } })).vmId;
  await f.as("Operator").vms.power({ hostId: hv01, vmId, action: "start" });
  await f.pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: f.pair.replica.ports.https, authMode: "https", frequencySeconds: 5 });
  await waitFor("both sides Replicating and Normal in the cache", async () => {
    const sides = (await f.as("Viewer").vms.list({})).filter((v) => v.vmId === vmId);
    return sides.length === 2 && sides.every((v) => v.replication?.state === "Replicating" && v.replication.health === "Normal");
  }, 60_000);
});
afterAll(async () => {
  hook?.close();
  await f?.cleanup();
});

describe("View Replication Health", () => {
  it("shows the primary's statistics and the replica's, as the agents count them", async () => {
    await waitFor("two cycles", async () => (await f.as("Viewer").health.statistics({ hostId: hv01, vmId })).successfulCycles >= 2, 30_000);
    const p = await f.as("Viewer").health.statistics({ hostId: hv01, vmId });
    expect(p).toMatchObject({ mode: "Primary", state: "Replicating", health: "Normal", healthReasons: [], primaryServer: "hv01.lab.test", replicaServer: "hv02.lab.test", errorsEncountered: 0, testFailoverRunning: null });
    expect(p.averageSizeBytes).toBeGreaterThan(0);
    expect(p.maximumSizeBytes).toBeGreaterThanOrEqual(p.averageSizeBytes);
    expect(typeof p.pendingBytes).toBe("number");
    expect(p.lastSynchronizedAt).not.toBeNull();
    const r = await f.as("Viewer").health.statistics({ hostId: hv02, vmId });
    expect(r).toMatchObject({ mode: "Replica", primaryServer: "hv01.lab.test", replicaServer: "hv02.lab.test", pendingBytes: null, testFailoverRunning: false });
  });

  it("lists the cycles oldest first with size and latency, for the charts", async () => {
    const cycles = await f.as("Viewer").health.cycles({ hostId: hv01, vmId });
    expect(cycles.length).toBeGreaterThanOrEqual(2);
    expect(cycles.map((c) => c.seq)).toEqual([...cycles.map((c) => c.seq)].sort((a, b) => a - b));
    const last = cycles.at(-1)!;
    expect(last).toMatchObject({ ok: true, status: "acknowledged" });
    expect(last.sizeBytes).toBeGreaterThan(0);
    expect(last.latencyMs).toBeGreaterThanOrEqual(0);
    expect((await f.as("Viewer").health.cycles({ hostId: hv01, vmId, limit: 1 })).length).toBe(1);
  });

  it("resets the statistics for Operators only; bad input names the field", async () => {
    await expectTrpcError(f.as("Viewer").health.reset({ hostId: hv01, vmId }), "FORBIDDEN");
    await expectTrpcError(f.as(null).health.statistics({ hostId: hv01, vmId }), "UNAUTHORIZED");
    const before = await f.as("Viewer").health.statistics({ hostId: hv01, vmId });
    const after = await f.as("Operator").health.reset({ hostId: hv01, vmId });
    expect(after.successfulCycles).toBeLessThan(before.successfulCycles);
    expect(Date.parse(after.fromTime)).toBeGreaterThan(Date.parse(before.fromTime));
    await expectTrpcError(f.as("Operator").health.reset({ hostId: hv01, vmId: "nope" }), "BAD_REQUEST", "vmId");
    await expectTrpcError(f.as("Viewer").health.statistics({ hostId: "no-such-host", vmId }), "NOT_FOUND", "hostId");
    await expectTrpcError(f.as("Viewer").health.cycles({ hostId: hv01, vmId, limit: 0 }), "BAD_REQUEST", "limit");
    await expectTrpcError(f.as("Viewer").health.statistics({ hostId: hv01, vmId: crypto.randomUUID() }), "NOT_FOUND");
    const audit = await f.db.auditEntry.findMany({ where: { action: "health.reset" }, orderBy: { id: "asc" } });
    expect(audit.map((a) => `${a.userName}:${a.result}`)).toEqual(["viewer:failure", "operator:success", "operator:failure"]);
  });

  it("serves Save As (CSV) to a signed-in browser only", async () => {
    const server = createServer((req, res) => void serveStatisticsCsv({ db: f.db, fleet: f.fleet }, req, res));
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${STATISTICS_CSV_PATH}`;
      const { token } = await createSession(f.db, f.users.Viewer.id, 1);
      const cookie = { cookie: `rm_session=${token}` };
      const ok = await fetch(`${base}?hostId=${hv01}&vmId=${vmId}`, { headers: cookie });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("content-disposition")).toBe('attachment; filename="sql-01-replication-statistics.csv"');
      const [header, row] = (await ok.text()).trim().split("\n");
      expect(header!.split(",")).toEqual(expect.arrayContaining(["vmName", "health", "averageSizeBytes", "successfulCycles"]));
      expect(row).toContain("sql-01");
      expect((await fetch(`${base}?hostId=${hv01}&vmId=${vmId}`)).status).toBe(401);
      const bad = await fetch(`${base}?hostId=${hv01}&vmId=x`, { headers: cookie });
      expect([bad.status, await bad.text()]).toEqual([400, "vmId: vmId must be a VM id as listed"]);
      expect((await fetch(`${base}?hostId=nope&vmId=${vmId}`, { headers: cookie })).status).toBe(404);
    } finally {
      server.close();
    }
  });
});

describe("the wall dashboard", () => {
  it("makes one tile per replicated VM from both sides, worst first", async () => {
    const s = wallSnapshot(await f.as("Viewer").vms.list({}), await f.as("Viewer").hosts.list());
    expect(s.counts).toEqual({ Normal: 1, Warning: 0, Critical: 0 });
    expect(s.tiles).toEqual([expect.objectContaining({ vmId, name: "sql-01", health: "Normal", reasons: [], primaryServer: "hv01.lab.test", replicaServer: "hv02.lab.test", unreachable: [] })]);
    expect(s.tiles[0]!.lastSyncAt).not.toBeNull();
  });

  it("makes read-only links for Administrators, which open the dashboard until revoked", async () => {
    const made = await f.as("Administrator").dashboard.createLink({ name: "  NOC wall  " });
    expect(made.name).toBe("NOC wall");
    const key = new URL(made.path, "http://x").searchParams.get("key")!;
    expect(await dashboardLinkOf(f.db, key)).toBe(made.id);
    expect(await dashboardLinkOf(f.db, `${key}x`)).toBeNull();
    const listed = await f.as("Administrator").dashboard.links();
    expect(listed).toEqual([expect.objectContaining({ id: made.id, name: "NOC wall", createdBy: "administrator", revokedAt: null })]);
    expect(JSON.stringify(listed)).not.toContain(key);
    await expectTrpcError(f.as("Operator").dashboard.createLink({ name: "x" }), "FORBIDDEN");
    await expectTrpcError(f.as("Viewer").dashboard.links(), "FORBIDDEN");
    await expectTrpcError(f.as("Administrator").dashboard.createLink({ name: "   " }), "BAD_REQUEST", "name");
    await expectTrpcError(f.as("Administrator").dashboard.revokeLink({ id: "abc" }), "BAD_REQUEST", "id");
    await expectTrpcError(f.as("Administrator").dashboard.revokeLink({ id: "0".repeat(64) }), "NOT_FOUND");
    const revoked = await f.as("Administrator").dashboard.revokeLink({ id: made.id });
    expect(revoked.revokedAt).not.toBeNull();
    expect(await dashboardLinkOf(f.db, key)).toBeNull();
  });
});

describe("health alerts", () => {
  let good: string;
  let broken: string;

  it("keeps webhook and mail targets for Administrators; bad input names the field", async () => {
    const admin = f.as("Administrator");
    good = (await admin.alerts.add({ kind: "webhook", name: "Ops webhook", address: `${hookUrl}/ok` })).id;
    broken = (await admin.alerts.add({ kind: "webhook", name: "Broken webhook", address: `${hookUrl}/broken` })).id;
    const mail = await admin.alerts.add({ kind: "mail", name: "Ops mail", address: "ops@example.com, dr@example.com", smtpUrl: "smtp://alerts:s3cret@127.0.0.1:1", enabled: false });
    expect(mail.smtpUrl).toBe("smtp://alerts:***@127.0.0.1:1");
    const audited = JSON.stringify(await f.db.auditEntry.findMany({ where: { action: "alerts.add" } }));
    expect(audited).toContain("Ops mail");
    expect(audited).not.toContain("s3cret");
    expect((await admin.alerts.targets()).map((t) => [t.name, t.enabled])).toEqual([["Ops webhook", true], ["Broken webhook", true], ["Ops mail", false]]);
    await expectTrpcError(admin.alerts.add({ kind: "webhook", name: "x", address: "hooks.example.com" }), "BAD_REQUEST", "address");
    await expectTrpcError(admin.alerts.add({ kind: "webhook", name: "x", address: "ftp://hooks.example.com/" }), "BAD_REQUEST", "address");
    await expectTrpcError(admin.alerts.add({ kind: "mail", name: "x", address: "ops", smtpUrl: "smtp://h" }), "BAD_REQUEST", "address");
    await expectTrpcError(admin.alerts.add({ kind: "mail", name: "x", address: "ops@example.com", smtpUrl: "http://h" }), "BAD_REQUEST", "smtpUrl");
    await expectTrpcError(admin.alerts.add({ kind: "webhook", name: "", address: hookUrl }), "BAD_REQUEST", "name");
    await expectTrpcError(f.as("Operator").alerts.add({ kind: "webhook", name: "x", address: hookUrl }), "FORBIDDEN");
    await expectTrpcError(f.as("Viewer").alerts.targets(), "FORBIDDEN");
    await expectTrpcError(admin.alerts.remove({ id: "nope" }), "NOT_FOUND");
  });

  it("sends a test alert, and records a failing webhook as failed with the error", async () => {
    const admin = f.as("Administrator");
    expect(await admin.alerts.test({ id: good })).toEqual({ result: "sent", error: null });
    expect(received.at(-1)).toMatchObject({ path: "/ok", body: { test: true, health: "Critical", vmName: "Test alert" } });
    expect(await admin.alerts.test({ id: broken })).toEqual({ result: "failed", error: "the webhook answered HTTP 500 Internal Server Error" });
    const mail = (await admin.alerts.targets()).find((t) => t.kind === "mail")!;
    const failedMail = await admin.alerts.test({ id: mail.id });
    expect(failedMail.result).toBe("failed");
    expect(failedMail.error).toMatch(/ECONNREFUSED|connect/i);
    await expectTrpcError(f.as("Operator").alerts.test({ id: good }), "FORBIDDEN");
    await admin.alerts.remove({ id: mail.id });
    received.length = 0;
  });

  it("alerts Critical when the Replica server goes away, once, and Normal when it is back", async () => {
    await f.pair.replica.kill();
    await waitFor("a Critical alert for sql-01 on hv01", async () => received.some((r) => r.body.health === "Critical"), 60_000, 50);
    const critical = received.find((r) => r.body.health === "Critical")!;
    expect(critical.body).toMatchObject({ kind: "replication-health", vmId, vmName: "sql-01", hostName: "hv01.lab.test", mode: "Primary", state: "Error", test: false });
    expect((critical.body.reasons as string[])[0]).toMatch(/cannot send replication data/);
    // Still Critical over several more failed cycles: no second alert.
    await new Promise((r) => setTimeout(r, 6000));
    await f.alerter.idle();
    expect(received.filter((r) => r.path === "/ok").length).toBe(1);
    // A console that restarts (a new Alerter) remembers from the deliveries that it alerted.
    const restarted = new Alerter(f.db);
    restarted.observe(await f.as("Viewer").vms.get({ hostId: hv01, vmId }));
    await restarted.idle();
    expect(received.filter((r) => r.path === "/ok").length).toBe(1);
    const failed = await f.db.alertDelivery.findFirst({ where: { vmId, target: { name: "Broken webhook" } } });
    expect(failed).toMatchObject({ health: "Critical", result: "failed", error: "the webhook answered HTTP 500 Internal Server Error", hostName: "hv01.lab.test" });
    const events = await f.as("Viewer").events.list({ hostId: hv01, vmId });
    expect(events.map((e) => e.message)).toEqual(expect.arrayContaining([
      "Alert sent to Ops webhook (webhook): replication health of 'sql-01' is Critical.",
      "Alert to Broken webhook (webhook) failed (replication health of 'sql-01' is Critical): the webhook answered HTTP 500 Internal Server Error",
    ]));
    expect((await f.as("Viewer").events.list({ hostId: hv01, severity: ["info"] })).some((e) => e.kind === "console.alert")).toBe(false);

    await f.pair.replica.start();
    // The failed cycles count against the monitoring interval: Reset Statistics, as an administrator would.
    await waitFor("replicating again", async () => (await f.as("Viewer").vms.get({ hostId: hv01, vmId })).replication?.state === "Replicating", 60_000);
    await f.as("Operator").health.reset({ hostId: hv01, vmId });
    await waitFor("a Normal alert", async () => received.some((r) => r.body.health === "Normal"), 30_000, 50);
    expect(received.filter((r) => r.path === "/ok").map((r) => r.body.health)).toEqual(["Critical", "Normal"]);
  });

  it("alerts when replication is paused on the Replica server, and when it resumes", async () => {
    received.length = 0;
    await f.pair.replica.ok("POST", `/api/v1/vms/${vmId}/replication/pause`);
    expect((await f.pair.replica.ok<{ state: string }[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]?.state).toBe("Suspended");
    const alert = await waitFor("Critical for the replica side", async () => received.find((r) => r.path === "/ok" && r.body.hostName === "hv02.lab.test" && r.body.health === "Critical"), 30_000, 50);
    expect(alert.body.reasons).toContain("Replication is paused on the Replica server.");
    expect((await f.as("Viewer").events.list({ hostId: hv02, vmId })).some((e) => e.kind === "console.alert" && e.severity === "warning")).toBe(true);
    await f.pair.replica.ok("POST", `/api/v1/vms/${vmId}/replication/resume`);
    await f.as("Operator").health.reset({ hostId: hv01, vmId });
    await f.as("Operator").health.reset({ hostId: hv02, vmId });
    await waitFor("Normal for the replica side", async () => received.find((r) => r.path === "/ok" && r.body.hostName === "hv02.lab.test" && r.body.health === "Normal"), 30_000, 50);
  });
});
