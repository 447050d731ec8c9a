/**
 * Replication health as Hyper-V computes it: Critical when the primary cannot send or
 * replication is paused on the replica, Warning for the conditions an administrator should
 * look at, Normal otherwise; always with reasons. An agent that judges health itself (over its
 * monitoring interval) is taken at its word; the console adds only what time alone tells while
 * the agent is silent (no sync for an hour). For agents that do not, the console judges.
 */
import type { ReplicationHealth } from "../shared/replication.js";
import type { AgentRelationship } from "./agent-schemas.js";

const HOUR_MS = 3600_000;

export interface HealthVerdict {
  health: ReplicationHealth;
  reasons: string[];
}

export function replicationHealth(r: AgentRelationship, now = Date.now()): HealthVerdict {
  if (r.health) {
    const reasons = r.healthReasons ?? [];
    const silent = silence(r, now);
    if (!silent || reasons.some((x) => x.startsWith("No replication data"))) return { health: r.health, reasons };
    return { health: r.health === "Critical" ? "Critical" : "Warning", reasons: [...reasons, silent] };
  }
  const critical: string[] = [];
  const warning: string[] = [];

  if (r.state === "Error") critical.push(`Replication is in an error state${r.reason ? `: ${r.reason}` : "."}`);
  if (r.state === "Resynchronization required") critical.push(`Resynchronization is required${r.reason ? `: ${r.reason}` : "."}`);
  if (r.state === "Suspended") (r.role === "replica" ? critical : warning).push(`Replication is paused on the ${r.role === "replica" ? "Replica" : "primary"} server.`);
  if (r.state === "Ready for initial replication" || r.state === "Initial replication in progress" || r.state === "Waiting for initial replication") {
    warning.push("Initial replication is not complete.");
  }
  const cycles = r.stats.successfulCycles + r.stats.missedCycles + r.stats.failedCycles;
  if (cycles >= 5 && (r.stats.missedCycles + r.stats.failedCycles) / cycles > 0.2) {
    warning.push("More than 20 percent of replication cycles have been missed.");
  }
  const silent = silence(r, now);
  if (silent) warning.push(silent);

  if (critical.length) return { health: "Critical", reasons: [...critical, ...warning] };
  if (warning.length) return { health: "Warning", reasons: warning };
  return { health: "Normal", reasons: [] };
}

function silence(r: AgentRelationship, now: number): string | null {
  const last = r.lastSyncAt ? Date.parse(r.lastSyncAt) : Date.parse(r.createdAt);
  if (r.state === "Suspended" || now - last <= HOUR_MS) return null;
  return `No replication data has been ${r.role === "primary" ? "sent" : "received"} for more than 1 hour.`;
}
