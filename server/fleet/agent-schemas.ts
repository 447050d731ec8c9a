/**
 * What the console reads from an agent's management API, parsed rather than trusted
 * (docs/agent-api.md, "Objects"). Unknown fields are dropped; a field the console needs that
 * is missing or malformed fails loudly at the edge instead of deep in the UI.
 */
import { z } from "zod";
import { EventSeverity, ReplicationHealth, ReplicationState, VmState } from "../shared/replication.js";

export const AgentHostInfo = z.object({
  hostName: z.string(),
  version: z.string(),
  hypervisor: z.string(),
  /** QEMU hosts: KVM, or TCG (emulation). */
  accelerator: z.enum(["kvm", "tcg"]).optional(),
  startedAt: z.string(),
  vmCount: z.number().int(),
  lastEventId: z.number().int(),
  capabilities: z.object({ https: z.boolean(), http: z.boolean() }),
});
export type AgentHostInfo = z.infer<typeof AgentHostInfo>;

/** What the console keeps of a host's hypervisor (Host.hypervisor, Host.accelerator). */
export const platformOf = (info: AgentHostInfo) => ({ hypervisor: info.hypervisor, accelerator: info.accelerator ?? null });

const Stats = z.object({
  since: z.string(),
  successfulCycles: z.number(),
  failedCycles: z.number(),
  missedCycles: z.number(),
  changedBytes: z.number(),
  wireBytes: z.number(),
  maxCycleBytes: z.number(),
  totalLatencyMs: z.number(),
  lastError: z.string().nullable(),
});

const DiskInfo = z.object({ index: z.number().int(), sizeBytes: z.number() });

const RelationshipCommon = {
  id: z.string(),
  vmId: z.string(),
  vmName: z.string(),
  state: ReplicationState,
  frequencySeconds: z.number(),
  disks: z.array(DiskInfo),
  createdAt: z.string(),
  lastSyncAt: z.string().nullable(),
  stats: Stats,
  reason: z.string().nullable(),
  /** Judged by agents from version 0.2 on (over their monitoring interval); absent before. */
  health: ReplicationHealth.optional(),
  healthReasons: z.array(z.string()).optional(),
};

export const AgentRelationship = z.discriminatedUnion("role", [
  z.object({
    ...RelationshipCommon,
    role: z.literal("primary"),
    replicaServer: z.string(),
    replicaPort: z.number(),
    authMode: z.enum(["https", "http"]),
    compression: z.boolean(),
    lastAckedSeq: z.number(),
    recoveryHistory: z.number().optional(),
    appConsistentFrequencyHours: z.number().nullable().optional(),
    bandwidthLimitMiBps: z.number().nullable().optional(),
    initialStartAt: z.string().nullable().optional(),
    resyncAt: z.string().nullable().optional(),
    /** The initial copy went to external media and waits for Import Initial Replica. */
    awaitingImport: z.object({ folder: z.string(), exportedAt: z.string() }).nullable().optional(),
  }),
  z.object({
    ...RelationshipCommon,
    role: z.literal("replica"),
    primaryServer: z.string(),
    trustGroup: z.string(),
    lastAppliedSeq: z.number(),
    recoveryHistory: z.number().optional(),
    /** A placeholder waiting for Import Initial Replica (external media). */
    awaitingImport: z.boolean().optional(),
    testFailover: z.object({ testVmId: z.string(), pointAt: z.string().nullable(), startedAt: z.string() }).nullable().optional(),
    lastTestFailoverAt: z.string().nullable().optional(),
    /** An unplanned failover in progress (the VM runs from a recovery point on overlays). */
    failover: z.object({ pointAt: z.string().nullable(), startedAt: z.string(), completing: z.boolean() }).nullable().optional(),
  }),
]);
export type AgentRelationship = z.infer<typeof AgentRelationship>;

export const AgentVm = z.object({
  id: z.string(),
  name: z.string(),
  state: VmState,
  cpus: z.number().int(),
  memoryMiB: z.number().int(),
  assignedMemoryMiB: z.number().int(),
  /** Running VMs only; agents before 0.3 do not report it. */
  cpuUsagePercent: z.number().nullable().optional(),
  uptimeSeconds: z.number(),
  disks: z.array(DiskInfo),
  workload: z.object({ pattern: z.string(), rateMiBps: z.number() }),
  networkConnected: z.boolean(),
  isReplica: z.boolean(),
  /** Set on a test failover VM ("<name> - Test"): the replica VM it was made from. */
  testOf: z.object({ vmId: z.string(), pointAt: z.string().nullable() }).nullable().optional(),
  createdAt: z.string(),
  replication: z.array(AgentRelationship),
});
export type AgentVm = z.infer<typeof AgentVm>;

/** An event stream's `metrics` message: the CPU usage of the host's running VMs. */
export const AgentMetrics = z.object({
  ts: z.string(),
  vms: z.array(z.object({ id: z.string(), cpuUsagePercent: z.number() })),
});
export type AgentMetrics = z.infer<typeof AgentMetrics>;

export const AgentEvent = z.object({
  id: z.number().int(),
  ts: z.string(),
  severity: EventSeverity,
  kind: z.string(),
  vmId: z.string().nullable(),
  relationshipId: z.string().nullable(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).nullable(),
});
export type AgentEvent = z.infer<typeof AgentEvent>;

export const AgentErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.object({ issues: z.array(z.object({ field: z.string(), message: z.string() })).optional() }).passthrough().optional(),
  }),
});
