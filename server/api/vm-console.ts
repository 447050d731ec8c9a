/**
 * "Connect...": the VM's screen for a signed-in Operator. The browser opens a websocket at
 * /api/vm-console?hostId&vmId on the console; the console opens the agent's
 * GET /api/v1/vms/{vmId}/console with the host's credentials and passes the VNC bytes both ways.
 * Without a session the upgrade is refused (401). Every other refusal (role, input, the agent's
 * own) accepts the websocket and closes it at once with code 4000 + the HTTP status and the
 * reason, because a browser never sees the status of a refused upgrade. Every attempt is audited
 * as `vms.connect`.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { hasRole, type SessionUser } from "../console/auth/roles.js";
import { readCookie, userOfSession } from "../console/auth/sessions.js";
import { FleetError } from "../fleet/fleet.js";
import { AgentCallError } from "../fleet/agent-client.js";
import { targetOf } from "./audit.js";
import type { ConsoleServices } from "./context.js";
import { VmRef } from "./routers/health.js";

export const VM_CONSOLE_PATH = "/api/vm-console";
const ACTION = "vms.connect";
const HIGH_WATER = 4 * 1024 * 1024;

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A close reason fits in 123 bytes. */
function clip(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > 123) out = `${out.slice(0, -2)}…`;
  return out;
}

function authorize(user: SessionUser, url: string): { hostId: string; vmId: string } {
  if (!hasRole(user.role, "Operator")) throw new Refusal(403, `connecting to a VM's screen needs the Operator role; ${user.name} is ${user.role}`);
  const params = new URL(url, "http://x").searchParams;
  const input = VmRef.safeParse({ hostId: params.get("hostId") ?? "", vmId: params.get("vmId") ?? "" });
  if (!input.success) throw new Refusal(400, input.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  return input.data;
}

/** Opens the agent's end, paused until the browser's exists. */
async function openAgentScreen(services: Pick<ConsoleServices, "fleet">, hostId: string, vmId: string): Promise<WebSocket> {
  try {
    return await services.fleet.link(hostId).client.openScreen(vmId);
  } catch (err) {
    if (err instanceof FleetError) throw new Refusal(404, err.message);
    if (err instanceof AgentCallError) throw new Refusal(err.status >= 400 ? err.status : 502, err.message);
    throw err;
  }
}

function bridge(browser: WebSocket, agent: WebSocket): void {
  // A slow side stops reading from the other (a screen update can be megabytes).
  const forward = (from: WebSocket, to: WebSocket) => (data: RawData, isBinary: boolean) => {
    if (to.readyState !== to.OPEN) return;
    to.send(data, { binary: isBinary }, () => from.isPaused && to.bufferedAmount < HIGH_WATER / 4 && from.resume());
    if (to.bufferedAmount > HIGH_WATER) from.pause();
  };
  browser.on("message", forward(browser, agent));
  agent.on("message", forward(agent, browser));
  // 1005/1006 (no code, connection lost) cannot be sent: the browser is told the agent went away.
  agent.on("close", (code, reason) => browser.close(code === 1000 ? 1000 : 4502, clip(reason.toString() || "the connection to the host agent was lost")));
  browser.on("close", () => agent.close());
  browser.on("error", () => agent.terminate());
  agent.resume();
  browser.resume();
}

export function vmConsoleProxy(services: Pick<ConsoleServices, "db" | "fleet">) {
  const wss = new WebSocketServer({ noServer: true });
  const audit = async (user: SessionUser, url: string, error: string | null) => {
    const params = Object.fromEntries(new URL(url, "http://x").searchParams);
    const { hostId, vmId } = params;
    await services.db.auditEntry.create({
      data: { userId: user.id, userName: user.name, action: ACTION, target: await targetOf(services.db, { hostId, vmId }), input: { hostId, vmId }, result: error ? "failure" : "success", error },
    });
  };

  async function handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = req.url ?? "/";
    const session = await userOfSession(services.db, readCookie(req.headers.cookie));
    if (!session) {
      const body = "sign in first";
      return void socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    }
    // Accepted at once (the page shows "Connecting" while the agent is reached): socket.io
    // ends upgrades nobody answered within a second.
    wss.handleUpgrade(req, socket, head, (browser) => {
      browser.pause();
      void connect(session.user, url, browser).catch((err) => {
        console.error("console: vm-console failed", err);
        browser.terminate();
      });
    });
  }

  async function connect(user: SessionUser, url: string, browser: WebSocket): Promise<void> {
    let agent: WebSocket | undefined;
    let refusal: Refusal | undefined;
    try {
      const { hostId, vmId } = authorize(user, url);
      agent = await openAgentScreen(services, hostId, vmId);
    } catch (err) {
      refusal = err instanceof Refusal ? err : new Refusal(500, "the console failed to open the VM's screen; see its log");
      if (!(err instanceof Refusal)) console.error("console: vm-console failed", err);
    }
    await audit(user, url, refusal?.message ?? null).catch((err) => console.error("console: audit failed", err));
    if (browser.readyState !== browser.OPEN) return void agent?.terminate(); // the page left meanwhile
    if (agent) return bridge(browser, agent);
    browser.resume(); // to read the browser's answer to the close
    browser.close(4000 + refusal!.status, clip(refusal!.message));
  }

  return {
    handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      socket.on("error", () => undefined);
      handle(req, socket, head).catch((err) => {
        console.error("console: vm-console failed", err);
        socket.destroy();
      });
    },
    close(): void {
      for (const ws of wss.clients) ws.terminate();
    },
  };
}
