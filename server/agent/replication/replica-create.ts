/**
 * Creates the replica side of a relationship when a primary enables replication: a placeholder
 * VM with empty disks (network or external-media initial copy), or a VM already on this host
 * adopted as the initial copy. A primary asking again for a relationship it created gets it back.
 */
import { join } from "node:path";
import type { CreateReplicaBody } from "../../shared/agent-api.js";
import type { LabHypervisor } from "../hypervisor/lab/lab-hypervisor.js";
import type { EventLog } from "../state/events.js";
import { emptyStats, type RelationshipRepo, type ReplicaRecord } from "../state/relationships.js";
import { conflict } from "../errors.js";
import { nowIso } from "../util/clock.js";
import type { Peer, PeerGate } from "./peer-gate.js";

export interface CreateDeps {
  repo: RelationshipRepo;
  events: EventLog;
  hypervisor: LabHypervisor;
  gate: PeerGate;
}

export async function createReplica(deps: CreateDeps, body: CreateReplicaBody, peer: Peer): Promise<ReplicaRecord> {
  const authorized = deps.gate.admit(peer);
  const existing = deps.repo.get(body.relationshipId);
  if (existing) {
    if (existing.role === "replica" && existing.vmId === body.vmId) {
      deps.gate.admit(peer, existing);
      return existing;
    }
    throw conflict(`relationship ${body.relationshipId} already exists on this server`);
  }
  if (body.initialMethod === "existing-copy") return adoptExistingCopy(deps, body, peer, authorized.trustGroup);
  if (deps.hypervisor.find(body.vmId)) {
    throw conflict(`a virtual machine with id ${body.vmId} already exists on this Replica server; remove it, or enable replication with the existing copy as the initial copy`);
  }
  const storageDir = join(authorized.storageLocation, body.vmId);
  const vm = await deps.hypervisor.create(
    {
      name: body.vmName,
      cpus: body.cpus,
      memoryMiB: body.memoryMiB,
      disks: body.disks.map((d) => ({ sizeBytes: d.sizeBytes })),
      workload: { pattern: "idle", rateMiBps: 0, quiesce: "works" },
    },
    { id: body.vmId, dir: storageDir, replicaOf: { primaryServer: peer.name }, diskIndexes: body.disks.map((d) => d.index) },
  );
  const rec: ReplicaRecord = { ...newReplicaRecord(body, peer, authorized.trustGroup, storageDir), awaitingImport: body.initialMethod === "external-media" };
  deps.repo.save(rec);
  deps.events.emit({
    severity: "info",
    kind: "replica.created",
    vmId: vm.id,
    relationshipId: rec.id,
    message: `Replica virtual machine '${body.vmName}' was created for primary server '${peer.name}' in ${storageDir} (trust group ${rec.trustGroup}).`,
  });
  return rec;
}

/** The Replica server already holds this VM (restored from a backup): it becomes the replica as it is. */
async function adoptExistingCopy(deps: CreateDeps, body: CreateReplicaBody, peer: Peer, trustGroup: string): Promise<ReplicaRecord> {
  const vm = deps.hypervisor.find(body.vmId);
  if (!vm) throw conflict(`there is no virtual machine with id ${body.vmId} on this Replica server to use as the initial copy; restore it here first, or choose another initial replication method`);
  if (deps.repo.byVm(body.vmId).length > 0) throw conflict(`virtual machine ${body.vmId} on this Replica server is already replicated`);
  if (vm.config.state !== "Off") throw conflict(`'${vm.config.name}' is ${vm.config.state} on this Replica server; turn it off before it becomes the replica`);
  for (const d of body.disks) {
    const mine = vm.config.disks.find((x) => x.index === d.index);
    if (!mine || mine.sizeBytes !== d.sizeBytes) throw conflict(`disk ${d.index} of the existing copy ${mine ? `is ${mine.sizeBytes} bytes, not ${d.sizeBytes}` : "is missing"}; it cannot serve as the initial copy`);
  }
  vm.config = { ...vm.config, replicaOf: { primaryServer: peer.name } };
  await vm.saveConfig();
  const rec = newReplicaRecord(body, peer, trustGroup, vm.dir);
  deps.repo.save(rec);
  deps.events.emit({ severity: "info", kind: "replica.created", vmId: vm.id, relationshipId: rec.id, message: `The existing virtual machine '${vm.config.name}' is the initial copy for primary server '${peer.name}': only the blocks that differ will be sent.` });
  return rec;
}

/** The replica side of a new relationship, before its initial replication. */
function newReplicaRecord(body: CreateReplicaBody, peer: Peer, trustGroup: string, storageDir: string): ReplicaRecord {
  return {
    id: body.relationshipId,
    role: "replica",
    vmId: body.vmId,
    vmName: body.vmName,
    primaryServer: peer.name,
    trustGroup,
    storageDir,
    state: "Waiting for initial replication",
    frequencySeconds: body.frequencySeconds,
    disks: body.disks,
    createdAt: nowIso(),
    lastSyncAt: null,
    lastAppliedSeq: -1,
    staged: null,
    recoveryHistory: body.recoveryHistory,
    points: [],
    stats: emptyStats(),
    reason: null,
  };
}
