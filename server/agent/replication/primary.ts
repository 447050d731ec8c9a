/**
 * One primary relationship: its schedule and its cycles.
 *
 * freeze → read frozen extents → frame, compress, checksum → stream → the replica makes it
 * durable and applies it → ack → commit. Any failure gives the frozen extents back to the
 * next cycle, so nothing is ever lost; the next attempt first asks the replica which cycle
 * it holds (the ack may have been lost after a successful apply).
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { FrozenCycle, ReplicableVm } from "../hypervisor/types.js";
import type { EventLog } from "../state/events.js";
import type { PrimaryRecord, RecoveryPointKind, RelationshipRepo } from "../state/relationships.js";
import type { PeerClient, PeerTarget } from "../transport/peer-client.js";
import { PeerError } from "../transport/peer-client.js";
import type { CodecPool } from "./codec-pool.js";
import { cycleStream, type SendStats } from "./sender.js";
import { failpoint } from "../util/failpoints.js";
import type { CycleAck } from "./replica-store.js";
import { ackMac } from "./stream-auth.js";
import type { CycleMarks } from "./frames.js";
import { hourSlot, now } from "../util/clock.js";

const RETRY_MIN_MS = 1000;
/** A guest that has not quiesced by then gets a crash-consistent point instead. */
const QUIESCE_TIMEOUT_MS = 5000;

export interface PrimaryDeps {
  repo: RelationshipRepo;
  events: EventLog;
  pool: CodecPool;
  peers: PeerClient;
  /** HTTP mode: the shared token signing the stream. */
  token?: string;
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
  }

  /** Cycles run only in these states. */
  private get active(): boolean {
    return ["Initial replication in progress", "Replicating", "Error"].includes(this.rec.state);
  }

  start(): void {
    this.stopped = false;
    this.schedule(this.rec.lastAckedSeq < 0 ? 0 : this.rec.frequencySeconds * 1000);
  }

  /** Stops the schedule and cuts a cycle in flight short (its changes stay pending). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
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
      this.schedule(Math.max(0, period - elapsed));
    } else {
      this.schedule(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, this.rec.frequencySeconds * 1000);
    }
  }

  /** Runs one cycle now (waiting for one in progress first). */
  async replicateNow(): Promise<CycleOutcome | undefined> {
    while (this.running) await this.running;
    const outcome = await this.runCycle();
    if (outcome?.ok) this.schedule(this.rec.frequencySeconds * 1000);
    return outcome;
  }

  private runCycle(): Promise<CycleOutcome | undefined> {
    if (this.running) return this.running;
    if (!this.active) return Promise.resolve(undefined);
    this.running = this.cycle().finally(() => (this.running = undefined));
    return this.running;
  }

  private async reconcile(): Promise<void> {
    const status = await this.deps.peers.json<{ lastAppliedSeq: number; state: string }>(
      this.target,
      "GET",
      `/replication/v1/relationships/${this.rec.id}`,
    );
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
    const stats: SendStats = { changedBytes: 0, dataBytes: 0, wireBytes: 0, frames: 0 };
    let seq = this.rec.lastAckedSeq + 1;
    let frozen: FrozenCycle | undefined;
    // From the first step on, so that stop() cuts a cycle short wherever it is.
    const abort = (this.abort = new AbortController());
    const stopping = () => {
      if (abort.signal.aborted) throw new Error("the agent is shutting down");
    };
    try {
      if (this.rec.reconcile) {
        await this.reconcile();
        seq = this.rec.lastAckedSeq + 1;
      }
      const initial = this.rec.lastAckedSeq < 0;
      if (initial) this.setState("Initial replication in progress");
      stopping();
      const at = now();
      const freeze = await this.freezeFor(this.pointDue(at));
      frozen = freeze.frozen;
      const marks: CycleMarks = {
        point: freeze.kind ? { kind: freeze.kind, at: new Date(at).toISOString() } : null,
        recoveryHistory: this.rec.recoveryHistory,
        frequencySeconds: this.rec.frequencySeconds,
      };
      const base = this.rec.lastAckedSeq;
      const nonce = randomBytes(16).toString("hex");
      const auth = this.rec.authMode === "http" && this.deps.token ? { token: this.deps.token, nonce } : undefined;
      const ack = await this.deps.peers.stream<CycleAck>(
        this.target,
        `/replication/v1/relationships/${this.rec.id}/cycles/${seq}?base=${base}`,
        withFailpoint(cycleStream(frozen, this.deps.pool, { relationshipId: this.rec.id, seq, base, compress: this.rec.compression, marks, auth }, stats)),
        nonce,
        abort.signal,
      );
      if (ack.seq !== seq) throw new Error(`the Replica server acknowledged cycle ${ack.seq} instead of ${seq}`);
      if (auth) {
        const want = Buffer.from(ackMac(auth.token, { relationshipId: this.rec.id, seq, base, nonce }, stats.mac ?? ""), "hex");
        const got = Buffer.from(ack.ackMac ?? "", "hex");
        if (got.length !== want.length || !timingSafeEqual(got, want)) {
          throw new Error("the acknowledgement is not signed by the Replica server for this stream: not trusting it, the changes stay pending");
        }
      }
      failpoint("primary.after-ack");
      await frozen.commit();
      frozen = undefined;
      const latency = Date.now() - startedAt.getTime();
      this.update({
        lastAckedSeq: seq,
        lastSyncAt: new Date().toISOString(),
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
      this.deps.repo.recordCycle({ relationshipId: this.rec.id, seq, status: "acknowledged", startedAt: startedAt.toISOString(), changedBytes: stats.dataBytes, wireBytes: stats.wireBytes });
      this.setState("Replicating");
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
      if (this.stopped) {
        this.update({ reconcile: true });
        this.event("info", "replication.cycle-interrupted", `Cycle ${seq} of '${this.rec.vmName}' was interrupted by the agent's shutdown; its changes stay pending.`, { seq });
        return { seq, ok: false, changedBytes: stats.dataBytes, wireBytes: stats.wireBytes, error: message };
      }
      this.update({ reconcile: true, stats: { ...this.rec.stats, failedCycles: this.rec.stats.failedCycles + 1, lastError: message } });
      this.deps.repo.recordCycle({ relationshipId: this.rec.id, seq, status: "failed", startedAt: startedAt.toISOString(), changedBytes: stats.dataBytes, wireBytes: stats.wireBytes, error: message });
      const refused = err instanceof PeerError && (err.status === 401 || err.status === 403);
      this.event("error", "replication.cycle-failed", `Cycle ${seq} of '${this.rec.vmName}' failed and will be retried; its changes stay pending: ${message}`, {
        seq,
        status: err instanceof PeerError ? err.status : undefined,
      });
      // Resynchronization required (set by reconcile) outranks a plain error.
      if ((this.rec.lastAckedSeq >= 0 || refused) && this.rec.state !== "Resynchronization required") this.setState("Error", message);
      return { seq, ok: false, changedBytes: stats.dataBytes, wireBytes: stats.wireBytes, error: message };
    }
  }
}

/** Crashes the primary half-way through a send when the test failpoint is armed. */
async function* withFailpoint(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of source) {
    if (++n === 4) failpoint("primary.send-mid");
    yield chunk;
  }
}
