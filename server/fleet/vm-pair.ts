/**
 * The two hosts of a replicated VM, as the console knows them: the VM's row on the host it
 * was chosen on, and the other side's host found by the name in its relationship record.
 */
import type { Db } from "../console/db/client.js";
import type { AgentRelationship } from "./agent-schemas.js";
import { FleetError } from "./fleet.js";
import { vmView, type VmView } from "./vm-model.js";

export interface VmPair {
  vm: VmView;
  rel: AgentRelationship;
  /** The host the VM was chosen on, and the host at the other end of its replication. */
  here: { id: string; name: string };
  other: { id: string; name: string; status: string; lastSeenAt: Date | null } | null;
  otherName: string;
  /** The other side's VM row and relationship record, as last seen. */
  otherVm: VmView | null;
  otherRel: AgentRelationship | null;
}

export async function vmPair(db: Db, hostId: string, vmId: string): Promise<VmPair> {
  const row = await db.vm.findUnique({ where: { hostId_vmId: { hostId, vmId } }, include: { host: { select: { id: true, name: true } } } });
  if (!row) throw new FleetError("NOT_FOUND", "no such virtual machine on this host", "vmId");
  const rel = row.relationship as AgentRelationship | null;
  if (!rel) throw new FleetError("CONFLICT", `replication is not enabled for '${row.name}'`, "vmId");
  const otherName = rel.role === "primary" ? rel.replicaServer : rel.primaryServer;
  const other = await db.host.findUnique({ where: { name: otherName }, select: { id: true, name: true, status: true, lastSeenAt: true } });
  const otherRow = other ? await db.vm.findUnique({ where: { hostId_vmId: { hostId: other.id, vmId } } }) : null;
  return { vm: vmView(row), rel, here: row.host, other, otherName, otherVm: otherRow ? vmView(otherRow) : null, otherRel: (otherRow?.relationship as AgentRelationship | null) ?? null };
}

/** The other host, which the operation needs the console to reach. */
export function requireOther(pair: VmPair): NonNullable<VmPair["other"]> {
  if (!pair.other) throw new FleetError("CONFLICT", `${pair.otherName} is not connected to this console: connect to it first (Connect to Server...)`, "vmId");
  return pair.other;
}
