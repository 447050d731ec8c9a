/**
 * One cycle on the Replica server, from the stream to the disks: verified frame by frame,
 * a delta staged in a redo file made durable before it is applied (again after a crash), the
 * initial copy written straight to emptied disks, and the recovery history updated in the
 * same save that records the cycle applied (replica-store.ts holds the relationships).
 */
import { createReadStream } from "node:fs";
import { mkdir, rm, truncate } from "node:fs/promises";
import { join } from "node:path";
import type { EventLog } from "../state/events.js";
import type { RelationshipRepo, ReplicaRecord } from "../state/relationships.js";
import { AgentError, conflict } from "../errors.js";
import { hourSlot, nowIso } from "../util/clock.js";
import { failpoint } from "../util/failpoints.js";
import { DiskWriter } from "./apply.js";
import type { CodecPool } from "./codec-pool.js";
import type { BufferPool } from "../util/buffer-pool.js";
import { readFileChunks } from "../util/direct-file.js";
import { encodeFrame, FLAG_ZSTD, FrameError, readFrames, type CycleMarks } from "./frames.js";
import { receiveCycle, type ReceivedFrame } from "./receiver.js";
import type { RecoveryHistory, Range } from "./recovery/recovery-history.js";
import { RedoWriter } from "./redo-log.js";
import type { Peer } from "./peer-gate.js";
import { ackMac } from "./stream-auth.js";

export interface CycleAck {
  relationshipId: string;
  seq: number;
  appliedAt: string;
  dataBytes: number;
  wireBytes: number;
  /** HTTP mode: proves this acknowledgement comes from the replica, for this very stream. */
  ackMac?: string;
}

/** What a cycle needs of the replica store. */
export interface CycleContext {
  repo: RelationshipRepo;
  events: EventLog;
  pool: CodecPool;
  record(id: string): ReplicaRecord;
  history(rec: ReplicaRecord): Promise<RecoveryHistory>;
  diskPaths(rec: ReplicaRecord): Map<number, string>;
}

export class CycleIntake {
  constructor(private readonly ctx: CycleContext) {}

  /** Receives, verifies, stages and applies one cycle; the caller holds the relationship's lock. */
  async receive(id: string, seq: number, base: number, source: AsyncIterable<Buffer>, peer: Peer, resync: boolean): Promise<CycleAck> {
    let rec = this.ctx.record(id);
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
      this.ctx.events.emit({ severity: "warning", kind: "replica.out-of-sequence", vmId: rec.vmId, relationshipId: id, message: err.message });
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
        this.ctx.repo.save(rec);
        // Empty images: skipped zero runs then read back as zeros, whatever an earlier
        // interrupted attempt left behind; a rejected copy leaves nothing of itself. They
        // start at length 0 and the copy appends (filling holes of a sparse file costs the
        // kernel about three times as much); the writer sets their sizes before the sync.
        await this.emptyDisks(rec, false);
        const writer = await DiskWriter.open(this.ctx.diskPaths(rec), this.ctx.pool, true, this.diskSizes(rec));
        try {
          let n = 0;
          result = await receiveCycle(source, { ...expect, payloads: this.ctx.pool.buffers }, async (f) => {
            if (++n === 3) failpoint("replica.initial-mid");
            await writer.write(f);
          });
        } catch (err) {
          await writer.abort();
          await this.emptyDisks(rec);
          throw err;
        }
        await writer.finish();
        await this.commitCycle(this.ctx.record(id), seq, result.marks, true);
      } else {
        const stagingDir = join(rec.storageDir, ".staging");
        await mkdir(stagingDir, { recursive: true });
        const file = join(stagingDir, `cycle-${seq}.redo`);
        const buffers = this.ctx.pool.buffers;
        const redo = await RedoWriter.create(file, buffers);
        let bytes: number;
        const ranges: Range[] = [];
        try {
          result = await receiveCycle(source, { ...expect, payloads: buffers }, async (f) => {
            if (redo.bytes > 0) failpoint("replica.receive-mid");
            ranges.push({ disk: f.header.disk, offset: f.header.offset, length: f.header.length });
            // Staged decompressed: data that cannot be decoded is rejected now, before
            // anything is staged, and applying is nothing but writes.
            if (!(f.header.flags & FLAG_ZSTD)) return redo.add(f);
            let payload: Buffer;
            try {
              payload = this.ctx.pool.decode(f.payload, f.header.length, buffers);
            } catch (err) {
              throw new FrameError(`frame ${f.header.index} does not decompress: ${(err as Error).message}`);
            } finally {
              f.release?.();
            }
            const header = { ...f.header, flags: f.header.flags & ~FLAG_ZSTD, payloadLength: payload.length };
            return redo.add({ header, headerBuf: encodeFrame(header, payload), payload, release: () => buffers.release(payload) });
          });
          if (Boolean(result.marks.resync) !== resync) throw new FrameError("the stream's resynchronization mark does not match the request: misdirected or altered data");
          bytes = await redo.finish();
        } catch (err) {
          await redo.discard();
          throw err;
        }
        rec = { ...rec, staged: { seq, file, bytes, marks: result.marks } };
        this.saveDuringCycle(rec);
        failpoint("replica.after-staged");
        await this.applyStaged(rec, ranges);
      }
      const appliedAt = nowIso();
      const latency = Date.now() - started;
      rec = this.ctx.record(id);
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
      this.ctx.repo.recordCycle({ relationshipId: id, seq, status: "applied", startedAt: startedIso, changedBytes: result.dataBytes, wireBytes: result.wireBytes });
      this.ctx.events.emit({
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
      const now = this.ctx.record(id);
      const message = (err as Error).message;
      this.ctx.repo.save({ ...now, state: initial ? "Waiting for initial replication" : now.state, stats: { ...now.stats, failedCycles: now.stats.failedCycles + 1, lastError: message } });
      this.ctx.repo.recordCycle({ relationshipId: id, seq, status: "rejected", startedAt: startedIso, changedBytes: 0, wireBytes: 0, error: message });
      this.ctx.events.emit({
        severity: "error",
        kind: err instanceof FrameError ? "replica.cycle-rejected" : "replica.cycle-failed",
        vmId: now.vmId,
        relationshipId: id,
        message: `Cycle ${seq} of '${now.vmName}' from '${peer.name}' was rejected and not applied: ${message}`,
        data: { seq },
      });
      if (err instanceof FrameError) throw new AgentError(422, "CYCLE_REJECTED", message);
      throw err;
    } finally {
      // A large cycle kept its frames in memory: let most of that go again.
      this.ctx.pool.trimBuffers();
    }
  }

  /** Empties the replica's disk images (an initial copy or an import starts from nothing). */
  async emptyDisks(rec: ReplicaRecord, sized = true): Promise<void> {
    const sizes = this.diskSizes(rec);
    for (const [i, p] of this.ctx.diskPaths(rec)) {
      await truncate(p, 0);
      if (sized) await truncate(p, sizes.get(i)!);
    }
  }

  private diskSizes(rec: ReplicaRecord): Map<number, number> {
    return new Map(rec.disks.map((d) => [d.index, d.sizeBytes]));
  }

  /** Applies a staged cycle from its redo file (again, after a crash) and clears the staged mark. */
  async applyStaged(rec: ReplicaRecord, ranges?: Range[]): Promise<void> {
    const staged = rec.staged!;
    let writer: DiskWriter | undefined;
    let n = 0;
    try {
      const history = await this.ctx.history(rec);
      // A resynchronization deletes the points instead (they no longer describe a history).
      const forPoints = !staged.marks?.resync;
      if (history.recording(forPoints)) {
        // Before-images first, durably: only then may the new data overwrite them.
        ranges ??= await rangesOf(staged, this.ctx.pool.buffers);
        await history.beforeApply(ranges, forPoints);
      }
      writer = await DiskWriter.open(this.ctx.diskPaths(rec), this.ctx.pool, false);
      for await (const f of stagedFrames(staged, this.ctx.pool.buffers)) {
        if (++n === 2) failpoint("replica.apply-mid");
        await writer.write(f);
      }
    } catch (err) {
      await writer?.abort();
      throw err;
    }
    await writer.finish();
    failpoint("replica.after-apply");
    const latest = this.ctx.record(rec.id);
    await this.commitCycle({ ...latest, staged: null, lastAppliedSeq: Math.max(latest.lastAppliedSeq, staged.seq) }, staged.seq, staged.marks, false);
    await rm(staged.file, { force: true });
  }

  /**
   * Saves an applied cycle together with what it does to the recovery history: the undo
   * logs' durable sizes, a new point when the primary marked one, the oldest points pruned
   * to the configured count. One save, so that a crash leaves either all of it or none.
   */
  private async commitCycle(rec: ReplicaRecord, seq: number, marks: CycleMarks | undefined, initial: boolean): Promise<void> {
    const history = await this.ctx.history(rec);
    const keep = marks?.recoveryHistory ?? rec.recoveryHistory;
    // An initial copy or a resynchronization rewrote the disks: no earlier point describes them any more.
    const reset = initial || Boolean(marks?.resync);
    let points = reset ? [] : history.durablePoints();
    if (marks?.resync && rec.points.length > 0) {
      this.ctx.events.emit({ severity: "warning", kind: "replica.points-deleted", vmId: rec.vmId, relationshipId: rec.id, message: `${rec.points.length} recovery point(s) of '${rec.vmName}' older than the resynchronization were deleted: they no longer describe a consistent history.`, data: { count: rec.points.length } });
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
      this.ctx.events.emit({ severity: "info", kind: "replica.point-created", vmId: rec.vmId, relationshipId: rec.id, message: `Recovery point of '${rec.vmName}' as of ${p.at} was created (${p.kind}, cycle ${seq}).`, data: { pointId: p.id, seq, at: p.at, kind: p.kind } });
    }
    for (const p of pruned) {
      this.ctx.events.emit({ severity: "info", kind: "replica.point-pruned", vmId: rec.vmId, relationshipId: rec.id, message: `Recovery point of '${rec.vmName}' as of ${p.at} was deleted: ${keep} additional point${keep === 1 ? " is" : "s are"} kept.`, data: { pointId: p.id } });
    }
  }

  /**
   * Saves a record a cycle wrote from what it read earlier. A pause on the Replica server does
   * not wait for the cycle under way (it refuses the next one), so it may have come meanwhile:
   * it stays.
   */
  private saveDuringCycle(rec: ReplicaRecord): ReplicaRecord {
    const saved = this.ctx.record(rec.id).state === "Suspended" ? { ...rec, state: "Suspended" as const } : rec;
    this.ctx.repo.save(saved);
    return saved;
  }
}

/**
 * The frames of a redo file, payloads in the pool's buffers: up to its recorded length (the
 * rest is padding), read with direct I/O as it was written; a record from before lengths were
 * recorded reads the whole file through the page cache.
 */
function stagedFrames(staged: NonNullable<ReplicaRecord["staged"]>, pool: BufferPool): AsyncGenerator<ReceivedFrame> {
  if (staged.bytes === undefined) return readFrames(createReadStream(staged.file, { highWaterMark: 1024 * 1024 }), pool);
  return readFrames(readFileChunks(staged.file, staged.bytes), pool);
}

/** The disk ranges a staged cycle writes, read back from its redo file. */
async function rangesOf(staged: NonNullable<ReplicaRecord["staged"]>, pool: BufferPool): Promise<Range[]> {
  const ranges: Range[] = [];
  for await (const f of stagedFrames(staged, pool)) {
    ranges.push({ disk: f.header.disk, offset: f.header.offset, length: f.header.length });
    f.release?.();
  }
  return ranges;
}
