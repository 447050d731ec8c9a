/**
 * Test Replication Connection (POST /api/v1/replication/test-connection): from a primary, the
 * Replica server's replication listener is reached with a port and authentication and asked
 * GET /replication/v1/server. Real agents on loopback: a reachable replica over both modes, a
 * wrong port (nothing there, the other mode's port, the management port), a wrong token, a
 * certificate this host does not trust, a certificate not issued to the name, a client
 * certificate the replica does not trust, and a primary the replica does not authorize.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectionTestResult } from "./replication/connection-test.js";
import { defineAgent, freePort, makeSite, REPL_TOKEN, tempDir, type AgentProcess } from "./testing/harness.js";
import { rm } from "node:fs/promises";

const resolve = Object.fromEntries(["hv01.lab.test", "hv02.lab.test", "hv03.lab.test", "hv04.lab.test", "alias.lab.test"].map((h) => [h, "127.0.0.1"]));

let dir: string;
let primary: AgentProcess;
let replica: AgentProcess;
/** Its certificate and CA come from another site, its token is another one. */
let stranger: AgentProcess;
/** Trusts the site's CA, but its own certificate comes from another one. */
let imposter: AgentProcess;

beforeAll(async () => {
  dir = await tempDir("rm-conn-");
  const site = await makeSite(join(dir, "site"));
  const other = await makeSite(join(dir, "other"), "Other CA");
  const common = { resolve };
  primary = await defineAgent({ hostName: "hv01.lab.test", dataDir: join(dir, "hv01"), tls: await site.hostTls("hv01.lab.test"), replicationToken: REPL_TOKEN, ...common });
  replica = await defineAgent({ hostName: "hv02.lab.test", dataDir: join(dir, "hv02"), tls: await site.hostTls("hv02.lab.test"), replicationToken: REPL_TOKEN, ...common });
  stranger = await defineAgent({ hostName: "hv03.lab.test", dataDir: join(dir, "hv03"), tls: await other.hostTls("hv03.lab.test"), replicationToken: "another-replication-token-000000", ...common });
  imposter = await defineAgent({ hostName: "hv04.lab.test", dataDir: join(dir, "hv04"), tls: { ...(await other.hostTls("hv04.lab.test")), ca: site.caFile }, replicationToken: REPL_TOKEN, ...common });
  await Promise.all([primary.start(), replica.start(), stranger.start(), imposter.start()]);
});

afterAll(async () => {
  await Promise.all([primary, replica, stranger, imposter].map((a) => a?.kill()));
  if (dir && !process.env.RM_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
});

const test = (from: AgentProcess, body: Record<string, unknown>) => from.api<ConnectionTestResult & { error?: { code: string; message: string; details?: { issues: { field: string }[] } } }>("POST", "/api/v1/replication/test-connection", body);

async function failed(from: AgentProcess, body: Record<string, unknown>) {
  const res = await test(from, body);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.ok).toBe(false);
  return res.body;
}

describe("Test Replication Connection", () => {
  it("passes every check against a reachable Replica server, over HTTPS and HTTP", async () => {
    const https = await test(primary, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, authMode: "https" });
    expect(https.status).toBe(200);
    expect(https.body).toMatchObject({ ok: true, failure: null, trustGroup: "DEFAULT", replicaServer: "hv02.lab.test", authMode: "https" });
    expect(https.body.checks.map((c) => [c.name, c.status])).toEqual([
      ["credentials", "passed"],
      ["connection", "passed"],
      ["certificate", "passed"],
      ["authentication", "passed"],
      ["authorization", "passed"],
    ]);
    const http = await test(primary, { replicaServer: "HV02.lab.test ", replicaPort: replica.ports.http, authMode: "http" });
    expect(http.body).toMatchObject({ ok: true, failure: null, trustGroup: "DEFAULT", replicaServer: "hv02.lab.test" });
    expect(http.body.checks.map((c) => c.name)).toEqual(["credentials", "connection", "authentication", "authorization"]);
    // Harmless: nothing was created on the Replica server.
    expect(await replica.ok("GET", "/api/v1/replication")).toEqual([]);
  });

  it("names the port when it is wrong: nothing there, the other mode's port, the management API", async () => {
    const closed = await failed(primary, { replicaServer: "hv02.lab.test", replicaPort: await freePort(), authMode: "https" });
    expect(closed.failure).toMatchObject({ check: "connection", field: "replicaPort", code: "ECONNREFUSED" });
    expect(closed.failure!.message).toMatch(/nothing listens on port \d+ of hv02.lab.test: use the HTTPS port of its Replication Configuration/);
    expect(closed.checks.map((c) => c.status)).toEqual(["passed", "failed", "skipped", "skipped", "skipped"]);

    const httpPort = await failed(primary, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.http, authMode: "https" });
    expect(httpPort.failure).toMatchObject({ check: "connection", field: "replicaPort", code: "NOT_TLS" });
    expect(httpPort.failure!.message).toMatch(/does not speak TLS \(it may be the HTTP port\): use the Replica server's HTTPS port/);

    const httpsPort = await failed(primary, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, authMode: "http" });
    expect(httpsPort.failure).toMatchObject({ check: "connection", field: "replicaPort", code: "NOT_HTTP" });
    expect(httpsPort.failure!.message).toMatch(/it may be the HTTPS port\): use the Replica server's HTTP port/);

    const management = await failed(primary, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.management, authMode: "http" });
    expect(management.failure).toMatchObject({ check: "connection", field: "replicaPort", code: "NOT_REPLICATION_PORT" });
    expect(management.failure!.message).toMatch(/is the management API of hv02.lab.test, not its replication listener/);
  });

  it("reports a wrong replication token as an authentication failure", async () => {
    const r = await failed(stranger, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.http, authMode: "http" });
    expect(r.failure).toMatchObject({ check: "authentication", field: "authMode", code: "UNAUTHENTICATED" });
    expect(r.failure!.message).toMatch(/did not accept this host's replication token: token signature from 'hv03.lab.test' does not match: the primary and the Replica server must share the same replication.token/);
    expect(r.checks.map((c) => c.status)).toEqual(["passed", "passed", "failed", "skipped"]);
  });

  it("reports a Replica server certificate this host does not trust, or one issued to another name", async () => {
    const untrusted = await failed(stranger, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, authMode: "https" });
    expect(untrusted.failure).toMatchObject({ check: "certificate", field: "authMode" });
    expect(untrusted.failure!.message).toMatch(/the certificate of hv02.lab.test:\d+ is not trusted by this host \(\w+\): issue it from a CA listed in this host's replication.tls.ca/);
    expect(untrusted.checks.map((c) => c.status)).toEqual(["passed", "passed", "failed", "skipped", "skipped"]);

    const alias = await failed(primary, { replicaServer: "alias.lab.test", replicaPort: replica.ports.https, authMode: "https" });
    expect(alias.failure).toMatchObject({ check: "certificate", field: "replicaServer", code: "ERR_TLS_CERT_ALTNAME_INVALID" });
    expect(alias.failure!.message).toMatch(/is not issued to alias.lab.test: enter the name its certificate carries/);
  });

  it("reports a client certificate the Replica server does not trust", async () => {
    const r = await failed(imposter, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, authMode: "https" });
    expect(r.failure).toMatchObject({ check: "authentication", field: "authMode", code: "UNAUTHENTICATED" });
    expect(r.failure!.message).toMatch(/did not accept this host's certificate: client certificate of 'hv04.lab.test' is not trusted by this Replica server .*issue it from a CA listed in replication.tls.ca/);
  });

  it("reports a primary the Replica server does not authorize, and one that is not a Replica server", async () => {
    const settings = await replica.ok<Record<string, unknown>>("GET", "/api/v1/replica-server");
    const entries = { mode: "entries", entries: [{ primaryServer: "*.other.test", storageLocation: join(dir, "hv02", "other"), trustGroup: "OTHER" }] };
    await replica.ok("PUT", "/api/v1/replica-server", { ...settings, authorization: entries });
    try {
      const r = await failed(primary, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, authMode: "https" });
      expect(r.failure).toMatchObject({ check: "authorization", field: "replicaServer", code: "FORBIDDEN" });
      expect(r.failure!.message).toMatch(/does not authorize this host: primary server 'hv01.lab.test' is not authorized: no authorization entry on this Replica server matches it; add an entry for it/);
      expect(r.checks.map((c) => c.status)).toEqual(["passed", "passed", "passed", "passed", "failed"]);

      await replica.ok("PUT", "/api/v1/replica-server", { ...settings, enabled: false });
      const off = await failed(primary, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.http, authMode: "http" });
      expect(off.failure?.check).toBe("authorization");
      expect(off.failure!.message).toMatch(/not enabled as a Replica server; enable it in Replication Configuration/);
    } finally {
      await replica.ok("PUT", "/api/v1/replica-server", settings);
    }
  });

  it("refuses bad input by field, and this host as its own Replica server", async () => {
    const bad = await test(primary, { replicaServer: "not a name", replicaPort: 0, authMode: "ftp" });
    expect(bad.status).toBe(400);
    expect(bad.body.error!.details!.issues.map((i) => i.field).sort()).toEqual(["body.authMode", "body.replicaPort", "body.replicaServer"]);
    const self = await test(primary, { replicaServer: "hv01.lab.test", replicaPort: primary.ports.https });
    expect(self.status).toBe(400);
    expect(self.body.error!.message).toMatch(/^replicaServer: 'hv01.lab.test' is this host/);
  });
});
