/** Replication relationships as the agent persists them (one JSON record per row). */
import type { Db } from "./db.js";
import type { AuthMode, ReplicationState } from "../../shared/replication.js";
import type { CycleMarks } from "../replication/frames.js";
import { nowIso } from "../util/clock.js";
import type { ResyncProgress } from "../replication/resync.js";

export interface CycleStats {
  since: string;
  successfulCycles: number;
  failedCycles: number;
  missedCycles: number;
  changedBytes: number;
  wireBytes: number;
  maxCycleBytes: number;
  totalLatencyMs: number;
  lastError: string | null;
}

interface Common {
  id: string;
  vmId: string;
  vmName: string;
  state: ReplicationState;
  frequencySeconds: number;
  disks: { index: number; sizeBytes: number }[];
  createdAt: string;
  lastSyncAt: string | null;
  stats: CycleStats;
  /** Why the relationship needs attention (resynchronization required, errors). */
  reason: string | null;
}

export interface PrimaryRecord extends Common {
  role: "primary";
  replicaServer: string;
  replicaPort: number;
  authMode: AuthMode;
  compression: boolean;
  /** Highest cycle the replica acknowledged; -1 before the initial copy completed. */
  lastAckedSeq: number;
  /** Ask the replica where it stands before the next cycle (after a failure or restart). */
  reconcile: boolean;
  /** Additional hourly recovery points the replica keeps (0: the latest only). */
  recoveryHistory: number;
  /** What this relationship may send, MiB/s; null or absent: unlimited. */
  bandwidthLimitMiBps?: number | null;
  /** Every how many hours a point is application-consistent; null: never. */
  appConsistentFrequencyHours: number | null;
  /** When the last acknowledged cycle that made a recovery point was frozen. */
  lastPointAt: string | null;
  lastAppConsistentAt: string | null;
  /** While resynchronizing (or paused during it): how far the comparison got. */
  resync?: ResyncProgress | null;
  /** When to resynchronize by itself once resynchronization is required. */
  resyncPolicy?: ResyncPolicy;
  /** A resynchronization the user scheduled for later. */
  resyncAt?: string | null;
  /** A scheduled initial replication over the network. */
  initialStartAt?: string | null;
  /** The initial copy went to external media: cycles wait until the replica imported it. */
  awaitingImport?: { folder: string; exportedAt: string } | null;
}

export type ResyncPolicy = { mode: "manual" } | { mode: "automatic" } | { mode: "window"; start: string; end: string };

export type RecoveryPointKind = "standard" | "application-consistent";

/** A kept recovery point: the disk as of cycle `seq`, rebuilt through its undo log. */
export interface RecoveryPointRecord {
  id: string;
  seq: number;
  /** The primary's freeze time of that cycle: what the point's content is the state of. */
  at: string;
  kind: RecoveryPointKind;
  /** Before-images of the blocks that cycles after this point overwrote (until the next point). */
  undoFile: string;
  /** How much of the undo log is known durable; the rest is verified on open. */
  undoBytes: number;
}

export interface ReplicaRecord extends Common {
  role: "replica";
  primaryServer: string;
  trustGroup: string;
  storageDir: string;
  /** Highest cycle applied to the replica disks; -1 before the initial copy completed. */
  lastAppliedSeq: number;
  /** A cycle made durable on the replica whose apply must be (re)done after a crash. */
  /** A delta cycle made durable in its redo file and not yet applied (`bytes` of frames; older records: the whole file). */
  staged: { seq: number; file: string; bytes?: number; marks?: CycleMarks } | null;
  /** Additional hourly recovery points to keep, as the primary last said (0: latest only). */
  recoveryHistory: number;
  /** Kept recovery points, oldest first; the disks themselves are the latest point. */
  points: RecoveryPointRecord[];
  /** The test failover VM running from this replica, if any. */
  /** The primary's last cycle before a planned failover (marks.prepared), until another cycle. */
  preparedSeq?: number | null;
  /** A placeholder waiting for Import Initial Replica (external media). */
  awaitingImport?: boolean;
  /** Where the primary's replication API answers, as its last cycle said. */
  returnPath?: { port: number; authMode: AuthMode } | null;
  testFailover?: { testVmId: string; pointId: string; pointAt: string | null; seq: number; startedAt: string } | null;
  lastTestFailoverAt?: string | null;
  /** An unplanned failover in progress: the VM runs from this point on overlays. */
  failover?: { pointId: string; pointAt: string | null; seq: number; startedAt: string; previousState: ReplicationState; completing: boolean } | null;
}

export type RelationshipRecord = PrimaryRecord | ReplicaRecord;

export interface CycleRow {
  seq: number;
  status: string;
  startedAt: string;
  finishedAt: string | null;
  changedBytes: number;
  wireBytes: number;
  error: string | null;
}

export function emptyStats(): CycleStats {
  return {
    since: nowIso(),
    successfulCycles: 0,
    failedCycles: 0,
    missedCycles: 0,
    changedBytes: 0,
    wireBytes: 0,
    maxCycleBytes: 0,
    totalLatencyMs: 0,
    lastError: null,
  };
}

export class RelationshipRepo {
  constructor(private readonly db: Db) {}

  all(): RelationshipRecord[] {
    return (this.db.prepare("SELECT record FROM relationships").all() as { record: string }[]).map((r) => JSON.parse(r.record) as RelationshipRecord);
  }

  get(id: string): RelationshipRecord | undefined {
    const row = this.db.prepare("SELECT record FROM relationships WHERE id = ?").get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as RelationshipRecord) : undefined;
  }

  byVm(vmId: string): RelationshipRecord[] {
    return (this.db.prepare("SELECT record FROM relationships WHERE vm_id = ?").all(vmId) as { record: string }[]).map(
      (r) => JSON.parse(r.record) as RelationshipRecord,
    );
  }

  save(rec: RelationshipRecord): void {
    this.db
      .prepare(
        "INSERT INTO relationships (id, vm_id, role, record) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record",
      )
      .run(rec.id, rec.vmId, rec.role, JSON.stringify(rec));
  }

  delete(id: string): void {
    this.db.prepare("DELETE FROM relationships WHERE id = ?").run(id);
  }

  /** Cycles of a relationship, newest first (bounded per relationship when recorded). */
  cycles(relationshipId: string, limit: number): CycleRow[] {
    return this.db
      .prepare("SELECT seq, status, started_at AS startedAt, finished_at AS finishedAt, changed_bytes AS changedBytes, wire_bytes AS wireBytes, error FROM cycles WHERE relationship_id = ? ORDER BY id DESC LIMIT ?")
      .all(relationshipId, limit) as CycleRow[];
  }

  /** Successful and failed cycles of a relationship that started at or after `fromIso`. */
  cycleCounts(relationshipId: string, fromIso: string): { ok: number; failed: number } {
    const row = this.db
      .prepare("SELECT SUM(status IN ('acknowledged', 'applied')) AS ok, SUM(status IN ('failed', 'rejected')) AS failed FROM cycles WHERE relationship_id = ? AND started_at >= ?")
      .get(relationshipId, fromIso) as { ok: number | null; failed: number | null };
    return { ok: row.ok ?? 0, failed: row.failed ?? 0 };
  }

  recordCycle(c: { relationshipId: string; seq: number; status: string; startedAt: string; changedBytes: number; wireBytes: number; error?: string }): void {
    this.db
      .prepare(
        "INSERT INTO cycles (relationship_id, seq, status, started_at, finished_at, changed_bytes, wire_bytes, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(c.relationshipId, c.seq, c.status, c.startedAt, nowIso(), c.changedBytes, c.wireBytes, c.error ?? null);
    this.db
      .prepare("DELETE FROM cycles WHERE relationship_id = ? AND id < (SELECT MIN(id) FROM (SELECT id FROM cycles WHERE relationship_id = ? ORDER BY id DESC LIMIT 5000))")
      .run(c.relationshipId, c.relationshipId);
  }
}
