/**
 * The wall dashboard's picture of the fleet: one tile per replicated VM (its primary and replica
 * sides joined by VM id), worst first, and the counts of Normal / Warning / Critical. Only what
 * the wall shows leaves the server: a read-only dashboard link sees nothing else.
 */
import type { ReplicationHealth } from "../shared/replication.js";
import type { HostView } from "./views.js";
import type { VmView } from "./vm-model.js";

export interface WallTile {
  vmId: string;
  name: string;
  health: ReplicationHealth;
  /** Why it is not Normal (the worst side's reasons), empty when Normal. */
  reasons: string[];
  state: string;
  primaryServer: string;
  replicaServer: string;
  /** The latest sync either side saw; the wall ticks the lag from it. */
  lastSyncAt: string | null;
  /** Hosts of this VM the console cannot reach: what the tile shows may be out of date. */
  unreachable: string[];
}

export interface WallSnapshot {
  at: string;
  counts: Record<ReplicationHealth, number>;
  tiles: WallTile[];
}

const RANK: Record<ReplicationHealth, number> = { Critical: 0, Warning: 1, Normal: 2 };

export function wallSnapshot(vms: VmView[], hosts: HostView[], now = new Date()): WallSnapshot {
  const hostById = new Map(hosts.map((h) => [h.id, h]));
  const byVm = new Map<string, VmView[]>();
  for (const vm of vms) if (vm.replication && !vm.testOf) byVm.set(vm.vmId, [...(byVm.get(vm.vmId) ?? []), vm]);
  const tiles: WallTile[] = [];
  for (const [vmId, sides] of byVm) {
    const worst = [...sides].sort((a, b) => RANK[a.replication!.health] - RANK[b.replication!.health])[0]!;
    const primary = sides.find((s) => s.replication!.mode === "Primary") ?? worst;
    const syncs = sides.map((s) => s.replication!.lastSyncAt).filter((x): x is string => !!x).sort();
    const r = worst.replication!;
    tiles.push({
      vmId,
      name: primary.name,
      health: r.health,
      reasons: r.health === "Normal" ? [] : r.reasons,
      state: r.state,
      primaryServer: primary.replication!.primaryServer,
      replicaServer: primary.replication!.replicaServer,
      lastSyncAt: syncs.at(-1) ?? null,
      unreachable: sides.map((s) => hostById.get(s.hostId)).filter((h) => h && h.status !== "connected").map((h) => h!.name),
    });
  }
  tiles.sort((a, b) => RANK[a.health] - RANK[b.health] || a.name.localeCompare(b.name));
  const counts = { Normal: 0, Warning: 0, Critical: 0 };
  for (const t of tiles) counts[t.health]++;
  return { at: now.toISOString(), counts, tiles };
}
