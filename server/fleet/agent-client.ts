/**
 * The console's client of one agent's management API (/api/v1, bearer token). Answers are
 * parsed with the schemas in agent-schemas.ts; refusals become AgentCallError with the agent's
 * code, message and field issues, so the API layer can pass them on to the user.
 */
import type { z } from "zod";
import { AgentErrorBody, AgentHostInfo, AgentVm } from "./agent-schemas.js";
import { describe } from "./event-stream.js";
import { AgentCycle, AgentStatistics } from "./statistics-schemas.js";
import type { WebSocket } from "ws";
import { agentFetch, agentWebSocket, type AgentAuth } from "./transport.js";
import { ReplicaServerSettings, type CreateVmBody, type PowerAction, type WorkloadSpec } from "../shared/agent-api.js";

export class AgentCallError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 when the agent could not be reached. */
    readonly status: number,
    readonly code: string,
    readonly issues: { field: string; message: string }[] = [],
    /** The error's `details` as the agent sent them (e.g. `steps` of a refused failover). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 15_000;

export class AgentClient {
  constructor(
    readonly address: string,
    private readonly auth: AgentAuth,
  ) {}

  /**
   * The VM's screen (QEMU hosts): an open websocket carrying its VNC bytes, paused (the VNC server
   * speaks first) until the caller resumes it. See docs/agent-api.md.
   */
  openScreen(vmId: string): Promise<WebSocket> {
    const ws = agentWebSocket(`${this.address}/api/v1/vms/${encodeURIComponent(vmId)}/console`, this.auth);
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => void (settled || ((settled = true), fn()));
      ws.once("open", () => {
        ws.pause();
        settle(() => resolve(ws));
      });
      ws.once("unexpected-response", (_req, res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => {
          const body = AgentErrorBody.safeParse(safeJson(text));
          const status = res.statusCode ?? 0;
          settle(() => reject(body.success ? new AgentCallError(body.data.error.message, status, body.data.error.code) : new AgentCallError(`the agent answered HTTP ${status}`, status, "UNEXPECTED")));
          ws.terminate();
        });
      });
      ws.on("error", (err) => settle(() => reject(new AgentCallError(`cannot reach the agent at ${this.address}: ${describe(err)}`, 0, "UNREACHABLE"))));
    });
  }

  /** One call to the agent; modules of the fleet build their calls on it (replication-calls.ts). */
  async call<S extends z.ZodType>(schema: S | null, method: string, path: string, body?: unknown, timeoutMs = TIMEOUT_MS): Promise<z.infer<S>> {
    let res: Awaited<ReturnType<typeof agentFetch>>;
    try {
      res = await agentFetch(`${this.address}/api/v1${path}`, this.auth, {
        method,
        headers: body !== undefined ? { "content-type": "application/json" } : {},
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const why = (err as Error).name === "TimeoutError" ? "the agent did not answer in time" : describe(err);
      throw new AgentCallError(`cannot reach the agent at ${this.address}: ${why}`, 0, "UNREACHABLE");
    }
    const text = await res.text();
    if (!res.ok) {
      const parsed = AgentErrorBody.safeParse(safeJson(text));
      if (parsed.success) {
        const e = parsed.data.error;
        throw new AgentCallError(e.message, res.status, e.code, e.details?.issues ?? [], e.details ?? {});
      }
      throw new AgentCallError(`the agent answered ${res.status}`, res.status, "HTTP_ERROR");
    }
    if (!schema) return undefined as z.infer<S>;
    const parsed = schema.safeParse(safeJson(text));
    if (!parsed.success) throw new AgentCallError(`unexpected answer from the agent to ${method} ${path}: ${parsed.error.message}`, 502, "BAD_ANSWER");
    return parsed.data;
  }

  host() {
    return this.call(AgentHostInfo, "GET", "/host");
  }
  vms() {
    return this.call(AgentVm.array(), "GET", "/vms");
  }
  vm(vmId: string) {
    return this.call(AgentVm, "GET", `/vms/${encodeURIComponent(vmId)}`);
  }
  createVm(body: z.input<typeof CreateVmBody>) {
    return this.call(AgentVm, "POST", "/vms", body);
  }
  deleteVm(vmId: string) {
    return this.call(null, "DELETE", `/vms/${encodeURIComponent(vmId)}`);
  }
  power(vmId: string, action: PowerAction) {
    return this.call(AgentVm, "POST", `/vms/${encodeURIComponent(vmId)}/power`, { action });
  }
  setWorkload(vmId: string, workload: z.input<typeof WorkloadSpec>) {
    return this.call(AgentVm, "PUT", `/vms/${encodeURIComponent(vmId)}/workload`, workload);
  }
  /** View Replication Health: statistics, Reset Statistics, Save As (CSV), cycle history. */
  statistics(vmId: string) {
    return this.call(AgentStatistics, "GET", `/vms/${encodeURIComponent(vmId)}/replication/statistics`);
  }
  resetStatistics(vmId: string) {
    return this.call(AgentStatistics, "POST", `/vms/${encodeURIComponent(vmId)}/replication/statistics/reset`);
  }
  cycles(vmId: string, limit: number) {
    return this.call(AgentCycle.array(), "GET", `/vms/${encodeURIComponent(vmId)}/replication/cycles?limit=${limit}`);
  }
  async statisticsCsv(vmId: string): Promise<{ csv: string; filename: string }> {
    const res = await agentFetch(`${this.address}/api/v1/vms/${encodeURIComponent(vmId)}/replication/statistics.csv`, this.auth, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const csv = await res.text();
    if (!res.ok) {
      const parsed = AgentErrorBody.safeParse(safeJson(csv));
      throw new AgentCallError(parsed.success ? parsed.data.error.message : `the agent answered ${res.status}`, res.status, parsed.success ? parsed.data.error.code : "HTTP_ERROR");
    }
    const filename = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? "replication-statistics.csv";
    return { csv, filename };
  }
  replicaServer() {
    return this.call(ReplicaServerSettings, "GET", "/replica-server");
  }
  setReplicaServer(settings: ReplicaServerSettings) {
    return this.call(ReplicaServerSettings, "PUT", "/replica-server", settings);
  }
}

function safeJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}
