/**
 * Connect to Server with certificate trust: the agent's management API over mutual TLS only,
 * the console presenting its own certificate from the site's CA.
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentProcess } from "../../agent/agent-process.js";
import { freePort, makeSite, tempDir, waitFor } from "../../agent/testing/harness.js";
import { Fleet } from "../../fleet/fleet.js";
import { loadConsoleTls, type ConsoleTls } from "../../fleet/transport.js";
import { createCaller } from "../root.js";
import { startConsoleFixture, type ConsoleFixture } from "../testing/console-fixture.js";
import { expectTrpcError } from "../testing/expect-error.js";

let f: ConsoleFixture;
let agent: AgentProcess;
let address: string;
let strangerTls: ConsoleTls;
let dir: string;

beforeAll(async () => {
  dir = await tempDir("rm-console-tls-");
  const site = await makeSite(join(dir, "site"));
  const other = await makeSite(join(dir, "other"), "Someone Else's CA");
  const consoleFiles = await site.hostTls("console.lab.test");
  const strangerFiles = await other.hostTls("console.evil.test");
  f = await startConsoleFixture({ consoleTls: loadConsoleTls({ ...consoleFiles, ca: site.caFile })! });
  strangerTls = loadConsoleTls({ ...strangerFiles, ca: site.caFile })!;
  // The agent's management certificate names localhost, the address the console uses.
  const port = await freePort();
  const configFile = join(dir, "agent.json");
  await writeFile(configFile, JSON.stringify({ hostName: "hv05.lab.test", dataDir: join(dir, "hv05"), management: { port, tls: await site.hostTls("localhost") } }));
  agent = new AgentProcess({ hostName: "hv05.lab.test", configFile, managementPort: port, token: "unused-unused-unused" });
  await agent.start();
  address = `https://localhost:${port}`;
});
afterAll(async () => {
  await agent?.kill();
  await f?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("hosts over mutual TLS", () => {
  it("connects with the console's certificate, follows events and runs power actions", async () => {
    const admin = f.as("Administrator");
    const host = await admin.hosts.add({ auth: "certificate", address });
    expect(host.name).toBe("hv05.lab.test");
    await waitFor("connected", async () => (await admin.hosts.list()).find((h) => h.id === host.id && h.status === "connected"), 10_000);
    const vm = await admin.vms.create({ hostId: host.id, name: "tls-01", cpus: 1, memoryMiB: 512, disks: [{ sizeGiB: 1 }], workload: { pattern: "idle", rateMiBps: 1 } });
    expect(await f.as("Operator").vms.power({ hostId: host.id, vmId: vm.vmId, action: "start" })).toMatchObject({ state: "Running" });
    const events = await waitFor("events over TLS", async () => {
      const list = await admin.events.list({ hostId: host.id, vmId: vm.vmId });
      return list.some((e) => e.message.includes("to Running")) && list;
    }, 5000);
    expect(events[0]!.vmId).toBe(vm.vmId);
  });

  it("needs an https:// address, and names the field", async () => {
    await expectTrpcError(f.as("Administrator").hosts.add({ auth: "certificate", address: address.replace("https", "http") }), "BAD_REQUEST", "address");
  });

  it("says so when the console has no certificate, or one the agent does not trust", async () => {
    const bare = createCaller({ ...ctxOf(new Fleet(f.db, silent)), user: f.users.Administrator });
    const e = await expectTrpcError(bare.hosts.add({ auth: "certificate", address: `${address}/x` }), "BAD_REQUEST", "auth");
    expect(e.message).toMatch(/RM_AGENT_TLS_CERT/);
    const stranger = createCaller({ ...ctxOf(new Fleet(f.db, silent, strangerTls)), user: f.users.Administrator });
    const refused = await expectTrpcError(stranger.hosts.add({ auth: "certificate", address: `${address}/y` }), "BAD_REQUEST", "address");
    expect(refused.message).toMatch(/cannot reach|TLS|closed/);
  });
});

const silent = { hostChanged() {}, hostRemoved() {}, vmChanged() {}, vmRemoved() {}, vmMetrics() {}, events() {} };
function ctxOf(fleet: Fleet) {
  return { db: f.db, fleet, jobs: f.jobs, sessionHours: 1, user: null, sessionId: null, setCookie() {}, secure: false };
}
