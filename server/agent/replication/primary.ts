/**
 * One primary relationship: its schedule and its cycles.
 *
 * freeze → read frozen extents → frame, compress, checksum → stream → the replica makes it
 * durable and applies it → ack → commit. Any failure gives the frozen extents back to the
 * next cycle, so nothing is ever lost; the next attempt first asks the replica which cycle
 * it holds (the ack may have been lost after a successful apply).
 */
import { randomBytes } from "node:crypto";
import type { FrozenCycle, ReplicableVm } from "../hypervisor/types.js";
import type { EventLog } from "../state/events.js";
import type { PrimaryRecord, RecoveryPointKind, RelationshipRepo } from "../state/relationships.js";
import type { PeerClient, PeerTarget } from "../transport/peer-client.js";
import { PeerError } from "../transport/peer-client.js";
import type { CodecPool } from "./codec-pool.js";
import { cycleStream, type SendStats } from "./sender.js";
import { failpoint } from "../util/failpoints.js";
import type { CycleAck } from "./replica-store.js";
import { ackMac, macMatches } from "./stream-auth.js";
import type { CycleMarks } from "./frames.js";
import { hourSlot, now, nowIso } from "../util/clock.js";
import type { BlockHashesBody } from "../../shared/agent-api.js";
import { BLOCK_SIZE } from "../tracking/tracked-disk.js";
import { TrackingLostError } from "../hypervisor/types.js";
import { conflict } from "../errors.js";
import { blockHashesMac, HASH_BYTES } from "./block-hashes.js";
import { MiB, throttled, TokenBucket } from "./token-bucket.js";
import { advance, compareSegment, newProgress, nextSegment, resyncDue, type ResyncProgress, type Segment } from "./resync.js";

const RETRY_MIN_MS = 1000;
/** How often a required resynchronization is checked against its policy and schedule. */
const POLICY_CHECK_MS = 5000;

/** A guest that has not quiesced by then gets a crash-consistent point instead. */
const QUIESCE_TIMEOUT_MS = 5000;

export interface PrimaryDeps {
  repo: RelationshipRepo;
  events: EventLog;
  pool: CodecPool;
  peers: PeerClient;
  /** HTTP mode: the shared token signing the stream. */
  token?: string;
  /** The limit shared by every relationship of this host, if one is set. */
  hostBucket: () => TokenBucket | undefined;
  /** Turns the VM off at once: its replica was failed over, so it must not run as a second primary. */
  fence: (vmId: string) => Promise<void>;
  /** This host's replication endpoint for a mode, if it runs one (sent to the replica). */
  returnPath: (mode: "https" | "http") => { port: number; authMode: "https" | "http" } | null;
}

export interface CycleOutcome {
  seq: number;
  ok: boolean;
  changedBytes: number;
  wireBytes: number;
  error?: string;
}

export class PrimaryReplication {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CycleOutcome | undefined> | undefined;
  private retryMs = RETRY_MIN_MS;
  private stopped = false;
  private policyTimer: NodeJS.Timeout | undefined;
  private bucket: TokenBucket | undefined;
  /** Bytes let onto the wire since the agent started, cycles in flight included (throughput). */
  sentBytes = 0;
  /** Set while preparing a planned failover: cycles then tell the replica where to reverse to. */
  preparing = false;
  private abort: AbortController | undefined;

  constructor(
    private rec: PrimaryRecord,
    readonly vm: ReplicableVm,
    private readonly deps: PrimaryDeps,
  ) {}

  get record(): PrimaryRecord {
    return this.rec;
  }

  get target(): PeerTarget {
    return { server: this.rec.replicaServer, port: this.rec.replicaPort, mode: this.rec.authMode };
  }

  update(patch: Partial<PrimaryRecord>): PrimaryRecord {
    this.rec = { ...this.rec, ...patch };
    this.deps.repo.save(this.rec);
    return this.rec;
  }

  private event(severity: "info" | "warning" | "error", kind: string, message: string, data?: Record<string, unknown>): void {
    this.deps.events.emit({ severity, kind, vmId: this.rec.vmId, relationshipId: this.rec.id, message, data });
  }

  setState(state: PrimaryRecord["state"], reason: string | null = null): void {
    if (this.rec.state === state && this.rec.reason === reason) return;
    const from = this.rec.state;
    this.update({ state, reason });
    this.event(state === "Error" || state === "Resynchronization required" ? "error" : "info", "replication.state", `Replication of '${this.rec.vmName}' changed from ${from} to ${state}${reason ? `: ${reason}` : ""}.`, {
      from,
      to: state,
    });
    if (state === "Resynchronization required") setImmediate(() => this.applyResyncPolicy());
  }

  /** Starts a scheduled initial replication, or a required resynchronization when due. */
  private applyResyncPolicy(): void {
    const t = now();
    if (!this.stopped && this.rec.state === "Ready for initial replication" && this.rec.initialStartAt && Date.parse(this.rec.initialStartAt) <= t) {
      this.update({ initialStartAt: null });
      this.setState("Initial replication in progress");
      this.schedule(0);
      return;
    }
    if (this.stopped || this.rec.state !== "Resynchronization required") return;
    if (resyncDue(this.rec, t)) {
      this.resynchronize().catch((err: Error) => this.event("error", "replication.resync-failed", `Resynchronization of '${this.rec.vmName}' could not start: ${err.message}`));
    }
  }

  /** Cycles run only in these states. */
  private get active(): boolean {
    return ["Initial replication in progress", "Replicating", "Error", "Resynchronizing"].includes(this.rec.state);
  }

  start(): void {
    this.stopped = false;
    this.policyTimer ??= setInterval(() => this.applyResyncPolicy(), POLICY_CHECK_MS);
    this.schedule(this.rec.lastAckedSeq < 0 || this.rec.state === "Resynchronizing" ? 0 : this.rec.frequencySeconds * 1000);
  }

  /** Stops the schedule and cuts a cycle in flight short (its changes stay pending). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.policyTimer);
    this.policyTimer = undefined;
    this.abort?.abort();
    await this.running;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped || !this.active) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    const startedAt = Date.now();
    const outcome = await this.runCycle();
    if (!outcome) return;
    if (outcome.ok) {
      this.retryMs = RETRY_MIN_MS;
      const period = this.rec.frequencySeconds * 1000;
      const elapsed = Date.now() - startedAt;
      if (elapsed > period) this.update({ stats: { ...this.rec.stats, missedCycles: this.rec.stats.missedCycles + Math.floor(elapsed / period) } });
      // A resynchronization goes on range after range; then the usual schedule resumes.
      this.schedule(this.rec.state === "Resynchronizing" ? 0 : Math.max(0, period - elapsed));
    } else {
      this.schedule(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, this.rec.frequencySeconds * 1000);
    }
  }

  /** Runs one cycle now (waiting for one in progress first). */
  async replicateNow(): Promise<CycleOutcome | undefined> {
    while (this.running) await this.running;
    const outcome = await this.runCycle();
    if (outcome?.ok) this.schedule(this.rec.state === "Resynchronizing" ? 0 : this.rec.frequencySeconds * 1000);
    return outcome;
  }

  private runCycle(): Promise<CycleOutcome | undefined> {
    if (this.running) return this.running;
    if (!this.active) return Promise.resolve(undefined);
    this.running = this.cycle().finally(() => (this.running = undefined));
    return this.running;
  }

  /** The replica was failed over: this VM is turned off and may not start here any more. */
  private async fenced(): Promise<void> {
    this.setState("Failover complete", `the Replica server ${this.rec.replicaServer} failed this virtual machine over; it was turned off here and may not start as a second primary. Run Reverse Replication on ${this.rec.replicaServer} to make it the replica`);
    await this.deps.fence(this.rec.vmId);
    this.event("error", "replication.fenced", `'${this.rec.vmName}' was fenced: its Replica server ${this.rec.replicaServer} failed it over.`);
  }

  private async reconcile(): Promise<void> {
    const status = await this.replicaStatus();
    if (status.state === "Failed over (waiting for completion)" || status.state === "Failover complete") {
      await this.fenced();
      throw new Error(`the Replica server failed '${this.rec.vmName}' over`);
    }
    if (status.lastAppliedSeq < this.rec.lastAckedSeq) {
      // The replica acknowledged cycles it no longer holds (restored from a backup, or an
      // acknowledgement that was never its own): what it lacks is unknown.
      this.setState(
        "Resynchronization required",
        `The Replica server holds cycle ${status.lastAppliedSeq} but had acknowledged cycle ${this.rec.lastAckedSeq}; the disks must be compared before replication can continue.`,
      );
      throw new Error(`replica is behind what it acknowledged (${status.lastAppliedSeq} < ${this.rec.lastAckedSeq})`);
    }
    if (status.lastAppliedSeq !== this.rec.lastAckedSeq) {
      this.event("info", "replication.reconciled", `The Replica server holds cycle ${status.lastAppliedSeq} of '${this.rec.vmName}'; continuing from there.`, {
        was: this.rec.lastAckedSeq,
        now: status.lastAppliedSeq,
      });
    }
    this.update({ lastAckedSeq: status.lastAppliedSeq, reconcile: false });
  }

  /** The per-VM limit (kept in step with the record) and the host's, which cycles obey. */
  private buckets(): TokenBucket[] {
    const limit = this.rec.bandwidthLimitMiBps ? this.rec.bandwidthLimitMiBps * MiB : 0;
    if (!limit) this.bucket = undefined;
    else if (!this.bucket) this.bucket = new TokenBucket(limit);
    else if (this.bucket.rate !== limit) this.bucket.setRate(limit);
    const host = this.deps.hostBucket();
    return [...(this.bucket ? [this.bucket] : []), ...(host ? [host] : [])];
  }

  private replicaStatus(): Promise<{ lastAppliedSeq: number; state: string }> {
    return this.deps.peers.json(this.target, "GET", `/replication/v1/relationships/${this.rec.id}`);
  }

  /** The replica's block hashes; in HTTP mode only when signed by the Replica server for this request. */
  private async replicaHashes(body: BlockHashesBody): Promise<Buffer> {
    const nonce = randomBytes(16).toString("hex");
    const res = await this.deps.peers.json<{ hashes: string; mac: string | null }>(this.target, "POST", `/replication/v1/relationships/${this.rec.id}/block-hashes`, body, nonce);
    const hashes = Buffer.from(res.hashes, "base64");
    const expected = (body.ranges.reduce((n, [, l]) => n + l, 0) / body.blockSize) * HASH_BYTES;
    if (hashes.length !== expected) throw new Error(`the Replica server answered ${hashes.length} bytes of block hashes instead of ${expected}`);
    if (this.rec.authMode === "http" && this.deps.token && !macMatches(blockHashesMac(this.deps.token, this.rec.id, nonce, body, hashes), res.mac)) {
      throw new Error("the block hashes are not signed by the Replica server for this request: not trusting them");
    }
    return hashes;
  }

  /**
   * Hyper-V's rule: when the changes waiting to be sent exceed half the replicated disk (a long
   * pause, a replica unreachable for long), resynchronization is required. Not applied right
   * after an agent restart, whose recovered change set is a coarse superset of the real one.
   */
  backlogTooLarge(): boolean {
    if (this.rec.lastAckedSeq < 0) return false;
    const total = this.rec.disks.reduce((n, d) => n + d.sizeBytes, 0);
    const pending = this.vm.pendingBytes();
    if (pending <= total / 2) return false;
    this.setState("Resynchronization required", `${pending} bytes of changes are pending, more than half of the ${total} bytes of replicated disk; comparing the disks sends less`);
    return true;
  }

  /**
   * Starts a resynchronization now: from Resynchronization required, or (`existingCopy`) as
   * the initial replication onto a copy the Replica server already has.
   */
  async resynchronize(existingCopy = false): Promise<void> {
    const from = existingCopy ? "Ready for initial replication" : "Resynchronization required";
    if (this.rec.state !== from) {
      throw conflict(`replication of '${this.rec.vmName}' is ${this.rec.state}; a resynchronization starts from ${from}`, { state: this.rec.state });
    }
    while (this.running) await this.running;
    if (this.rec.state !== from) return; // started meanwhile
    // What was pending is superseded by comparing every block; from here on, changes are tracked.
    await this.vm.clearChanged(this.rec.disks.map((d) => d.index));
    const progress = newProgress(this.rec.disks, new Date(now()).toISOString());
    this.update({ resync: progress, resyncAt: null, reconcile: true });
    this.setState("Resynchronizing");
    this.event("info", "replication.resync-started", `Resynchronization of '${this.rec.vmName}' started: ${progress.totalBytes} bytes of disk are compared with the replica block by block; only differing blocks are sent.`);
    this.schedule(0);
  }

  private resyncStep(before: ResyncProgress, seg: Segment, differing: number, stats: SendStats): void {
    const p = advance(this.rec.disks, before, seg, differing);
    const data = { comparedBytes: p.comparedBytes, totalBytes: p.totalBytes, differingBytes: p.differingBytes, wireBytes: stats.wireBytes };
    if (!seg.final) {
      this.update({ resync: p });
      const seconds = Math.max(0.001, (now() - Date.parse(p.startedAt)) / 1000);
      const rate = p.comparedBytes / seconds;
      this.event("info", "replication.resync-progress", `Resynchronizing '${this.rec.vmName}': ${Math.round((100 * p.comparedBytes) / p.totalBytes)}% compared, ${p.differingBytes} bytes differed so far.`, {
        ...data,
        bytesPerSecond: Math.round(rate),
        etaSeconds: Math.round((p.totalBytes - p.comparedBytes) / Math.max(rate, 1)),
      });
      return;
    }
    this.update({ resync: null });
    this.setState("Replicating");
    this.event("info", "replication.resync-complete", `Resynchronization of '${this.rec.vmName}' completed: ${p.comparedBytes} bytes compared, ${p.differingBytes} bytes differed and were sent; recovery points older than it were deleted on the Replica server.`, data);
  }

  /**
   * External media: cycles wait until the Replica server imported the initial copy; its
   * changes since the export then follow as ordinary cycles. Answers the outcome while waiting.
   */
  private async awaitImport(seq: number): Promise<CycleOutcome | undefined> {
    const waiting = (error: string): CycleOutcome => ({ seq, ok: false, changedBytes: 0, wireBytes: 0, error });
    try {
      const status = await this.replicaStatus();
      if (status.lastAppliedSeq < 0) return waiting(`waiting for Import Initial Replica on ${this.rec.replicaServer} from ${this.rec.awaitingImport!.folder}`);
    } catch (err) {
      return waiting((err as Error).message);
    }
    this.update({ awaitingImport: null, reconcile: true });
    this.event("info", "replication.imported", `The Replica server imported the initial copy of '${this.rec.vmName}'; the changes since the export follow.`);
    return undefined;
  }

  /** Initial replication: bytes done of the total, rate and ETA every 2 s, on the event stream. */
  private reportProgress(cycle: FrozenCycle, stats: SendStats): NodeJS.Timeout {
    const total = cycle.disks.reduce((n, d) => n + d.changedBytes, 0);
    const started = Date.now();
    return setInterval(() => {
      const done = stats.processedBytes ?? 0;
      const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
      this.event("info", "replication.initial-progress", `Initial replication of '${this.rec.vmName}': ${Math.round((100 * done) / Math.max(total, 1))}% (${done} of ${total} bytes).`, {
        done,
        total,
        bytesPerSecond: Math.round(rate),
        etaSeconds: Math.round((total - done) / Math.max(rate, 1)),
      });
    }, 2000);
  }

  /** Whether this cycle makes the hour's recovery point on the replica, and of which kind. */
  private pointDue(at: number): RecoveryPointKind | null {
    const r = this.rec;
    if (r.recoveryHistory === 0) return null;
    if (r.lastPointAt && hourSlot(Date.parse(r.lastPointAt)) >= hourSlot(at)) return null;
    const appDue =
      r.appConsistentFrequencyHours !== null && (!r.lastAppConsistentAt || hourSlot(at) - hourSlot(Date.parse(r.lastAppConsistentAt)) >= r.appConsistentFrequencyHours);
    return appDue ? "application-consistent" : "standard";
  }

  /** Freezes the disks; for an application-consistent point, with the guest quiesced. */
  private async freezeFor(kind: RecoveryPointKind | null): Promise<{ frozen: FrozenCycle; kind: RecoveryPointKind | null }> {
    let thaw: (() => void) | undefined;
    if (kind === "application-consistent") {
      try {
        thaw = await this.vm.quiesce(QUIESCE_TIMEOUT_MS);
      } catch (err) {
        kind = "standard";
        this.event("warning", "replication.quiesce-failed", `'${this.rec.vmName}' could not be quiesced, so this hour's recovery point is crash-consistent rather than application-consistent: ${(err as Error).message}.`);
      }
    }
    try {
      return { frozen: await this.vm.freeze(this.rec.disks.map((d) => d.index)), kind };
    } finally {
      thaw?.();
    }
  }

  private async cycle(): Promise<CycleOutcome> {
    const startedAt = new Date();
    // Cycle history is kept on the agent's clock (health windows); latency on the real one.
    const startedIso = nowIso();
    const stats: SendStats = { changedBytes: 0, dataBytes: 0, wireBytes: 0, frames: 0 };
    let seq = this.rec.lastAckedSeq + 1;
    let frozen: FrozenCycle | undefined;
    // From the first step on, so that stop() cuts a cycle short wherever it is.
    const abort = (this.abort = new AbortController());
    const stopping = () => {
      if (abort.signal.aborted) throw new Error("the agent is shutting down");
    };
    if (this.rec.awaitingImport) {
      const waiting = await this.awaitImport(seq);
      if (waiting) return waiting;
    }
    const resync = this.rec.state === "Resynchronizing" ? this.rec.resync : null;
    const segment = resync ? nextSegment(this.rec.disks, resync) : null;
    // Changes pile up while cycles fail; past half the disk, comparing it sends less.
    if (this.rec.state === "Error" && this.backlogTooLarge()) return { seq, ok: false, changedBytes: 0, wireBytes: 0, error: this.rec.reason ?? "" };
    let differingBytes = 0;
    try {
      let base = this.rec.lastAckedSeq;
      if (resync) {
        // Whatever the replica holds is what is compared: it need not be the last acknowledged cycle.
        const status = await this.replicaStatus();
        base = status.lastAppliedSeq;
        seq = Math.max(this.rec.lastAckedSeq, base) + 1;
        this.update({ reconcile: false });
      } else if (this.rec.reconcile) {
        await this.reconcile();
        seq = this.rec.lastAckedSeq + 1;
        base = this.rec.lastAckedSeq;
      }
      const initial = base < 0 && !resync;
      if (initial) this.setState("Initial replication in progress");
      stopping();
      const at = now();
      if (segment) await this.vm.markChanged(segment.disk, segment.from / BLOCK_SIZE, segment.to / BLOCK_SIZE);
      const freeze = await this.freezeFor(segment ? null : this.pointDue(at));
      frozen = freeze.frozen;
      let toSend = frozen;
      if (segment) {
        const size = this.rec.disks.find((d) => d.index === segment.disk)!.sizeBytes;
        const compared = await compareSegment(frozen, segment, size, (body) => this.replicaHashes(body));
        toSend = compared.cycle;
        differingBytes = compared.differingBytes;
      }
      const marks: CycleMarks = {
        point: freeze.kind ? { kind: freeze.kind, at: new Date(at).toISOString() } : null,
        recoveryHistory: this.rec.recoveryHistory,
        frequencySeconds: this.rec.frequencySeconds,
        resync: segment ? { final: segment.final } : null,
        prepared: !segment && this.preparing,
        returnPath: this.deps.returnPath(this.rec.authMode),
      };
      const nonce = randomBytes(16).toString("hex");
      const auth = this.rec.authMode === "http" && this.deps.token ? { token: this.deps.token, nonce } : undefined;
      const progress = initial ? this.reportProgress(toSend, stats) : undefined;
      const ack = await this.deps.peers.stream<CycleAck>(
        this.target,
        `/replication/v1/relationships/${this.rec.id}/cycles/${seq}?base=${base}${segment ? "&resync=1" : ""}`,
        withFailpoint(throttled(cycleStream(toSend, this.deps.pool, { relationshipId: this.rec.id, seq, base, compress: this.rec.compression, marks, auth, reuseBuffers: true }, stats), () => this.buckets(), (n) => (this.sentBytes += n))),
        nonce,
        abort.signal,
      ).finally(() => clearInterval(progress));
      if (ack.seq !== seq) throw new Error(`the Replica server acknowledged cycle ${ack.seq} instead of ${seq}`);
      if (auth && !macMatches(ackMac(auth.token, { relationshipId: this.rec.id, seq, base, nonce }, stats.mac ?? ""), ack.ackMac)) {
        throw new Error("the acknowledgement is not signed by the Replica server for this stream: not trusting it, the changes stay pending");
      }
      failpoint("primary.after-ack");
      await frozen.commit();
      frozen = undefined;
      const latency = Date.now() - startedAt.getTime();
      this.update({
        lastAckedSeq: seq,
        lastSyncAt: nowIso(),
        lastPointAt: marks.point?.at ?? this.rec.lastPointAt,
        lastAppConsistentAt: marks.point?.kind === "application-consistent" ? marks.point.at : this.rec.lastAppConsistentAt,
        stats: {
          ...this.rec.stats,
          successfulCycles: this.rec.stats.successfulCycles + 1,
          changedBytes: this.rec.stats.changedBytes + stats.dataBytes,
          wireBytes: this.rec.stats.wireBytes + stats.wireBytes,
          maxCycleBytes: Math.max(this.rec.stats.maxCycleBytes, stats.wireBytes),
          totalLatencyMs: this.rec.stats.totalLatencyMs + latency,
        },
      });
      this.deps.repo.recordCycle({ relationshipId: this.rec.id, seq, status: "acknowledged", startedAt: startedIso, changedBytes: stats.dataBytes, wireBytes: stats.wireBytes });
      if (resync && segment) this.resyncStep(resync, segment, differingBytes, stats);
      else this.setState("Replicating");
      this.event("info", initial ? "replication.initial-complete" : "replication.cycle", initial
        ? `Initial replication of '${this.rec.vmName}' completed: ${stats.dataBytes} bytes of data, ${stats.wireBytes} bytes sent.`
        : `Cycle ${seq} of '${this.rec.vmName}' replicated: ${stats.dataBytes} bytes changed, ${stats.wireBytes} bytes sent.`, {
        seq,
        changedBytes: stats.dataBytes,
        wireBytes: stats.wireBytes,
        latencyMs: latency,
      });
      return { seq, ok: true, changedBytes: stats.dataBytes, wireBytes: stats.wireBytes };
    } catch (err) {
      if (frozen) await frozen.release();
      const message = (err as Error).message;
      if (err instanceof TrackingLostError) {
        this.setState("Resynchronization required", `Change tracking was lost (${message}). A resynchronization must compare the disks before replication can continue.`);
        return { seq, ok: false, changedBytes: 0, wireBytes: 0, error: message };
      }
      if (this.stopped) {
        this.update({ reconcile: true });
        this.event("info", "replication.cycle-interrupted", `Cycle ${seq} of '${this.rec.vmName}' was interrupted by the agent's shutdown; its changes stay pending.`, { seq });
        return { seq, ok: false, changedBytes: stats.dataBytes, wireBytes: stats.wireBytes, error: message };
      }
      this.update({ reconcile: true, stats: { ...this.rec.stats, failedCycles: this.rec.stats.failedCycles + 1, lastError: message } });
      this.deps.repo.recordCycle({ relationshipId: this.rec.id, seq, status: "failed", startedAt: startedIso, changedBytes: stats.dataBytes, wireBytes: stats.wireBytes, error: message });
      const refused = err instanceof PeerError && (err.status === 401 || err.status === 403);
      if (err instanceof PeerError && err.code === "FAILED_OVER") {
        if (this.rec.state !== "Failover complete") await this.fenced();
      } else if (err instanceof PeerError && err.status === 409 && !resync) {
        // Out of sequence: find out now whether the replica lost cycles it had acknowledged.
        await this.reconcile().catch(() => undefined);
      }
      this.event("error", "replication.cycle-failed", `Cycle ${seq} of '${this.rec.vmName}' failed and will be retried; its changes stay pending: ${message}`, {
        seq,
        status: err instanceof PeerError ? err.status : undefined,
      });
      // Resynchronization required (set by reconcile) outranks a plain error, and a
      // resynchronization keeps its place and is retried.
      if ((this.rec.lastAckedSeq >= 0 || refused) && !["Resynchronization required", "Resynchronizing", "Failover complete"].includes(this.rec.state)) this.setState("Error", message);
      return { seq, ok: false, changedBytes: stats.dataBytes, wireBytes: stats.wireBytes, error: message };
    }
  }
}

/** Crashes the primary half-way through a send when the test failpoint is armed. */
async function* withFailpoint(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of source) {
    // The second write: frames went out, the end frame did not (small frames go in one write).
    if (++n === 2) failpoint("primary.send-mid");
    yield chunk;
  }
}
