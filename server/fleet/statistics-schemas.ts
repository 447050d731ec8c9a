/**
 * View Replication Health as an agent answers it (docs/agent-api.md, "GET …/statistics" and
 * "…/cycles"), parsed rather than trusted.
 */
import { z } from "zod";
import { ReplicationHealth } from "../shared/replication.js";

export const AgentStatistics = z.object({
  vmId: z.string(),
  vmName: z.string(),
  mode: z.enum(["Primary", "Replica"]),
  state: z.string(),
  health: ReplicationHealth,
  healthReasons: z.array(z.string()),
  primaryServer: z.string(),
  replicaServer: z.string(),
  fromTime: z.string(),
  toTime: z.string(),
  averageSizeBytes: z.number(),
  maximumSizeBytes: z.number(),
  averageLatencyMs: z.number(),
  errorsEncountered: z.number(),
  successfulCycles: z.number(),
  missedCycles: z.number(),
  monitoring: z.object({ from: z.string(), to: z.string(), expectedCycles: z.number(), successfulCycles: z.number() }),
  pendingBytes: z.number().nullable(),
  lastSynchronizedAt: z.string().nullable(),
  lastTestFailoverAt: z.string().nullable(),
  testFailoverRunning: z.boolean().nullable(),
  lastError: z.string().nullable(),
  frequencySeconds: z.number(),
});
export type AgentStatistics = z.infer<typeof AgentStatistics>;

export const AgentCycle = z.object({
  seq: z.number().int(),
  /** "acknowledged"/"failed" on the primary, "applied"/"rejected" on the replica. */
  status: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  changedBytes: z.number(),
  wireBytes: z.number(),
  error: z.string().nullable(),
});
export type AgentCycle = z.infer<typeof AgentCycle>;
