/**
 * View Replication Health's figures (statistics since the last reset, with health) and the
 * storage estimate of a recovery history, from a relationship's record and cycle history.
 */
import type { ReplicationHealth } from "../../shared/replication.js";
import type { LabVm } from "../hypervisor/lab/lab-vm.js";
import type { CycleRow, RelationshipRecord } from "../state/relationships.js";
import { nowIso } from "../util/clock.js";
import type { HealthReport } from "./health.js";
import type { PrimaryReplication } from "./primary.js";

export interface HistoryEstimate {
  recoveryHistory: number;
  /** What one hourly point may take (its undo log), and all of them together, in bytes. */
  perPointBytes: number;
  totalBytes: number;
  churnBytesPerHour: number;
  basis: string;
  measuredSeconds: number;
  diskBytes: number;
}

export interface ReplicationStatistics {
  vmId: string;
  vmName: string;
  mode: "Primary" | "Replica";
  state: string;
  health: ReplicationHealth;
  healthReasons: string[];
  primaryServer: string;
  replicaServer: string;
  fromTime: string;
  toTime: string;
  averageSizeBytes: number;
  maximumSizeBytes: number;
  averageLatencyMs: number;
  errorsEncountered: number;
  successfulCycles: number;
  missedCycles: number;
  monitoring: { from: string; to: string; expectedCycles: number; successfulCycles: number };
  pendingBytes: number | null;
  lastSynchronizedAt: string | null;
  lastTestFailoverAt: string | null;
  testFailoverRunning: boolean | null;
  lastError: string | null;
  frequencySeconds: number;
  /** Primary: bytes put on the wire since the agent started, cycles in flight included. */
  sentBytes: number | null;
  /** Primary: the per-VM and per-host limits replication obeys, MiB/s (null: unlimited). */
  bandwidthLimitMiBps: number | null;
  hostBandwidthLimitMiBps: number | null;
}

/** The statistics of one relationship; `primary` is its live side on this host, when it is the primary. */
export function statisticsOf(r: RelationshipRecord, h: HealthReport, host: { hostName: string; primary?: PrimaryReplication; hostLimitMiBps: number | null }): ReplicationStatistics {
  const s = r.stats;
  const primary = host.primary;
  return {
    vmId: r.vmId,
    vmName: r.vmName,
    mode: r.role === "primary" ? "Primary" : "Replica",
    state: r.state,
    health: h.health,
    healthReasons: h.reasons,
    primaryServer: r.role === "primary" ? host.hostName : r.primaryServer,
    replicaServer: r.role === "primary" ? r.replicaServer : host.hostName,
    fromTime: s.since,
    toTime: nowIso(),
    averageSizeBytes: s.successfulCycles ? Math.round(s.wireBytes / s.successfulCycles) : 0,
    maximumSizeBytes: s.maxCycleBytes,
    averageLatencyMs: s.successfulCycles ? Math.round(s.totalLatencyMs / s.successfulCycles) : 0,
    errorsEncountered: s.failedCycles,
    successfulCycles: s.successfulCycles,
    missedCycles: h.missedCycles,
    monitoring: { from: h.from, to: h.to, expectedCycles: h.expectedCycles, successfulCycles: h.successfulCycles },
    pendingBytes: primary ? primary.vm.pendingBytes() : null,
    lastSynchronizedAt: r.lastSyncAt,
    lastTestFailoverAt: r.role === "replica" ? (r.lastTestFailoverAt ?? null) : null,
    testFailoverRunning: r.role === "replica" ? Boolean(r.testFailover) : null,
    lastError: s.lastError,
    frequencySeconds: r.frequencySeconds,
    sentBytes: primary ? primary.sentBytes : null,
    bandwidthLimitMiBps: r.role === "primary" ? (r.bandwidthLimitMiBps ?? null) : null,
    hostBandwidthLimitMiBps: r.role === "primary" ? host.hostLimitMiBps : null,
  };
}

/**
 * The storage a recovery history needs on the Replica server, from the measured churn: each
 * hourly point keeps at most an hour's changed bytes (the first before-image of each block).
 * Measured from the last cycles (`cycles`, newest first) when replicated, else from the guest's
 * writes since the agent started; both are upper bounds (a block written twice counts twice).
 */
export function estimateHistory(vm: LabVm, cycles: CycleRow[], recoveryHistory: number): HistoryEstimate {
  const diskBytes = vm.config.disks.reduce((n, d) => n + d.sizeBytes, 0);
  let perHour: number;
  let basis: string;
  let measuredSeconds: number;
  const rows = cycles.filter((c) => c.status === "acknowledged" && c.seq > 0);
  if (rows.length >= 2) {
    const from = Date.parse(rows.at(-1)!.startedAt);
    const to = Date.parse(rows[0]!.finishedAt ?? rows[0]!.startedAt);
    measuredSeconds = Math.max(1, (to - from) / 1000);
    perHour = (rows.reduce((n, c) => n + c.changedBytes, 0) / measuredSeconds) * 3600;
    basis = `changed bytes of the last ${rows.length} replication cycles`;
  } else {
    measuredSeconds = Math.max(1, (Date.now() - vm.churn.since) / 1000);
    perHour = (vm.churn.bytes / measuredSeconds) * 3600;
    basis = "the guest's writes since the host agent started";
  }
  const perPointBytes = Math.round(Math.min(perHour, diskBytes));
  return { recoveryHistory, perPointBytes, totalBytes: perPointBytes * recoveryHistory, churnBytesPerHour: Math.round(perHour), basis, measuredSeconds: Math.round(measuredSeconds), diskBytes };
}
