/**
 * The replication calls of an agent's management API that the console's replication screens
 * make (docs/agent-api.md): test connection, enable, settings, pause/resume, resynchronize, import, remove and
 * the wizard's estimates. Answers are parsed; refusals arrive as AgentCallError.
 */
import { z } from "zod";
import type { EnableReplicationBody, TestConnectionBody, UpdateReplicationBody } from "../shared/agent-api.js";
import { ResyncPolicy } from "../shared/agent-api.js";
import { AgentRelationship } from "./agent-schemas.js";
import type { AgentClient } from "./agent-client.js";

/** Enabling with external media exports the disks before the agent answers; import copies them. */
const LONG_CALL_MS = 30 * 60_000;

const vmPath = (vmId: string) => `/vms/${encodeURIComponent(vmId)}/replication`;

export const HistoryEstimate = z.object({
  recoveryHistory: z.number(),
  perPointBytes: z.number(),
  totalBytes: z.number(),
  churnBytesPerHour: z.number(),
  basis: z.string(),
  measuredSeconds: z.number(),
  diskBytes: z.number(),
});
export type HistoryEstimate = z.infer<typeof HistoryEstimate>;

/** What Replication Settings edits, as the primary's record carries it. */
export const PrimarySettings = z.object({
  role: z.literal("primary"),
  state: z.string(),
  replicaServer: z.string(),
  replicaPort: z.number(),
  authMode: z.enum(["https", "http"]),
  compression: z.boolean(),
  frequencySeconds: z.number(),
  recoveryHistory: z.number().default(0),
  appConsistentFrequencyHours: z.number().nullable().default(null),
  bandwidthLimitMiBps: z.number().nullable().default(null),
  resyncPolicy: ResyncPolicy.default({ mode: "manual" }),
  resyncAt: z.string().nullable().default(null),
  initialStartAt: z.string().nullable().default(null),
  disks: z.array(z.object({ index: z.number(), sizeBytes: z.number() })),
});
export type PrimarySettings = z.infer<typeof PrimarySettings>;

/** Test Replication Connection's answer: each check, and the first failure with the field to fix. */
export const ConnectionTest = z.object({
  ok: z.boolean(),
  replicaServer: z.string(),
  replicaPort: z.number(),
  authMode: z.enum(["https", "http"]),
  checks: z.array(z.object({ name: z.string(), status: z.enum(["passed", "failed", "skipped"]), message: z.string() })),
  failure: z.object({ check: z.string(), field: z.enum(["replicaServer", "replicaPort", "authMode"]), code: z.string(), message: z.string() }).nullable(),
  trustGroup: z.string().nullable(),
  durationMs: z.number(),
});
export type ConnectionTest = z.infer<typeof ConnectionTest>;

export const replicationCalls = (client: AgentClient) => ({
  testConnection: (body: TestConnectionBody) => client.call(ConnectionTest, "POST", "/replication/test-connection", body),
  relationships: (vmId: string) => client.call(z.array(z.object({ role: z.string() }).passthrough()), "GET", vmPath(vmId)),
  enable: (vmId: string, body: z.input<typeof EnableReplicationBody>) => client.call(AgentRelationship, "POST", vmPath(vmId), body, LONG_CALL_MS),
  update: (vmId: string, patch: UpdateReplicationBody) => client.call(PrimarySettings, "PATCH", vmPath(vmId), patch),
  remove: (vmId: string) => client.call(null, "DELETE", vmPath(vmId)),
  pause: (vmId: string) => client.call(AgentRelationship, "POST", `${vmPath(vmId)}/pause`),
  resume: (vmId: string) => client.call(AgentRelationship, "POST", `${vmPath(vmId)}/resume`),
  /** Runs the initial copy (or a cycle) and answers when it is over: can take long. */
  replicateNow: (vmId: string) => client.call(z.object({ seq: z.number(), ok: z.boolean(), error: z.string().optional() }).passthrough(), "POST", `${vmPath(vmId)}/replicate-now`, undefined, LONG_CALL_MS),
  resynchronize: (vmId: string, at?: string) => client.call(AgentRelationship, "POST", `${vmPath(vmId)}/resynchronize`, at ? { at } : {}),
  importInitial: (vmId: string, folder: string) => client.call(AgentRelationship, "POST", `${vmPath(vmId)}/import`, { folder }, LONG_CALL_MS),
  historyEstimate: (vmId: string, recoveryHistory: number) => client.call(HistoryEstimate, "GET", `${vmPath(vmId)}/history-estimate?recoveryHistory=${recoveryHistory}`),
});
