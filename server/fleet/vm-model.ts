/**
 * The console's picture of a VM: the database row made from an agent's answer, and the
 * object the browser receives (over tRPC and socket.io alike).
 */
import { Prisma } from "../console/db/client.js";
import type { AgentRelationship, AgentVm } from "./agent-schemas.js";
import { replicationHealth } from "./health.js";
import type { ReplicationHealth, ReplicationMode, ReplicationState, VmState } from "../shared/replication.js";

export interface ReplicationSummary {
  mode: Extract<ReplicationMode, "Primary" | "Replica">;
  state: ReplicationState;
  health: ReplicationHealth;
  reasons: string[];
  primaryServer: string;
  replicaServer: string;
  frequencySeconds: number;
  lastSyncAt: string | null;
  reason: string | null;
  stats: AgentRelationship["stats"];
  /** Replica: the test failover VM running from this replica, if any. */
  testFailover: { testVmId: string; pointAt: string | null; startedAt: string } | null;
  /** Replica: an unplanned failover in progress (not yet completed or cancelled). */
  failover: { pointAt: string | null; startedAt: string; completing: boolean } | null;
  /** Waiting for Import Initial Replica (external media), on either side. */
  awaitingImport: boolean;
}

export interface VmView {
  hostId: string;
  vmId: string;
  name: string;
  state: VmState;
  cpus: number;
  memoryMiB: number;
  assignedMemoryMiB: number;
  /** Share of its virtual processors the VM uses now (running VMs), 0-100; else null. */
  cpuUsagePercent: number | null;
  /** Start of the current Running/Paused period (uptime counts from it), else null. */
  upSince: string | null;
  isReplica: boolean;
  /** A test failover VM ("<name> - Test"): the replica VM it runs from. */
  testOf: { vmId: string; pointAt: string | null } | null;
  disks: { index: number; sizeBytes: number }[];
  workload: { pattern: string; rateMiBps: number };
  networkConnected: boolean;
  createdAt: string;
  replication: ReplicationSummary | null;
  updatedAt: string;
}

/** Columns of the Vm table, from an agent's VM object read at `now`. */
export function vmRow(hostId: string, hostName: string, vm: AgentVm, now = new Date()) {
  const rel = vm.replication[0];
  const verdict = rel ? replicationHealth(rel, now.getTime()) : null;
  const up = vm.state === "Running" || vm.state === "Paused";
  return {
    hostId,
    vmId: vm.id,
    name: vm.name,
    state: vm.state,
    cpus: vm.cpus,
    memoryMiB: vm.memoryMiB,
    assignedMemoryMiB: vm.assignedMemoryMiB,
    upSince: up ? new Date(now.getTime() - vm.uptimeSeconds * 1000) : null,
    isReplica: vm.isReplica,
    testOf: vm.testOf ? (vm.testOf as Prisma.InputJsonObject) : Prisma.DbNull,
    disks: vm.disks,
    workload: vm.workload,
    networkConnected: vm.networkConnected,
    vmCreatedAt: new Date(vm.createdAt),
    replicationMode: rel ? (rel.role === "primary" ? "Primary" : "Replica") : null,
    replicationState: rel?.state ?? null,
    replicationHealth: verdict?.health ?? null,
    healthReasons: verdict?.reasons ?? [],
    relationship: rel ? ({ ...rel, hostName } as Prisma.InputJsonObject) : Prisma.DbNull,
  } satisfies Prisma.VmUncheckedCreateInput;
}

interface StoredVm {
  hostId: string;
  vmId: string;
  name: string;
  state: string;
  cpus: number;
  memoryMiB: number;
  assignedMemoryMiB: number;
  upSince: Date | null;
  isReplica: boolean;
  testOf: unknown;
  disks: unknown;
  workload: unknown;
  networkConnected: boolean;
  vmCreatedAt: Date;
  replicationMode: string | null;
  replicationState: string | null;
  replicationHealth: string | null;
  healthReasons: unknown;
  relationship: unknown;
  updatedAt: Date;
}

export function vmView(row: StoredVm, cpuUsagePercent: number | null = null): VmView {
  const rel = row.relationship as (AgentRelationship & { hostName: string }) | null;
  return {
    hostId: row.hostId,
    vmId: row.vmId,
    name: row.name,
    state: row.state as VmState,
    cpus: row.cpus,
    memoryMiB: row.memoryMiB,
    assignedMemoryMiB: row.assignedMemoryMiB,
    cpuUsagePercent: row.state === "Running" ? cpuUsagePercent : null,
    upSince: row.upSince?.toISOString() ?? null,
    isReplica: row.isReplica,
    testOf: (row.testOf as VmView["testOf"]) ?? null,
    disks: row.disks as VmView["disks"],
    workload: row.workload as VmView["workload"],
    networkConnected: row.networkConnected,
    createdAt: row.vmCreatedAt.toISOString(),
    replication: rel
      ? {
          mode: rel.role === "primary" ? "Primary" : "Replica",
          state: rel.state,
          health: (row.replicationHealth ?? "Normal") as ReplicationHealth,
          reasons: (row.healthReasons as string[] | null) ?? [],
          primaryServer: rel.role === "primary" ? rel.hostName : rel.primaryServer,
          replicaServer: rel.role === "primary" ? rel.replicaServer : rel.hostName,
          frequencySeconds: rel.frequencySeconds,
          lastSyncAt: rel.lastSyncAt,
          reason: rel.reason,
          stats: rel.stats,
          testFailover: (rel.role === "replica" && rel.testFailover) || null,
          failover: (rel.role === "replica" && rel.failover) || null,
          awaitingImport: !!rel.awaitingImport,
        }
      : null,
    updatedAt: row.updatedAt.toISOString(),
  };
}
