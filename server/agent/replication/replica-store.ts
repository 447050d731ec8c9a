/**
 * The Replica server's side of every relationship: creates replica VMs, receives cycles,
 * and applies them so that the replica disks always equal one completed freeze point.
 *
 * A delta cycle is first received in full into a redo file, verified, made durable and
 * recorded as staged; only then is it applied. A crash while applying leaves the staged
 * record behind, and start-up applies the same redo file again: writing the same bytes to
 * the same places twice is harmless, so apply is idempotent and a disk is never left torn.
 * The initial copy has no earlier point to protect and is written straight to the disks.
 */
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rm, truncate } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { BlockHashesBody, CreateReplicaBody, ReplicaServerSettings } from "../../shared/agent-api.js";
import type { LabHypervisor } from "../hypervisor/lab/lab-hypervisor.js";
import type { EventLog } from "../state/events.js";
import { emptyStats, type RelationshipRepo, type ReplicaRecord } from "../state/relationships.js";
import { authorizePrimary } from "../transport/authorization.js";
import { AgentError, badRequest, conflict, notFound } from "../errors.js";
import { readFully } from "../util/files.js";
import { hourSlot, nowIso } from "../util/clock.js";
import { blockHashesMac, hashRanges } from "./block-hashes.js";
import { SerialQueue } from "../util/serial-queue.js";
import { failpoint } from "../util/failpoints.js";
import type { CodecPool } from "./codec-pool.js";
import { encodeFrame, FLAG_ZSTD, FrameError, readFrames } from "./frames.js";
import { receiveCycle, type ReceivedFrame } from "./receiver.js";
import { DiskWriter } from "./apply.js";
import { RedoWriter } from "./redo-log.js";
import { ackMac, type StreamAuth } from "./stream-auth.js";
import type { CycleMarks } from "./frames.js";
import { RecoveryHistory, type PointView, type Range } from "./recovery/recovery-history.js";
import { copyImage, readManifest } from "./recovery/import.js";

export interface RecoveryPointInfo {
  /** "latest" for the replica disks themselves. */
  id: string;
  kind: "latest" | "standard" | "application-consistent";
  at: string | null;
  seq: number;
  /** Storage the point costs on the Replica server (its undo log). */
  sizeBytes: number;
}

export interface Peer {
  name: string;
  via: "https" | "http";
  /** HTTP mode: the shared token and this request's nonce, which sign stream and ack. */
  auth?: StreamAuth;
}

export interface CycleAck {
  relationshipId: string;
  seq: number;
  appliedAt: string;
  dataBytes: number;
  wireBytes: number;
  /** HTTP mode: proves this acknowledgement comes from the replica, for this very stream. */
  ackMac?: string;
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

  constructor(private readonly deps: Deps) {}

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
      if (rec.state === "Initial replication in progress") await this.emptyDisks(rec);
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
          await this.applyStaged(rec);
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

  authorize(peer: Peer, trustGroup?: string) {
    return authorizePrimary(this.deps.settings(), peer.name, trustGroup);
  }

  /** Checks the peer against this relationship's trust group; refusals become events. */
  private checkPeer(rec: ReplicaRecord, peer: Peer): void {
    try {
      this.authorize(peer, rec.trustGroup);
    } catch (err) {
      this.refused(peer, (err as Error).message, rec);
      throw err;
    }
  }

  refused(peer: Peer, reason: string, rec?: ReplicaRecord): void {
    this.deps.events.emit({
      severity: "error",
      kind: "replica.refused",
      vmId: rec?.vmId,
      relationshipId: rec?.id,
      message: `Replication request from '${peer.name}' over ${peer.via.toUpperCase()} was refused: ${reason}`,
      data: { peer: peer.name, via: peer.via },
    });
  }

  async createReplica(body: CreateReplicaBody, peer: Peer): Promise<ReplicaRecord> {
    let authorized;
    try {
      authorized = this.authorize(peer);
    } catch (err) {
      this.refused(peer, (err as Error).message);
      throw err;
    }
    const existing = this.deps.repo.get(body.relationshipId);
    if (existing) {
      if (existing.role === "replica" && existing.vmId === body.vmId) {
        this.checkPeer(existing, peer);
        return existing;
      }
      throw conflict(`relationship ${body.relationshipId} already exists on this server`);
    }
    if (body.initialMethod === "existing-copy") return this.adoptExistingCopy(body, peer, authorized.trustGroup);
    if (this.deps.hypervisor.find(body.vmId)) {
      throw conflict(`a virtual machine with id ${body.vmId} already exists on this Replica server; remove it, or enable replication with the existing copy as the initial copy`);
    }
    const storageDir = join(authorized.storageLocation, body.vmId);
    const vm = await this.deps.hypervisor.create(
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
    this.deps.repo.save(rec);
    this.deps.events.emit({
      severity: "info",
      kind: "replica.created",
      vmId: vm.id,
      relationshipId: rec.id,
      message: `Replica virtual machine '${body.vmName}' was created for primary server '${peer.name}' in ${storageDir} (trust group ${rec.trustGroup}).`,
    });
    return rec;
  }

  /** The Replica server already holds this VM (restored from a backup): it becomes the replica as it is. */
  private async adoptExistingCopy(body: CreateReplicaBody, peer: Peer, trustGroup: string): Promise<ReplicaRecord> {
    const vm = this.deps.hypervisor.find(body.vmId);
    if (!vm) throw conflict(`there is no virtual machine with id ${body.vmId} on this Replica server to use as the initial copy; restore it here first, or choose another initial replication method`);
    if (this.deps.repo.byVm(body.vmId).length > 0) throw conflict(`virtual machine ${body.vmId} on this Replica server is already replicated`);
    if (vm.config.state !== "Off") throw conflict(`'${vm.config.name}' is ${vm.config.state} on this Replica server; turn it off before it becomes the replica`);
    for (const d of body.disks) {
      const mine = vm.config.disks.find((x) => x.index === d.index);
      if (!mine || mine.sizeBytes !== d.sizeBytes) throw conflict(`disk ${d.index} of the existing copy ${mine ? `is ${mine.sizeBytes} bytes, not ${d.sizeBytes}` : "is missing"}; it cannot serve as the initial copy`);
    }
    vm.config = { ...vm.config, replicaOf: { primaryServer: peer.name } };
    await vm.saveConfig();
    const rec = newReplicaRecord(body, peer, trustGroup, vm.dir);
    this.deps.repo.save(rec);
    this.deps.events.emit({ severity: "info", kind: "replica.created", vmId: vm.id, relationshipId: rec.id, message: `The existing virtual machine '${vm.config.name}' is the initial copy for primary server '${peer.name}': only the blocks that differ will be sent.` });
    return rec;
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
      await this.emptyDisks(rec);
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
        await this.emptyDisks(rec);
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
    try {
      this.authorize(peer);
    } catch (err) {
      this.refused(peer, (err as Error).message);
      throw err;
    }
    const rec = this.record(id);
    this.checkPeer(rec, peer);
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
    return this.lock(id).run(() => this.receiveLocked(id, seq, base, source, peer, resync));
  }

  private async receiveLocked(id: string, seq: number, base: number, source: AsyncIterable<Buffer>, peer: Peer, resync: boolean): Promise<CycleAck> {
    let rec = this.record(id);
    if (rec.state === "Suspended") throw conflict(`replication of '${rec.vmName}' is paused on the Replica server; resume it there first`);
    if (rec.state === "Failed over (waiting for completion)" || rec.state === "Failover complete") {
      throw new AgentError(409, "FAILED_OVER", `'${rec.vmName}' was failed over on the Replica server (${rec.state}); it accepts no more cycles from this primary, whose virtual machine must not run as a second primary`);
    }
    if (rec.staged) throw conflict(`cycle ${rec.staged.seq} of '${rec.vmName}' is still waiting to be applied on the Replica server: ${rec.reason ?? "see its events"}`);
    // A resynchronization repairs whatever the replica holds, so it may skip numbers.
    if (base !== rec.lastAppliedSeq || (resync ? seq <= base : seq !== base + 1)) {
      const err = conflict(
        `cycle ${seq} (based on ${base}) does not follow this replica, which holds cycle ${rec.lastAppliedSeq}; the primary must resend from there`,
        { lastAppliedSeq: rec.lastAppliedSeq },
      );
      this.deps.events.emit({ severity: "warning", kind: "replica.out-of-sequence", vmId: rec.vmId, relationshipId: id, message: err.message });
      throw err;
    }
    const started = Date.now();
    const startedIso = nowIso();
    const expect = { relationshipId: id, seq, base, disks: new Map(rec.disks.map((d) => [d.index, d.sizeBytes])), auth: peer.auth };
    const initial = base === -1 && !resync;
    try {
      let result;
      if (initial) {
        rec = { ...rec, state: "Initial replication in progress" };
        this.deps.repo.save(rec);
        // Empty images: skipped zero runs then read back as zeros, whatever an earlier
        // interrupted attempt left behind; a rejected copy leaves nothing of itself. They
        // start at length 0 and the copy appends (filling holes of a sparse file costs the
        // kernel about three times as much); the writer sets their sizes before the sync.
        await this.emptyDisks(rec, false);
        const writer = await DiskWriter.open(this.diskPaths(rec), this.deps.pool, true, this.diskSizes(rec));
        try {
          let n = 0;
          result = await receiveCycle(source, expect, async (f) => {
            if (++n === 3) failpoint("replica.initial-mid");
            await writer.write(f);
          });
        } catch (err) {
          await writer.abort();
          await this.emptyDisks(rec);
          throw err;
        }
        await writer.finish();
        await this.commitCycle(this.record(id), seq, result.marks, true);
      } else {
        const stagingDir = join(rec.storageDir, ".staging");
        await mkdir(stagingDir, { recursive: true });
        const file = join(stagingDir, `cycle-${seq}.redo`);
        const redo = await RedoWriter.create(file);
        let frames: ReceivedFrame[] | undefined;
        const ranges: Range[] = [];
        try {
          result = await receiveCycle(source, expect, async (f) => {
            if (redo.bytes > 0) failpoint("replica.receive-mid");
            ranges.push({ disk: f.header.disk, offset: f.header.offset, length: f.header.length });
            // Staged decompressed: data that cannot be decoded is rejected now, before
            // anything is staged, and applying is nothing but writes.
            if (!(f.header.flags & FLAG_ZSTD)) return redo.add(f);
            const payload = await this.deps.pool.decode(f.payload, f.header.length).catch((err: Error) => {
              throw new FrameError(`frame ${f.header.index} does not decompress: ${err.message}`);
            });
            const header = { ...f.header, flags: f.header.flags & ~FLAG_ZSTD, payloadLength: payload.length };
            return redo.add({ header, headerBuf: encodeFrame(header, payload), payload });
          });
          if (Boolean(result.marks.resync) !== resync) throw new FrameError("the stream's resynchronization mark does not match the request: misdirected or altered data");
          frames = await redo.finish();
        } catch (err) {
          await redo.discard();
          throw err;
        }
        rec = { ...rec, staged: { seq, file, marks: result.marks } };
        this.saveDuringCycle(rec);
        failpoint("replica.after-staged");
        await this.applyStaged(rec, frames, ranges);
      }
      const appliedAt = nowIso();
      const latency = Date.now() - started;
      rec = this.record(id);
      rec = {
        ...rec,
        lastAppliedSeq: seq,
        lastSyncAt: appliedAt,
        state: result.marks.resync && !result.marks.resync.final ? "Resynchronizing" : "Replicating",
        reason: null,
        stats: {
          ...rec.stats,
          successfulCycles: rec.stats.successfulCycles + 1,
          changedBytes: rec.stats.changedBytes + result.dataBytes,
          wireBytes: rec.stats.wireBytes + result.wireBytes,
          maxCycleBytes: Math.max(rec.stats.maxCycleBytes, result.wireBytes),
          totalLatencyMs: rec.stats.totalLatencyMs + latency,
        },
      };
      rec = this.saveDuringCycle(rec);
      this.deps.repo.recordCycle({ relationshipId: id, seq, status: "applied", startedAt: startedIso, changedBytes: result.dataBytes, wireBytes: result.wireBytes });
      this.deps.events.emit({
        severity: "info",
        kind: initial ? "replica.initial-complete" : "replica.cycle-applied",
        vmId: rec.vmId,
        relationshipId: id,
        message: initial
          ? `Initial replication of '${rec.vmName}' completed (${result.dataBytes} bytes of data).`
          : `Cycle ${seq} of '${rec.vmName}' applied (${result.dataBytes} bytes changed, ${result.wireBytes} on the wire).`,
        data: { seq, dataBytes: result.dataBytes, wireBytes: result.wireBytes, latencyMs: latency },
      });
      const ack: CycleAck = { relationshipId: id, seq, appliedAt, dataBytes: result.dataBytes, wireBytes: result.wireBytes };
      if (peer.auth && result.mac) ack.ackMac = ackMac(peer.auth.token, { relationshipId: id, seq, base, nonce: peer.auth.nonce }, result.mac);
      return ack;
    } catch (err) {
      const now = this.record(id);
      const message = (err as Error).message;
      this.deps.repo.save({ ...now, state: initial ? "Waiting for initial replication" : now.state, stats: { ...now.stats, failedCycles: now.stats.failedCycles + 1, lastError: message } });
      this.deps.repo.recordCycle({ relationshipId: id, seq, status: "rejected", startedAt: startedIso, changedBytes: 0, wireBytes: 0, error: message });
      this.deps.events.emit({
        severity: "error",
        kind: err instanceof FrameError ? "replica.cycle-rejected" : "replica.cycle-failed",
        vmId: now.vmId,
        relationshipId: id,
        message: `Cycle ${seq} of '${now.vmName}' from '${peer.name}' was rejected and not applied: ${message}`,
        data: { seq },
      });
      if (err instanceof FrameError) throw new AgentError(422, "CYCLE_REJECTED", message);
      throw err;
    }
  }

  private async emptyDisks(rec: ReplicaRecord, sized = true): Promise<void> {
    const sizes = this.diskSizes(rec);
    for (const [i, p] of this.diskPaths(rec)) {
      await truncate(p, 0);
      if (sized) await truncate(p, sizes.get(i)!);
    }
  }

  private diskSizes(rec: ReplicaRecord): Map<number, number> {
    return new Map(rec.disks.map((d) => [d.index, d.sizeBytes]));
  }

  /**
   * Applies a staged cycle (again, after a crash) and clears the staged mark: from the frames
   * still in memory when given, else from the redo file.
   */
  private async applyStaged(rec: ReplicaRecord, frames?: ReceivedFrame[], ranges?: Range[]): Promise<void> {
    const staged = rec.staged!;
    const history = await this.history(rec);
    // A resynchronization deletes the points instead (they no longer describe a history).
    const forPoints = !staged.marks?.resync;
    if (history.recording(forPoints)) {
      // Before-images first, durably: only then may the new data overwrite them.
      ranges ??= await rangesOf(staged.file);
      await history.beforeApply(ranges, forPoints);
    }
    const writer = await DiskWriter.open(this.diskPaths(rec), this.deps.pool, false);
    try {
      let n = 0;
      for await (const f of frames ?? readFrames(createReadStream(staged.file, { highWaterMark: 1024 * 1024 }))) {
        if (++n === 2) failpoint("replica.apply-mid");
        await writer.write(f);
      }
    } catch (err) {
      await writer.abort();
      throw err;
    }
    await writer.finish();
    failpoint("replica.after-apply");
    const latest = this.record(rec.id);
    await this.commitCycle({ ...latest, staged: null, lastAppliedSeq: Math.max(latest.lastAppliedSeq, staged.seq) }, staged.seq, staged.marks, false);
    await rm(staged.file, { force: true });
  }

  /**
   * Saves an applied cycle together with what it does to the recovery history: the undo
   * logs' durable sizes, a new point when the primary marked one, the oldest points pruned
   * to the configured count. One save, so that a crash leaves either all of it or none.
   */
  private async commitCycle(rec: ReplicaRecord, seq: number, marks: CycleMarks | undefined, initial: boolean): Promise<void> {
    const history = await this.history(rec);
    const keep = marks?.recoveryHistory ?? rec.recoveryHistory;
    // An initial copy or a resynchronization rewrote the disks: no earlier point describes them any more.
    const reset = initial || Boolean(marks?.resync);
    let points = reset ? [] : history.durablePoints();
    if (marks?.resync && rec.points.length > 0) {
      this.deps.events.emit({ severity: "warning", kind: "replica.points-deleted", vmId: rec.vmId, relationshipId: rec.id, message: `${rec.points.length} recovery point(s) of '${rec.vmName}' older than the resynchronization were deleted: they no longer describe a consistent history.`, data: { count: rec.points.length } });
    }
    // One point per hour: a cycle retried after its acknowledgement was lost (the primary did
    // not learn that its point was made) does not make a second one.
    const newest = points.at(-1);
    const makes = marks?.point && keep > 0 && !(newest && hourSlot(Date.parse(newest.at)) === hourSlot(Date.parse(marks.point.at)));
    if (makes && marks?.point) points.push(history.newPoint(seq, marks.point.at, marks.point.kind));
    const pruned = points.length > keep ? points.slice(0, points.length - keep) : [];
    points = points.slice(pruned.length);
    this.saveDuringCycle({
      ...rec,
      points,
      preparedSeq: marks?.prepared ? seq : null,
      returnPath: marks?.returnPath ?? rec.returnPath ?? null,
      recoveryHistory: keep,
      frequencySeconds: marks?.frequencySeconds ?? rec.frequencySeconds,
    });
    await history.sync(points);
    if (makes) {
      const p = points.at(-1)!;
      this.deps.events.emit({ severity: "info", kind: "replica.point-created", vmId: rec.vmId, relationshipId: rec.id, message: `Recovery point of '${rec.vmName}' as of ${p.at} was created (${p.kind}, cycle ${seq}).`, data: { pointId: p.id, seq, at: p.at, kind: p.kind } });
    }
    for (const p of pruned) {
      this.deps.events.emit({ severity: "info", kind: "replica.point-pruned", vmId: rec.vmId, relationshipId: rec.id, message: `Recovery point of '${rec.vmName}' as of ${p.at} was deleted: ${keep} additional point${keep === 1 ? " is" : "s are"} kept.`, data: { pointId: p.id } });
    }
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

  /**
   * Saves a record a cycle wrote from what it read earlier. A pause on the Replica server does
   * not wait for the cycle under way (it refuses the next one), so it may have come meanwhile:
   * it stays.
   */
  private saveDuringCycle(rec: ReplicaRecord): ReplicaRecord {
    const saved = this.record(rec.id).state === "Suspended" ? { ...rec, state: "Suspended" as const } : rec;
    this.deps.repo.save(saved);
    return saved;
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

/** The disk ranges a staged cycle writes, read back from its redo file. */
async function rangesOf(file: string): Promise<Range[]> {
  const ranges: Range[] = [];
  for await (const f of readFrames(createReadStream(file, { highWaterMark: 1024 * 1024 }))) ranges.push({ disk: f.header.disk, offset: f.header.offset, length: f.header.length });
  return ranges;
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
