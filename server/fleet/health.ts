/**
 * Replication health as Hyper-V computes it (the agent leaves this to the console):
 * Critical when the primary cannot send or replication is paused on the replica, Warning for
 * the conditions an administrator should look at, Normal otherwise; always with reasons.
 */
import type { ReplicationHealth } from "../shared/replication.js";
import type { AgentRelationship } from "./agent-schemas.js";

const HOUR_MS = 3600_000;

export interface HealthVerdict {
  health: ReplicationHealth;
  reasons: string[];
}

export function replicationHealth(r: AgentRelationship, now = Date.now()): HealthVerdict {
  const critical: string[] = [];
  const warning: string[] = [];
  const side = r.role === "primary" ? "sent" : "received";

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
  const last = r.lastSyncAt ? Date.parse(r.lastSyncAt) : Date.parse(r.createdAt);
  if (r.state !== "Suspended" && now - last > HOUR_MS) warning.push(`No replication data has been ${side} for more than 1 hour.`);

  if (critical.length) return { health: "Critical", reasons: [...critical, ...warning] };
  if (warning.length) return { health: "Warning", reasons: warning };
  return { health: "Normal", reasons: [] };
}
