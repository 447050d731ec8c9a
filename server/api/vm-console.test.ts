/**
 * "Connect..." through the console: the websocket proxy at /api/vm-console on a real HTTP server,
 * real sessions, and a real QEMU host whose running VM's VNC server answers through it.
 */
import { rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { AgentProcess } from "../agent/agent-process.js";
import { freePort, makeSite, MGMT_TOKEN, tempDir } from "../agent/testing/harness.js";
import { killQemuUnder } from "../agent/testing/qemu.js";
import { loadConsoleTls } from "../fleet/transport.js";
import type { Role } from "../console/auth/roles.js";
import { createSession, SESSION_COOKIE } from "../console/auth/sessions.js";
import { startConsoleFixture, type ConsoleFixture } from "./testing/console-fixture.js";
import { vmConsoleProxy, VM_CONSOLE_PATH } from "./vm-console.js";

let f: ConsoleFixture;
let server: Server;
let proxy: ReturnType<typeof vmConsoleProxy>;
let base: string;
let hv01: string;
let vmId: string;
const cookies = {} as Record<Role, string>;
/** A QEMU host whose management API takes only the console's client certificate (mutual TLS). */
let tlsAgent: AgentProcess;
let tlsAddress: string;
let tlsDir: string;

type Outcome = { opened: true; ws: WebSocket; first: Promise<Buffer> } | { opened: false; close: { code: number; reason: string } } | { opened: false; status: number };

/** Opens the proxy as a browser would (the session cookie); says how it went. */
function connect(query: string, cookie?: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}${VM_CONSOLE_PATH}?${query}`, { headers: cookie ? { cookie } : {} });
    const first = new Promise<Buffer>((r) => ws.once("message", (d: Buffer) => r(d)));
    let opened = false;
    ws.once("open", () => {
      opened = true;
      // A refusal closes right after the handshake; an open screen sends the RFB banner first.
      const closed = new Promise<{ code: number; reason: string }>((r) => ws.once("close", (code, reason) => r({ code, reason: reason.toString() })));
      void Promise.race([first.then(() => null), closed]).then((c) => resolve(c ? { opened: false, close: c } : { opened: true, ws, first }));
    });
    ws.once("unexpected-response", (_req, res) => resolve({ opened: false, status: res.statusCode ?? 0 }));
    ws.once("error", (err) => !opened && reject(err));
  });
}

const lastAudit = () => f.db.auditEntry.findFirst({ where: { action: "vms.connect" }, orderBy: { id: "desc" } });

beforeAll(async () => {
  tlsDir = await tempDir("rm-vnc-tls-");
  const site = await makeSite(join(tlsDir, "site"));
  f = await startConsoleFixture({ hypervisor: "qemu", consoleTls: loadConsoleTls({ ...(await site.hostTls("console.lab.test")), ca: site.caFile })! });
  const port = await freePort();
  const configFile = join(tlsDir, "agent.json");
  await writeFile(configFile, JSON.stringify({ hostName: "hv05.lab.test", dataDir: join(tlsDir, "hv05"), hypervisor: "qemu", management: { port, tls: await site.hostTls("localhost") } }));
  tlsAgent = new AgentProcess({ hostName: "hv05.lab.test", configFile, managementPort: port, token: "unused-unused-unused" });
  await tlsAgent.start();
  tlsAddress = `https://localhost:${port}`;
  proxy = vmConsoleProxy({ db: f.db, fleet: f.fleet });
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req, socket, head) => proxy.handle(req, socket, head));
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const role of ["Administrator", "Operator", "Viewer"] as const) {
    cookies[role] = `${SESSION_COOKIE}=${(await createSession(f.db, f.users[role].id, 1)).token}`;
  }
  const admin = f.as("Administrator");
  hv01 = (await admin.hosts.add({ auth: "token", address: f.pair.primary.url, token: MGMT_TOKEN })).id;
  vmId = (await admin.vms.create({ hostId: hv01, name: "web-01", cpus: 1, memoryMiB: 128, disks: [{ sizeGiB: 1 }], workload: { pattern: "idle", rateMiBps: 1 } })).vmId;
});
afterAll(async () => {
  proxy?.close();
  server?.close();
  await f?.cleanup();
  await tlsAgent?.kill();
  await killQemuUnder(tlsDir);
  await rm(tlsDir, { recursive: true, force: true });
});

describe("Connect... (the VM's screen through the console)", () => {
  it("knows the host's hypervisor and accelerator, which decide whether its VMs have a screen", async () => {
    const hosts = await f.as("Viewer").hosts.list();
    expect(hosts.find((h) => h.id === hv01)).toMatchObject({ hypervisor: "qemu", accelerator: expect.stringMatching(/^(kvm|tcg)$/) });
  });

  it("refuses what it must: no session (401), a Viewer, bad input, an unknown host, a VM that is off", async () => {
    expect(await connect(`hostId=${hv01}&vmId=${vmId}`)).toEqual({ opened: false, status: 401 });
    expect(await connect(`hostId=${hv01}&vmId=${vmId}`, cookies.Viewer)).toEqual({ opened: false, close: { code: 4403, reason: expect.stringMatching(/needs the Operator role; viewer is Viewer/) } });
    expect(await lastAudit()).toMatchObject({ userName: "viewer", target: "host=hv01.lab.test vm=web-01", result: "failure", error: expect.stringMatching(/Operator role/) });
    expect(await connect(`hostId=${hv01}&vmId=nope`, cookies.Operator)).toEqual({ opened: false, close: { code: 4400, reason: expect.stringMatching(/^vmId: vmId must be a VM id/) } });
    expect(await connect(`vmId=${vmId}`, cookies.Operator)).toEqual({ opened: false, close: { code: 4400, reason: expect.stringMatching(/^hostId: hostId is required/) } });
    expect(await connect(`hostId=gone&vmId=${vmId}`, cookies.Operator)).toEqual({ opened: false, close: { code: 4404, reason: expect.stringMatching(/no such host/) } });
    expect(await connect(`hostId=${hv01}&vmId=00000000-0000-4000-8000-000000000000`, cookies.Operator)).toMatchObject({ close: { code: 4404 } });
    expect(await connect(`hostId=${hv01}&vmId=${vmId}`, cookies.Operator)).toEqual({ opened: false, close: { code: 4409, reason: expect.stringMatching(/'web-01' is Off.*start it/) } });
  });

  it("passes the running VM's VNC server to an Operator, audited, and closes with the reason when it stops", async () => {
    await f.as("Operator").vms.power({ hostId: hv01, vmId, action: "start" });
    const outcome = await connect(`hostId=${hv01}&vmId=${vmId}`, cookies.Operator);
    if (!outcome.opened) throw new Error(`not opened: ${JSON.stringify(outcome)}`);
    expect((await outcome.first).toString()).toBe("RFB 003.008\n");
    expect(await lastAudit()).toMatchObject({ userName: "operator", action: "vms.connect", target: "host=hv01.lab.test vm=web-01", result: "success", error: null });
    // The client's half of the handshake goes through to QEMU too.
    const types = new Promise<Buffer>((r) => outcome.ws.once("message", (d: Buffer) => r(d)));
    outcome.ws.send(Buffer.from("RFB 003.008\n"));
    expect([...(await types)]).toContain(1);

    const closed = new Promise<{ code: number; reason: string }>((r) => outcome.ws.once("close", (code, reason) => r({ code, reason: reason.toString() })));
    await f.as("Operator").vms.power({ hostId: hv01, vmId, action: "turn-off" });
    expect(await closed).toEqual({ code: 1000, reason: expect.stringMatching(/virtual machine stopped/) });
  });

  it("reaches a host over mutual TLS with the console's certificate", async () => {
    const admin = f.as("Administrator");
    const host = await admin.hosts.add({ auth: "certificate", address: tlsAddress });
    const vm = await admin.vms.create({ hostId: host.id, name: "tls-01", cpus: 1, memoryMiB: 128, disks: [{ sizeGiB: 1 }], workload: { pattern: "idle", rateMiBps: 1 } });
    await f.as("Operator").vms.power({ hostId: host.id, vmId: vm.vmId, action: "start" });
    const outcome = await connect(`hostId=${host.id}&vmId=${vm.vmId}`, cookies.Administrator);
    if (!outcome.opened) throw new Error(`not opened: ${JSON.stringify(outcome)}`);
    expect((await outcome.first).toString()).toBe("RFB 003.008\n");
    outcome.ws.close();
  });
});
