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
import { mkdir, readdir, rm, truncate } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { CreateReplicaBody, ReplicaServerSettings } from "../../shared/agent-api.js";
import type { LabHypervisor } from "../hypervisor/lab/lab-hypervisor.js";
import type { EventLog } from "../state/events.js";
import { emptyStats, type RelationshipRepo, type ReplicaRecord } from "../state/relationships.js";
import { authorizePrimary } from "../transport/authorization.js";
import { AgentError, conflict, notFound } from "../errors.js";
import { SerialQueue } from "../util/serial-queue.js";
import { failpoint } from "../util/failpoints.js";
import type { CodecPool } from "./codec-pool.js";
import { encodeFrame, FLAG_ZSTD, FrameError, readFrames } from "./frames.js";
import { receiveCycle, type ReceivedFrame } from "./receiver.js";
import { DiskWriter } from "./apply.js";
import { RedoWriter } from "./redo-log.js";
import { ackMac, type StreamAuth } from "./stream-auth.js";

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
    if (this.deps.hypervisor.find(body.vmId)) {
      throw conflict(`a virtual machine with id ${body.vmId} already exists on this Replica server; remove it or use it as the initial copy`);
    }
    const storageDir = join(authorized.storageLocation, body.vmId);
    const vm = await this.deps.hypervisor.create(
      {
        name: body.vmName,
        cpus: body.cpus,
        memoryMiB: body.memoryMiB,
        disks: body.disks.map((d) => ({ sizeBytes: d.sizeBytes })),
        workload: { pattern: "idle", rateMiBps: 0 },
      },
      { id: body.vmId, dir: storageDir, replicaOf: { primaryServer: peer.name }, diskIndexes: body.disks.map((d) => d.index) },
    );
    const rec: ReplicaRecord = {
      id: body.relationshipId,
      role: "replica",
      vmId: vm.id,
      vmName: body.vmName,
      primaryServer: peer.name,
      trustGroup: authorized.trustGroup,
      storageDir,
      state: "Waiting for initial replication",
      frequencySeconds: body.frequencySeconds,
      disks: body.disks,
      createdAt: new Date().toISOString(),
      lastSyncAt: null,
      lastAppliedSeq: -1,
      staged: null,
      stats: emptyStats(),
      reason: null,
    };
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

  receive(id: string, seq: number, base: number, source: AsyncIterable<Buffer>, peer: Peer): Promise<CycleAck> {
    this.authorizedRecord(id, peer);
    return this.lock(id).run(() => this.receiveLocked(id, seq, base, source, peer));
  }

  private async receiveLocked(id: string, seq: number, base: number, source: AsyncIterable<Buffer>, peer: Peer): Promise<CycleAck> {
    let rec = this.record(id);
    if (rec.state === "Suspended") throw conflict(`replication of '${rec.vmName}' is paused on the Replica server; resume it there first`);
    if (rec.staged) throw conflict(`cycle ${rec.staged.seq} of '${rec.vmName}' is still waiting to be applied on the Replica server: ${rec.reason ?? "see its events"}`);
    if (base !== rec.lastAppliedSeq || seq !== base + 1) {
      const err = conflict(
        `cycle ${seq} (based on ${base}) does not follow this replica, which holds cycle ${rec.lastAppliedSeq}; the primary must resend from there`,
        { lastAppliedSeq: rec.lastAppliedSeq },
      );
      this.deps.events.emit({ severity: "warning", kind: "replica.out-of-sequence", vmId: rec.vmId, relationshipId: id, message: err.message });
      throw err;
    }
    const started = Date.now();
    const expect = { relationshipId: id, seq, base, disks: new Map(rec.disks.map((d) => [d.index, d.sizeBytes])), auth: peer.auth };
    const initial = base === -1;
    try {
      let result;
      if (initial) {
        rec = { ...rec, state: "Initial replication in progress" };
        this.deps.repo.save(rec);
        // Empty images: skipped zero runs then read back as zeros, whatever an earlier
        // interrupted attempt left behind; a rejected copy leaves nothing of itself.
        await this.emptyDisks(rec);
        const writer = await DiskWriter.open(this.diskPaths(rec), this.deps.pool, true);
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
      } else {
        const stagingDir = join(rec.storageDir, ".staging");
        await mkdir(stagingDir, { recursive: true });
        const file = join(stagingDir, `cycle-${seq}.redo`);
        const redo = await RedoWriter.create(file);
        let frames: ReceivedFrame[] | undefined;
        try {
          result = await receiveCycle(source, expect, async (f) => {
            if (redo.bytes > 0) failpoint("replica.receive-mid");
            // Staged decompressed: data that cannot be decoded is rejected now, before
            // anything is staged, and applying is nothing but writes.
            if (!(f.header.flags & FLAG_ZSTD)) return redo.add(f);
            const payload = await this.deps.pool.decode(f.payload, f.header.length).catch((err: Error) => {
              throw new FrameError(`frame ${f.header.index} does not decompress: ${err.message}`);
            });
            const header = { ...f.header, flags: f.header.flags & ~FLAG_ZSTD, payloadLength: payload.length };
            return redo.add({ header, headerBuf: encodeFrame(header, payload), payload });
          });
          frames = await redo.finish();
        } catch (err) {
          await redo.discard();
          throw err;
        }
        rec = { ...rec, staged: { seq, file } };
        this.deps.repo.save(rec);
        failpoint("replica.after-staged");
        await this.applyStaged(rec, frames);
      }
      const appliedAt = new Date().toISOString();
      const latency = Date.now() - started;
      rec = this.record(id);
      rec = {
        ...rec,
        lastAppliedSeq: seq,
        lastSyncAt: appliedAt,
        state: "Replicating",
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
      this.deps.repo.save(rec);
      this.deps.repo.recordCycle({ relationshipId: id, seq, status: "applied", startedAt: new Date(started).toISOString(), changedBytes: result.dataBytes, wireBytes: result.wireBytes });
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
      this.deps.repo.recordCycle({ relationshipId: id, seq, status: "rejected", startedAt: new Date(started).toISOString(), changedBytes: 0, wireBytes: 0, error: message });
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

  private async emptyDisks(rec: ReplicaRecord): Promise<void> {
    for (const [i, p] of this.diskPaths(rec)) {
      await truncate(p, 0);
      await truncate(p, rec.disks.find((d) => d.index === i)!.sizeBytes);
    }
  }

  /**
   * Applies a staged cycle (again, after a crash) and clears the staged mark: from the frames
   * still in memory when given, else from the redo file.
   */
  private async applyStaged(rec: ReplicaRecord, frames?: ReceivedFrame[]): Promise<void> {
    const staged = rec.staged!;
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
    this.deps.repo.save({ ...latest, staged: null, lastAppliedSeq: Math.max(latest.lastAppliedSeq, staged.seq) });
    await rm(staged.file, { force: true });
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
    const rec = this.record(id);
    await this.lock(id).drain();
    this.deps.repo.delete(id);
    await rm(join(rec.storageDir, ".staging"), { recursive: true, force: true });
    const vm = this.deps.hypervisor.find(rec.vmId);
    if (vm) {
      const { replicaOf: _, ...config } = vm.config;
      vm.config = config;
      await vm.saveConfig();
    }
    this.deps.events.emit({
      severity: "info",
      kind: "replica.removed",
      vmId: rec.vmId,
      relationshipId: id,
      message: `Replication of '${rec.vmName}' was removed on the Replica server; the virtual machine and its disks were kept.`,
    });
  }
}
