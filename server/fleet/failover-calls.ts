/**
 * The agents' failover endpoints (docs/agent-api.md, "Failover"), as the console calls them.
 * The agents do the work; the console only chooses the host and passes the options on.
 */
import { z } from "zod";
import type { AgentClient } from "./agent-client.js";
import { AgentRelationship, AgentVm } from "./agent-schemas.js";

export const FailoverStep = z.object({ step: z.string(), ok: z.boolean(), detail: z.string() });
export type FailoverStep = z.infer<typeof FailoverStep>;
const Steps = z.object({ steps: z.array(FailoverStep) });

export const RecoveryPoint = z.object({
  id: z.string(),
  kind: z.enum(["latest", "standard", "application-consistent"]),
  at: z.string().nullable(),
  seq: z.number(),
  sizeBytes: z.number(),
});
export type RecoveryPoint = z.infer<typeof RecoveryPoint>;

const DataLoss = z.object({ pointAt: z.string().nullable(), lastReplicatedAt: z.string().nullable(), seconds: z.number() });

const vmPath = (vmId: string) => `/vms/${encodeURIComponent(vmId)}`;

export const failoverCalls = {
  relationships: (c: AgentClient, vmId: string) => c.call(z.array(AgentRelationship), "GET", `${vmPath(vmId)}/replication`),
  vm: (c: AgentClient, vmId: string) => c.call(AgentVm, "GET", vmPath(vmId)),
  recoveryPoints: (c: AgentClient, vmId: string) => c.call(z.array(RecoveryPoint), "GET", `/vms/${encodeURIComponent(vmId)}/recovery-points`),
  plannedChecks: (c: AgentClient, vmId: string) => c.call(Steps, "GET", `${vmPath(vmId)}/replication/planned-failover`),
  prepare: (c: AgentClient, vmId: string) => c.call(Steps, "POST", `${vmPath(vmId)}/replication/planned-failover/prepare`),
  cancelPrepared: (c: AgentClient, vmId: string) => c.call(null, "POST", `${vmPath(vmId)}/replication/planned-failover/cancel`),
  /** On the Replica server, after prepare: the failover step (and the reverse, when asked). */
  plannedFailOver: (c: AgentClient, vmId: string, opts: { reverse: boolean; start: boolean }) =>
    c.call(Steps, "POST", `${vmPath(vmId)}/replication/planned-failover`, opts),
  testFailover: (c: AgentClient, vmId: string, body: { pointId: string; network: string | null }) => c.call(AgentVm, "POST", `${vmPath(vmId)}/replication/test-failover`, body),
  stopTestFailover: (c: AgentClient, vmId: string) => c.call(null, "DELETE", `${vmPath(vmId)}/replication/test-failover`),
  failOver: (c: AgentClient, vmId: string, body: { pointId: string; start: boolean }) =>
    c.call(Steps.extend({ dataLoss: DataLoss }), "POST", `${vmPath(vmId)}/replication/failover`, body),
  cancelFailover: (c: AgentClient, vmId: string) => c.call(null, "POST", `${vmPath(vmId)}/replication/failover/cancel`),
  completeFailover: (c: AgentClient, vmId: string) => c.call(null, "POST", `${vmPath(vmId)}/replication/failover/complete`),
  reverse: (c: AgentClient, vmId: string, body: { replicaPort?: number; authMode?: "https" | "http" }) => c.call(null, "POST", `${vmPath(vmId)}/replication/reverse`, body),
  updateReplication: (c: AgentClient, vmId: string, body: Record<string, unknown>) => c.call(null, "PATCH", `${vmPath(vmId)}/replication`, body),
  replicateNow: (c: AgentClient, vmId: string) =>
    c.call(z.object({ seq: z.number(), ok: z.boolean(), error: z.string().optional() }), "POST", `${vmPath(vmId)}/replication/replicate-now`),
  power: (c: AgentClient, vmId: string, action: "start" | "turn-off") => c.call(AgentVm, "POST", `${vmPath(vmId)}/power`, { action }),
};
