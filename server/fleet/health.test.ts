import { describe, expect, it } from "vitest";
import type { AgentRelationship } from "./agent-schemas.js";
import { replicationHealth } from "./health.js";

const NOW = Date.parse("2026-11-22T12:00:00Z");
const minutesAgo = (m: number) => new Date(NOW - m * 60_000).toISOString();

function primary(over: Partial<Extract<AgentRelationship, { role: "primary" }>> = {}): AgentRelationship {
  return {
    id: "r",
    role: "primary",
    vmId: "v",
    vmName: "sql-01",
    replicaServer: "hv02",
    replicaPort: 9443,
    authMode: "https",
    compression: true,
    frequencySeconds: 300,
    disks: [],
    state: "Replicating",
    createdAt: minutesAgo(600),
    lastSyncAt: minutesAgo(2),
    lastAckedSeq: 10,
    reason: null,
    stats: { since: minutesAgo(600), successfulCycles: 100, failedCycles: 0, missedCycles: 0, changedBytes: 0, wireBytes: 0, maxCycleBytes: 0, totalLatencyMs: 0, lastError: null },
    ...over,
  } as AgentRelationship;
}

describe("replication health", () => {
  it("is Normal when cycles succeed and the last one is recent", () => {
    expect(replicationHealth(primary(), NOW)).toEqual({ health: "Normal", reasons: [] });
  });

  it("is Warning during the initial copy, when paused on the primary, or after an hour without a sync", () => {
    expect(replicationHealth(primary({ state: "Initial replication in progress", lastSyncAt: null, createdAt: minutesAgo(1) }), NOW)).toEqual({ health: "Warning", reasons: ["Initial replication is not complete."] });
    expect(replicationHealth(primary({ state: "Suspended" }), NOW).health).toBe("Warning");
    expect(replicationHealth(primary({ lastSyncAt: minutesAgo(61) }), NOW)).toEqual({ health: "Warning", reasons: ["No replication data has been sent for more than 1 hour."] });
  });

  it("is Warning when more than 20 percent of cycles were missed", () => {
    const stats = { ...primary().stats, successfulCycles: 7, missedCycles: 3 };
    expect(replicationHealth(primary({ stats }), NOW).reasons).toEqual(["More than 20 percent of replication cycles have been missed."]);
    expect(replicationHealth(primary({ stats: { ...stats, successfulCycles: 12 } }), NOW).health).toBe("Normal");
  });

  it("is Critical in Error, when resynchronization is required, or when paused on the replica", () => {
    expect(replicationHealth(primary({ state: "Error", reason: "hv02 refused" }), NOW)).toEqual({ health: "Critical", reasons: ["Replication is in an error state: hv02 refused"] });
    expect(replicationHealth(primary({ state: "Resynchronization required", reason: "tracking lost" }), NOW).health).toBe("Critical");
    const replica = { ...primary(), role: "replica", primaryServer: "hv01", trustGroup: "DEFAULT", lastAppliedSeq: 3, state: "Suspended" } as unknown as AgentRelationship;
    expect(replicationHealth(replica, NOW)).toEqual({ health: "Critical", reasons: ["Replication is paused on the Replica server."] });
  });

  it("takes an agent's own judgement, adding only a silence it cannot report", () => {
    const judged = primary({ health: "Warning", healthReasons: ["More than 20 percent of replication cycles have been missed in the monitoring interval (5 of 20)."] });
    expect(replicationHealth(judged, NOW)).toEqual({ health: "Warning", reasons: judged.healthReasons });
    expect(replicationHealth(primary({ health: "Normal", healthReasons: [] }), NOW + 2 * 3600_000)).toEqual({
      health: "Warning",
      reasons: ["No replication data has been sent for more than 1 hour."],
    });
    expect(replicationHealth(primary({ state: "Error", health: "Critical", healthReasons: ["The primary server cannot send replication data: refused"] }), NOW + 2 * 3600_000).health).toBe("Critical");
  });
});
