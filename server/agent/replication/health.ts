/**
 * Replication health as Hyper-V judges it, on the agent (it holds the truth even when no
 * console runs): over the host's monitoring interval (default 12 hours from 09:00), with
 * the reasons an administrator reads in View Replication Health.
 *
 *   Critical  the primary cannot send (error, resynchronization required), or replication
 *             is paused on the Replica server
 *   Warning   more than 20% of the interval's cycles missed; more than an hour since the last
 *             successful send (primary) or receive (replica); initial replication not done;
 *             failed over but not reversed; paused on the primary
 *   Normal    otherwise
 */
import type { ReplicationHealth } from "../../shared/replication.js";
import type { RelationshipRecord } from "../state/relationships.js";

const HOUR = 3600_000;
/** Below this many expected cycles the missed share says nothing yet. */
const MIN_EXPECTED = 5;

export interface Monitoring {
  intervalHours: number;
  /** Local time of day the intervals are counted from, HH:MM. */
  startTime: string;
}

export const DEFAULT_MONITORING: Monitoring = { intervalHours: 12, startTime: "09:00" };

/** Start of the monitoring interval that `now` falls in. */
export function windowStart(now: number, m: Monitoring): number {
  const d = new Date(now);
  d.setHours(Number(m.startTime.slice(0, 2)), Number(m.startTime.slice(3)), 0, 0);
  let anchor = d.getTime();
  while (anchor > now) anchor -= 24 * HOUR;
  const interval = m.intervalHours * HOUR;
  return anchor + Math.floor((now - anchor) / interval) * interval;
}

export interface HealthReport {
  health: ReplicationHealth;
  reasons: string[];
  /** The monitoring interval judged: from its start (or the relationship's) to now. */
  from: string;
  to: string;
  expectedCycles: number;
  successfulCycles: number;
  failedCycles: number;
  missedCycles: number;
}

export function assessHealth(rec: RelationshipRecord, now: number, m: Monitoring, count: (fromIso: string) => { ok: number; failed: number }): HealthReport {
  const critical: string[] = [];
  const warning: string[] = [];
  const primary = rec.role === "primary";
  const from = Math.max(windowStart(now, m), Date.parse(rec.createdAt), Date.parse(rec.stats.since));
  const counts = count(new Date(from).toISOString());
  const expected = Math.floor((now - from) / (rec.frequencySeconds * 1000));
  const missed = Math.max(0, expected - counts.ok);

  switch (rec.state) {
    case "Error":
      critical.push(`The primary server cannot send replication data${rec.reason ? `: ${rec.reason}` : "."}`);
      break;
    case "Resynchronization required":
      critical.push(`Resynchronization is required${rec.reason ? `: ${rec.reason}` : "."}`);
      break;
    case "Suspended":
      if (primary) warning.push("Replication is paused on the primary server.");
      else critical.push("Replication is paused on the Replica server.");
      break;
    case "Ready for initial replication":
    case "Initial replication in progress":
    case "Waiting for initial replication":
      if (rec.role === "replica" && rec.awaitingImport) warning.push("The replica is a placeholder waiting for Import Initial Replica from external media.");
      else if (rec.role === "primary" && rec.awaitingImport) warning.push(`The initial copy was exported to ${rec.awaitingImport.folder}; waiting for Import Initial Replica on the Replica server.`);
      else warning.push("Initial replication is not complete.");
      break;
    case "Failed over (waiting for completion)":
      warning.push("The virtual machine is failed over; complete or cancel the failover.");
      break;
    case "Failover complete":
      warning.push(primary ? "The Replica server failed this virtual machine over; replication is not reversed yet." : "The virtual machine was failed over; replication is not reversed yet (Reverse Replication).");
      break;
    case "Resynchronizing":
      warning.push("Resynchronization is in progress.");
      break;
    default:
      break;
  }
  const judged = ["Replicating", "Error", "Resynchronizing"].includes(rec.state);
  if (judged && expected >= MIN_EXPECTED && missed / expected > 0.2) {
    warning.push(`More than 20 percent of replication cycles have been missed in the monitoring interval (${missed} of ${expected}).`);
  }
  const last = rec.lastSyncAt ? Date.parse(rec.lastSyncAt) : Date.parse(rec.createdAt);
  if (judged && now - last > HOUR) {
    warning.push(`No replication data has been ${primary ? "sent" : "received"} for more than 1 hour (last at ${rec.lastSyncAt ?? "never"}).`);
  }
  const health: ReplicationHealth = critical.length ? "Critical" : warning.length ? "Warning" : "Normal";
  return {
    health,
    reasons: [...critical, ...warning],
    from: new Date(from).toISOString(),
    to: new Date(now).toISOString(),
    expectedCycles: expected,
    successfulCycles: counts.ok,
    failedCycles: counts.failed,
    missedCycles: missed,
  };
}
