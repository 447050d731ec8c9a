/**
 * The VM's screen: `GET /api/v1/vms/:vmId/console` upgraded to a websocket whose binary frames
 * are the bytes of the VNC server of the VM's QEMU process (`vnc.sock`), both ways. Upgrades
 * bypass Fastify's routing, so authentication and refusals are done here, as plain HTTP answers.
 */
import type { IncomingMessage, Server } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { FastifyInstance } from "fastify";
import { WebSocketServer, type WebSocket } from "ws";
import type { LabHypervisor } from "../hypervisor/lab/lab-hypervisor.js";
import { QemuHypervisor } from "../hypervisor/qemu/qemu-hypervisor.js";
import { AgentError, conflict, notFound } from "../errors.js";
import { checkManagementAuth } from "./management-auth.js";

const PATH = /^\/api\/v1\/vms\/([^/?]+)\/console(?:\?.*)?$/;
/** Stop reading the VNC server while this much is waiting to go to a slow browser. */
const HIGH_WATER = 4 * 1024 * 1024;

interface ConsoleContext {
  token?: string;
  hypervisor: LabHypervisor;
}

function refuse(socket: Duplex, err: AgentError): void {
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  socket.end(
    `HTTP/1.1 ${err.status} ${err.code}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function vncSocketFor(req: IncomingMessage, ctx: ConsoleContext): string {
  checkManagementAuth(req, ctx.token);
  if (req.headers.upgrade?.toLowerCase() !== "websocket" || !req.headers["sec-websocket-key"]) {
    throw new AgentError(400, "BAD_REQUEST", "only websocket upgrades are served here: send 'Upgrade: websocket' with a Sec-WebSocket-Key");
  }
  const vmId = decodeURIComponent(PATH.exec(req.url ?? "")?.[1] ?? "");
  if (!vmId) throw notFound(`no websocket at ${req.url?.split("?")[0]}; the VM's screen is GET /api/v1/vms/<vmId>/console (see docs/agent-api.md)`);
  if (!(ctx.hypervisor instanceof QemuHypervisor)) {
    ctx.hypervisor.get(vmId); // 404 first for a VM that does not exist
    throw conflict(`this host runs the lab hypervisor, whose VMs have no screen; Connect works for VMs of hosts with "hypervisor": "qemu"`);
  }
  return ctx.hypervisor.vncSocket(vmId);
}

function openVnc(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => resolve(s));
    s.once("error", (err) => reject(new AgentError(503, "UNAVAILABLE", `the VM's VNC server (${path}) does not answer (${(err as NodeJS.ErrnoException).code ?? err.message}); turn the VM off and start it again`)));
  });
}

function bridge(ws: WebSocket, vnc: Socket): void {
  vnc.on("data", (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, () => {
      if (vnc.isPaused() && ws.bufferedAmount < HIGH_WATER / 4) vnc.resume();
    });
    if (ws.bufferedAmount > HIGH_WATER) vnc.pause();
  });
  ws.on("message", (data: Buffer) => vnc.write(data));
  vnc.on("close", () => ws.close(1000, "the VM's screen closed: the virtual machine stopped"));
  vnc.on("error", () => undefined); // followed by close
  ws.on("close", () => vnc.destroy());
  ws.on("error", () => vnc.destroy());
}

export function attachVmConsole(app: FastifyInstance, ctx: ConsoleContext): void {
  const wss = new WebSocketServer({ noServer: true });
  const server = app.server as Server;
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => undefined);
    void (async () => {
      let vnc: Socket | undefined;
      try {
        vnc = await openVnc(vncSocketFor(req, ctx));
      } catch (err) {
        return refuse(socket, err instanceof AgentError ? err : new AgentError(500, "INTERNAL", "the agent failed to open the VM's screen; see its log"));
      }
      const opened = vnc;
      wss.handleUpgrade(req, socket, head, (ws) => bridge(ws, opened));
    })();
  });
  // Open screens would otherwise keep the listener from closing.
  app.addHook("preClose", async () => {
    for (const ws of wss.clients) ws.terminate();
  });
}
