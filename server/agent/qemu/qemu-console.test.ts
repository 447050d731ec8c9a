/**
 * The VM's screen over the management API: a websocket bridged to the VNC server of the VM's
 * QEMU process, and its refusals (token, unknown VM, VM not running, lab host).
 */
import { join } from "node:path";
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { defineAgent, MGMT_TOKEN, REPL_TOKEN, tempDir, type AgentProcess, type VmView } from "../testing/harness.js";
import { killQemuUnder } from "../testing/qemu.js";

const MiB = 1024 * 1024;

function consoleUrl(agent: AgentProcess, vmId: string): string {
  return `ws://127.0.0.1:${agent.ports.management}/api/v1/vms/${vmId}/console`;
}

/** Opens the VM's screen; resolves with the socket, or rejects with the agent's HTTP refusal. */
function open(url: string, token: string | null = MGMT_TOKEN): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    // Paused at once: the VNC banner may come in the same packet as the upgrade's answer and
    // would be emitted before the caller's listener exists (reader() resumes).
    ws.once("open", () => {
      ws.pause();
      resolve(ws);
    });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => reject(Object.assign(new Error(body), { status: res.statusCode, body: JSON.parse(body) as { error: { code: string; message: string } } })));
    });
    ws.once("error", reject);
  });
}

/** Reads exactly `n` more bytes from the websocket's binary frames. */
function reader(ws: WebSocket): (n: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0);
  let want: { n: number; resolve: (b: Buffer) => void } | undefined;
  const pump = () => {
    if (want && buf.length >= want.n) {
      const out = buf.subarray(0, want.n);
      buf = buf.subarray(want.n);
      const w = want;
      want = undefined;
      w.resolve(out);
    }
  };
  ws.on("message", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    pump();
  });
  ws.resume();
  return (n) => new Promise((resolve) => ((want = { n, resolve }), pump()));
}

describe("QEMU hypervisor: the VM's screen (VNC over a websocket)", () => {
  let dir: string;
  let qemu: AgentProcess;
  let lab: AgentProcess;
  beforeAll(async () => {
    dir = await tempDir();
    qemu = await defineAgent({ hostName: "hv01.lab.test", dataDir: join(dir, "hv01"), hypervisor: "qemu", replicationToken: REPL_TOKEN });
    lab = await defineAgent({ hostName: "hv02.lab.test", dataDir: join(dir, "hv02"), replicationToken: REPL_TOKEN });
    await Promise.all([qemu.start(), lab.start()]);
  });
  afterAll(async () => {
    await Promise.all([qemu?.kill(), lab?.kill()]);
    await killQemuUnder(dir);
    await rm(dir, { recursive: true, force: true });
  });

  it("bridges the running VM's VNC server: RFB banner, handshake, and a framebuffer size", async () => {
    const vm = await qemu.ok<VmView>("POST", "/api/v1/vms", { name: "screen-01", memoryMiB: 128, disks: [{ sizeBytes: 16 * MiB }] });
    await qemu.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });

    const ws = await open(consoleUrl(qemu, vm.id));
    const read = reader(ws);
    expect((await read(12)).toString()).toBe("RFB 003.008\n");
    ws.send(Buffer.from("RFB 003.008\n"));
    const count = (await read(1))[0]!;
    const types = [...(await read(count))];
    expect(types).toContain(1); // None: the socket is reachable only through the agent
    ws.send(Buffer.from([1]));
    expect((await read(4)).readUInt32BE(0)).toBe(0); // SecurityResult OK
    ws.send(Buffer.from([1])); // ClientInit, shared
    const init = await read(24);
    expect(init.readUInt16BE(0)).toBeGreaterThan(0);
    expect(init.readUInt16BE(2)).toBeGreaterThan(0);

    // A second viewer shares the screen.
    const second = await open(consoleUrl(qemu, vm.id));
    expect((await reader(second)(12)).toString()).toBe("RFB 003.008\n");
    second.close();

    // Turning the VM off closes the screen, with the reason.
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once("close", (code, reason) => r({ code, reason: reason.toString() })));
    await qemu.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "turn-off" });
    expect(await closed).toEqual({ code: 1000, reason: expect.stringMatching(/virtual machine stopped/) });
  });

  it("refuses without the token, for an unknown VM, a VM that is not running, and on a lab host", async () => {
    const vm = await qemu.ok<VmView>("POST", "/api/v1/vms", { name: "screen-02", memoryMiB: 128, disks: [{ sizeBytes: 16 * MiB }] });
    await expect(open(consoleUrl(qemu, vm.id), null)).rejects.toMatchObject({ status: 401, body: { error: { code: "UNAUTHENTICATED" } } });
    await expect(open(consoleUrl(qemu, vm.id), "wrong")).rejects.toMatchObject({ status: 401 });
    await expect(open(consoleUrl(qemu, "00000000-0000-4000-8000-000000000000"))).rejects.toMatchObject({ status: 404 });
    await expect(open(consoleUrl(qemu, vm.id))).rejects.toMatchObject({ status: 409, body: { error: { message: expect.stringMatching(/is Off.*start it/) } } });

    const labVm = await lab.ok<VmView>("POST", "/api/v1/vms", { name: "lab-01", memoryMiB: 128, disks: [{ sizeBytes: 16 * MiB }] });
    await lab.ok("POST", `/api/v1/vms/${labVm.id}/power`, { action: "start" });
    await expect(open(consoleUrl(lab, labVm.id))).rejects.toMatchObject({ status: 409, body: { error: { message: expect.stringMatching(/lab hypervisor.*"qemu"/) } } });
    await expect(open(consoleUrl(lab, "00000000-0000-4000-8000-000000000000"))).rejects.toMatchObject({ status: 404 });

    // Plain HTTP requests to the same path are not upgrades: the ordinary 404 of no route.
    expect((await qemu.api("GET", `/api/v1/vms/${vm.id}/console`)).status).toBe(404);
  });
});
