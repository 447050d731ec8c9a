import { describe, expect, it } from "vitest";
import type { HostView } from "./views.js";
import type { VmView } from "./vm-model.js";
import { wallSnapshot } from "./wall-model.js";

const host = (id: string, status: HostView["status"] = "connected"): HostView => ({ id, name: `${id}.lab`, address: `http://${id}`, status, statusReason: null, agentVersion: "0.2", hypervisor: "lab", accelerator: null, lastSeenAt: null });

function side(hostId: string, vmId: string, name: string, mode: "Primary" | "Replica", health: "Normal" | "Warning" | "Critical", extra: Pick<Partial<VmView>, "replication" | "testOf"> = {}, lastSyncAt = "2026-11-22T08:00:00.000Z"): VmView {
  return {
    hostId,
    vmId,
    name,
    state: "Running",
    cpus: 1,
    memoryMiB: 512,
    assignedMemoryMiB: 512,
    cpuUsagePercent: null,
    upSince: null,
    isReplica: mode === "Replica",
    testOf: null,
    disks: [],
    workload: { pattern: "idle", rateMiBps: 0 },
    networkConnected: true,
    createdAt: "2026-11-22T07:00:00.000Z",
    replication: {
      mode,
      state: health === "Critical" ? "Error" : "Replicating",
      health,
      reasons: health === "Normal" ? [] : [`${name} is ${health} on ${hostId}`],
      primaryServer: "hv01.lab",
      replicaServer: "hv02.lab",
      frequencySeconds: 30,
      lastSyncAt,
      reason: null,
      stats: { since: "", successfulCycles: 0, failedCycles: 0, missedCycles: 0, changedBytes: 0, wireBytes: 0, maxCycleBytes: 0, totalLatencyMs: 0, lastError: null },
      testFailover: null,
      failover: null,
      awaitingImport: false,
    },
    updatedAt: "2026-11-22T08:00:00.000Z",
    ...extra,
  };
}

describe("the wall's picture", () => {
  it("joins both sides of a VM, takes the worse one, and orders tiles worst first, then by name", () => {
    const s = wallSnapshot(
      [
        side("hv01", "a", "app-01", "Primary", "Normal", {}, "2026-11-22T08:00:05.000Z"),
        side("hv02", "a", "app-01", "Replica", "Warning", {}, "2026-11-22T08:00:07.000Z"),
        side("hv01", "b", "web-01", "Primary", "Normal"),
        side("hv02", "b", "web-01", "Replica", "Normal"),
        side("hv01", "c", "sql-01", "Primary", "Critical"),
        side("hv01", "d", "db-02", "Primary", "Critical"),
        side("hv01", "e", "plain", "Primary", "Normal", { replication: null }),
        side("hv02", "f", "sql-01 - Test", "Replica", "Normal", { testOf: { vmId: "c", pointAt: null } }),
      ],
      [host("hv01"), host("hv02", "unreachable")],
    );
    expect(s.tiles.map((t) => [t.name, t.health])).toEqual([
      ["db-02", "Critical"],
      ["sql-01", "Critical"],
      ["app-01", "Warning"],
      ["web-01", "Normal"],
    ]);
    expect(s.counts).toEqual({ Critical: 2, Warning: 1, Normal: 1 });
    const app = s.tiles.find((t) => t.name === "app-01")!;
    expect(app).toMatchObject({ reasons: ["app-01 is Warning on hv02"], primaryServer: "hv01.lab", replicaServer: "hv02.lab", lastSyncAt: "2026-11-22T08:00:07.000Z", unreachable: ["hv02.lab"] });
    expect(s.tiles.find((t) => t.name === "db-02")!.unreachable).toEqual([]);
    expect(s.tiles.find((t) => t.name === "web-01")!.reasons).toEqual([]);
  });

  it("is empty when nothing replicates", () => {
    expect(wallSnapshot([], [host("hv01")])).toMatchObject({ counts: { Normal: 0, Warning: 0, Critical: 0 }, tiles: [] });
  });
});
