/**
 * The Replica server's side of every relationship: creates replica VMs (replica-create.ts),
 * admits primaries (peer-gate.ts), receives cycles (one at a time per relationship;
 * replica-cycle.ts does each) and applies them so that the replica disks always equal one
 * completed freeze point; recovery points, import, pause, removal.
 *
 * A delta cycle is first received in full into a redo file, verified, made durable and
 * recorded as staged; only then is it applied. A crash while applying leaves the staged
 * record behind, and start-up applies the same redo file again: writing the same bytes to
 * the same places twice is harmless, so apply is idempotent and a disk is never left torn.
 * The initial copy has no earlier point to protect and is written straight to the disks.
 */
import { open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { BlockHashesBody, CreateReplicaBody, ReplicaServerSettings } from "../../shared/agent-api.js";
import type { LabHypervisor } from "../hypervisor/lab/lab-hypervisor.js";
import type { EventLog } from "../state/events.js";
import type { RelationshipRepo, ReplicaRecord } from "../state/relationships.js";
import { AgentError, badRequest, conflict, notFound } from "../errors.js";
import { readFully } from "../util/files.js";
import { blockHashesMac, hashRanges } from "./block-hashes.js";
import { SerialQueue } from "../util/serial-queue.js";
import type { CodecPool } from "./codec-pool.js";
import { CycleIntake, type CycleAck } from "./replica-cycle.js";
import { createReplica } from "./replica-create.js";
import { PeerGate, type Peer } from "./peer-gate.js";
import { RecoveryHistory, type PointView } from "./recovery/recovery-history.js";
import { copyImage, readManifest } from "./recovery/import.js";

export type { CycleAck, Peer };

export interface RecoveryPointInfo {
  /** "latest" for the replica disks themselves. */
  id: string;
  kind: "latest" | "standard" | "application-consistent";
  at: string | null;
  seq: number;
  /** Storage the point costs on the Replica server (its undo log). */
  sizeBytes: number;
}

interface Deps {
  repo: RelationshipRepo;
  events: EventLog;
  hypervisor: LabHypervisor;
  pool: CodecPool;
  settings: () => ReplicaServerSettings;
  log: Logger;
}

export class ReplicaStore {
  private readonly locks = new Map<string, SerialQueue>();
  private readonly histories = new Map<string, Promise<RecoveryHistory>>();

  private readonly cycles: CycleIntake;
  readonly gate: PeerGate;

  constructor(private readonly deps: Deps) {
    this.gate = new PeerGate(deps.settings, deps.events);
    this.cycles = new CycleIntake({
      repo: deps.repo,
      events: deps.events,
      pool: deps.pool,
      record: (id) => this.record(id),
      history: (rec) => this.history(rec),
      diskPaths: (rec) => this.diskPaths(rec),
    });
  }

  private lock(id: string): SerialQueue {
    let q = this.locks.get(id);
    if (!q) this.locks.set(id, (q = new SerialQueue()));
    return q;
  }

  /** Runs fn while no cycle is being applied to this VM (if it is a replica). */
  exclusive<T>(vmId: string, fn: () => Promise<T>): Promise<T> {
    const rec = this.deps.repo.byVm(vmId).find((r) => r.role === "replica");
    return rec ? this.lock(rec.id).run(fn) : fn();
  }

  /** The recovery history of a relationship, its undo logs opened (and repaired) once. */
  private history(rec: ReplicaRecord): Promise<RecoveryHistory> {
    let h = this.histories.get(rec.id);
    if (!h) {
      h = RecoveryHistory.load(rec, () => this.diskPaths(this.record(rec.id))).then((history) => {
        if (history.lost) {
          const gone = new Set(history.lost.points.map((p) => p.id));
          const now = this.record(rec.id);
          this.deps.repo.save({ ...now, points: now.points.filter((p) => !gone.has(p.id)) });
          this.deps.events.emit({
            severity: "error",
            kind: "replica.points-lost",
            vmId: rec.vmId,
            relationshipId: rec.id,
            message: `${gone.size} recovery point(s) of '${rec.vmName}' can no longer be restored and were removed: ${history.lost.reason}. The latest point and newer points are intact.`,
          });
        }
        return history;
      });
      h.catch(() => this.histories.delete(rec.id));
      this.histories.set(rec.id, h);
    }
    return h;
  }

  private record(id: string): ReplicaRecord {
    const rec = this.deps.repo.get(id);
    if (!rec || rec.role !== "replica") throw notFound(`no replica relationship ${id} on this Replica server`);
    return rec;
  }

  /** Finishes what a crash interrupted: re-applies staged cycles, drops half-received ones. */
  async start(): Promise<void> {
    for (const rec of this.deps.repo.all()) {
      if (rec.role !== "replica") continue;
      const stagingDir = join(rec.storageDir, ".staging");
      const keep = rec.staged?.file;
      for (const name of await readdir(stagingDir).catch(() => [] as string[])) {
        if (join(stagingDir, name) !== keep) await rm(join(stagingDir, name), { force: true });
      }
      // An initial copy cut short leaves its disks shorter than they are: empty them whole.
      if (rec.state === "Initial replication in progress") await this.cycles.emptyDisks(rec);
      // Undo logs are checked (and torn tails repaired) before anything else touches them.
      await this.history(rec).catch((err: Error) => this.deps.log.error({ err, relationshipId: rec.id }, "recovery history could not be loaded"));
      if (rec.staged) {
        this.deps.events.emit({
          severity: "warning",
          kind: "replica.recovering",
          vmId: rec.vmId,
          relationshipId: rec.id,
          message: `Cycle ${rec.staged.seq} of '${rec.vmName}' was interrupted while being applied; applying it again.`,
        });
        try {
          await this.cycles.applyStaged(rec);
        } catch (err) {
          // The disk may be half-written: it stays out of service, the redo file stays for
          // the next attempt, and the rest of the agent carries on.
          const reason = `Cycle ${rec.staged.seq} could not be applied: ${(err as Error).message}. The replica disks are not consistent until it is; fix the cause (disk space, permissions) and restart the agent.`;
          this.deps.repo.save({ ...rec, state: "Error", reason });
          this.deps.events.emit({ severity: "error", kind: "replica.apply-failed", vmId: rec.vmId, relationshipId: rec.id, message: `Replication of '${rec.vmName}': ${reason}` });
        }
      }
    }
  }

  serverSettings(): ReplicaServerSettings {
    return this.deps.settings();
  }

  /** The replica side of a new relationship (or of one the primary asks for again). */
  createReplica(body: CreateReplicaBody, peer: Peer): Promise<ReplicaRecord> {
    return createReplica({ repo: this.deps.repo, events: this.deps.events, hypervisor: this.deps.hypervisor, gate: this.gate }, body, peer);
  }

  /**
   * Import Initial Replica: copies the disks a primary exported to external media into the
   * placeholder, checking every image against the manifest's hash; changes made since the
   * export then arrive as ordinary cycles.
   */
  async importInitial(vmId: string, folder: string): Promise<ReplicaRecord> {
    const rec = this.replicaOfVm(vmId);
    if (!rec.awaitingImport || rec.lastAppliedSeq >= 0) throw conflict(`'${rec.vmName}' is not a placeholder waiting for Import Initial Replica (it is ${rec.state})`);
    const manifest = await readManifest(folder, rec);
    return this.lock(rec.id).run(async () => {
      const paths = this.diskPaths(rec);
      await this.cycles.emptyDisks(rec);
      const total = manifest.disks.reduce((n, d) => n + d.sizeBytes, 0);
      let done = 0;
      try {
        for (const d of manifest.disks) {
          const sha = await copyImage(join(folder, d.file), paths.get(d.index)!, d.sizeBytes, (n) => {
            done += n;
            this.deps.events.emit({ severity: "info", kind: "replica.import-progress", vmId, relationshipId: rec.id, message: `Importing the initial copy of '${rec.vmName}': ${Math.round((100 * done) / total)}%.`, data: { done, total } });
          });
          if (sha !== d.sha256) throw new AgentError(422, "IMPORT_MISMATCH", `disk ${d.index} in ${folder} does not match its manifest (SHA-256 ${sha}, expected ${d.sha256}): the media is damaged or was changed; nothing was imported`);
        }
      } catch (err) {
        await this.cycles.emptyDisks(rec);
        throw err;
      }
      const now = { ...this.record(rec.id), lastAppliedSeq: manifest.point.seq, lastSyncAt: manifest.createdAt, state: "Replicating" as const, awaitingImport: false };
      this.deps.repo.save(now);
      this.deps.events.emit({ severity: "info", kind: "replica.imported", vmId, relationshipId: rec.id, message: `The initial copy of '${rec.vmName}' was imported from ${folder}; changes made since the export follow as ordinary cycles.` });
      return now;
    });
  }

  /** Authorized peers only learn whether a relationship exists. */
  private authorizedRecord(id: string, peer: Peer): ReplicaRecord {
    this.gate.admit(peer);
    const rec = this.record(id);
    this.gate.admit(peer, rec);
    return rec;
  }

  status(id: string, peer: Peer): ReplicaRecord {
    return this.authorizedRecord(id, peer);
  }

  private diskPaths(rec: ReplicaRecord): Map<number, string> {
    const vm = this.deps.hypervisor.get(rec.vmId);
    const paths = new Map<number, string>();
    for (const d of rec.disks) {
      const disk = vm.config.disks.find((x) => x.index === d.index);
      if (!disk) throw conflict(`replica virtual machine '${rec.vmName}' has no disk ${d.index}; its folder was changed outside the agent`);
      paths.set(d.index, join(vm.dir, disk.file));
    }
    return paths;
  }

  receive(id: string, seq: number, base: number, source: AsyncIterable<Buffer>, peer: Peer, resync = false): Promise<CycleAck> {
    this.authorizedRecord(id, peer);
    return this.lock(id).run(() => this.cycles.receive(id, seq, base, source, peer, resync));
  }

  /** Resynchronization: hashes of the replica's blocks in the asked ranges, between cycles. */
  blockHashes(id: string, body: BlockHashesBody, peer: Peer): Promise<{ hashes: string; mac: string | null }> {
    this.authorizedRecord(id, peer);
    return this.lock(id).run(async () => {
      const rec = this.record(id);
      const path = this.diskPaths(rec).get(body.disk);
      if (path === undefined) throw badRequest(`body.disk: this replica has no disk ${body.disk}`);
      const size = rec.disks.find((d) => d.index === body.disk)!.sizeBytes;
      const past = body.ranges.find(([offset, length]) => offset + length > size);
      if (past) throw badRequest(`body.ranges: ${past[0]}+${past[1]} runs past the end of disk ${body.disk} (${size} bytes)`);
      const fh = await open(path, "r");
      let out: Buffer;
      try {
        out = await hashRanges(body.ranges, body.blockSize, (offset, length) => readFully(fh, Buffer.allocUnsafe(length), offset));
      } finally {
        await fh.close();
      }
      return { hashes: out.toString("base64"), mac: peer.auth ? blockHashesMac(peer.auth.token, id, peer.auth.nonce, body, out) : null };
    });
  }

  /** Writes a kept point back into the replica disks (completing a failover to it). */
  async restorePoint(id: string, pointId: string): Promise<number> {
    return (await this.history(this.record(id))).restoreInPlace(pointId);
  }

  /** Deletes every kept point of a relationship (its disks are the only state left). */
  async dropPoints(id: string): Promise<void> {
    const rec = this.record(id);
    const history = this.histories.get(id);
    this.histories.delete(id);
    await (await history?.catch(() => undefined))?.close();
    await rm(join(rec.storageDir, ".points"), { recursive: true, force: true });
    this.deps.repo.save({ ...this.record(id), points: [] });
  }

  /** The replica relationship of a VM on this host, or a clear refusal. */
  replicaOfVm(vmId: string): ReplicaRecord {
    const vm = this.deps.hypervisor.get(vmId);
    const rec = this.deps.repo.byVm(vmId).find((r): r is ReplicaRecord => r.role === "replica");
    if (!rec) throw conflict(`'${vm.config.name}' is not a Replica virtual machine on this host; recovery points are kept on its Replica server`);
    return rec;
  }

  /** Recovery points of a replica VM, newest first: the latest (the disks themselves) on top. */
  async recoveryPoints(vmId: string): Promise<RecoveryPointInfo[]> {
    const sizes = (await this.history(this.replicaOfVm(vmId))).sizes();
    const rec = this.replicaOfVm(vmId);
    const list: RecoveryPointInfo[] = rec.points.map((p) => ({ id: p.id, kind: p.kind, at: p.at, seq: p.seq, sizeBytes: sizes.get(p.id) ?? p.undoBytes })).reverse();
    if (rec.lastAppliedSeq >= 0) list.unshift({ id: "latest", kind: "latest", at: rec.lastSyncAt, seq: rec.lastAppliedSeq, sizeBytes: 0 });
    return list;
  }

  /** Opens a point-in-time view of a kept point; replication goes on meanwhile. Close it after use. */
  async openView(vmId: string, pointId: string): Promise<{ view: PointView; rec: ReplicaRecord; point: RecoveryPointInfo }> {
    const history = await this.history(this.replicaOfVm(vmId));
    const rec = this.replicaOfVm(vmId);
    const notKept = () => notFound(`recovery point ${pointId} of '${rec.vmName}' is not kept (it may have been pruned); list them with GET /api/v1/vms/${vmId}/recovery-points`);
    if (pointId === "latest") {
      // Between cycles, so that the view starts from a whole one.
      return this.lock(rec.id).run(async () => {
        const now = this.record(rec.id);
        if (now.lastAppliedSeq < 0) throw conflict(`'${rec.vmName}' has no recovery point yet: initial replication has not completed`);
        if (now.staged) throw conflict(`'${rec.vmName}' holds a cycle that is not fully applied: ${now.reason ?? "see its events"}`);
        if (now.state === "Resynchronizing") throw conflict(`'${rec.vmName}' is being resynchronized; its disks are consistent again when the resynchronization completes`);
        return { view: await history.view("latest"), rec: now, point: { id: "latest", kind: "latest", at: now.lastSyncAt, seq: now.lastAppliedSeq, sizeBytes: 0 } };
      });
    }
    // Between cycles too: from here on the view records what each cycle overwrites.
    return this.lock(rec.id).run(async () => {
      const p = this.record(rec.id).points.find((x) => x.id === pointId);
      if (!p) throw notKept();
      const view = await history.view(pointId).catch(() => {
        throw notKept();
      });
      return { view, rec, point: { id: p.id, kind: p.kind, at: p.at, seq: p.seq, sizeBytes: p.undoBytes } };
    });
  }

  /** Pause or resume on the Replica server (a paused replica refuses cycles). */
  setState(id: string, state: "Suspended" | "Replicating" | "Waiting for initial replication"): ReplicaRecord {
    const before = this.record(id);
    const rec = { ...before, state };
    this.deps.repo.save(rec);
    this.deps.events.emit({
      severity: state === "Suspended" ? "warning" : "info",
      kind: "replication.state",
      vmId: rec.vmId,
      relationshipId: id,
      message: `Replication of '${rec.vmName}' on the Replica server changed from ${before.state} to ${state}.`,
      data: { from: before.state, to: state },
    });
    return rec;
  }

  /** Removes replication on the Replica server; the VM and its disks stay. */
  async remove(id: string): Promise<void> {
    const rec = await this.release(id);
    this.deps.events.emit({
      severity: "info",
      kind: "replica.removed",
      vmId: rec.vmId,
      relationshipId: id,
      message: `Replication of '${rec.vmName}' was removed on the Replica server; the virtual machine and its disks (the latest recovery point) were kept${rec.points.length ? `, its ${rec.points.length} additional recovery points deleted` : ""}.`,
    });
  }

  /**
   * Ends the replica side of a relationship between cycles: the record, staged cycles and
   * recovery points go, the VM stays as an ordinary VM with its disks as of the last cycle.
   */
  async release(id: string): Promise<ReplicaRecord> {
    const rec = this.record(id);
    await this.lock(id).drain();
    this.deps.repo.delete(id);
    const history = this.histories.get(id);
    this.histories.delete(id);
    await (await history?.catch(() => undefined))?.close();
    await rm(join(rec.storageDir, ".staging"), { recursive: true, force: true });
    await rm(join(rec.storageDir, ".points"), { recursive: true, force: true });
    const vm = this.deps.hypervisor.find(rec.vmId);
    if (vm) {
      const { replicaOf: _, ...config } = vm.config;
      vm.config = config;
      await vm.saveConfig();
    }
    return rec;
  }
}
