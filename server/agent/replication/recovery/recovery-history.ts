/**
 * The recovery points of one replica relationship, kept as the design says: the replica disk
 * is the newest state, and each kept point owns an undo log of the before-images that later
 * cycles overwrote. A point is read as the disk with the undo logs from that point onwards
 * laid over it, oldest last; pruning the oldest point deletes one file.
 *
 * Views may be read while cycles keep arriving: a cycle's before-images are in the log (and
 * its index) before the new data reaches the disk, and a view reads the disk first and the
 * logs after, so whatever it read from the disk is either still current or covered.
 */
import { randomUUID } from "node:crypto";
import { open, readdir, rm, mkdir, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { RecoveryPointRecord, ReplicaRecord } from "../../state/relationships.js";
import { readFully } from "../../util/files.js";
import { UndoLog } from "./undo-log.js";

export interface Range {
  disk: number;
  offset: number;
  length: number;
}

export class RecoveryHistory {
  /** Undo logs of the kept points, oldest first, parallel to the record's points. */
  private logs: { point: RecoveryPointRecord; log: UndoLog }[] = [];
  /** Points whose undo logs could not be opened on load: they can no longer be restored. */
  lost: { points: RecoveryPointRecord[]; reason: string } | null = null;
  /** Logs of views on the latest point: they record what cycles overwrite while they live. */
  private readonly transient = new Set<UndoLog>();

  private constructor(
    readonly dir: string,
    private readonly diskPaths: () => Map<number, string>,
  ) {}

  static async load(rec: ReplicaRecord, diskPaths: () => Map<number, string>): Promise<RecoveryHistory> {
    const dir = join(rec.storageDir, ".points");
    await mkdir(dir, { recursive: true });
    const h = new RecoveryHistory(dir, diskPaths);
    let points = rec.points ?? [];
    // Reading a point needs every log from it on: a damaged log takes the older points with it.
    for (let i = points.length - 1; i >= 0; i--) {
      const point = points[i]!;
      try {
        h.logs.unshift({ point, log: await UndoLog.open(point.undoFile, point.undoBytes) });
      } catch (err) {
        h.lost = { points: points.slice(0, i + 1), reason: (err as Error).message };
        points = points.slice(i + 1);
        break;
      }
    }
    // Files of points pruned just before a crash, and of views that did not outlive it.
    const keep = new Set(points.map((p) => p.undoFile));
    for (const name of await readdir(dir)) if (!keep.has(join(dir, name))) await rm(join(dir, name), { force: true });
    return h;
  }

  /** Whether a cycle must record before-images (for kept points, or only for open views). */
  recording(forPoints: boolean): boolean {
    return (forPoints && this.logs.length > 0) || this.transient.size > 0;
  }

  /**
   * Makes the before-images of every range a cycle will write durable, in the newest point's
   * log (unless `forPoints` is false: a resynchronization deletes the points instead) and in
   * the logs of open views. Returns the bytes recorded.
   */
  async beforeApply(ranges: Range[], forPoints = true): Promise<number> {
    const targets = [...this.transient];
    const newest = this.logs.at(-1);
    if (newest && forPoints) targets.push(newest.log);
    if (targets.length === 0) return 0;
    const files = new Map<number, FileHandle>();
    try {
      for (const [i, p] of this.diskPaths()) files.set(i, await open(p, "r"));
      const readOld = (disk: number, offset: number, length: number) => readFully(files.get(disk)!, Buffer.alloc(length), offset);
      let bytes = 0;
      for (const log of targets) bytes += await log.record(ranges, readOld);
      return bytes;
    } finally {
      for (const fh of files.values()) await fh.close();
    }
  }

  /** The points as they must be saved once the cycle is applied: undo sizes now durable. */
  durablePoints(): RecoveryPointRecord[] {
    return this.logs.map(({ point, log }) => ({ ...point, undoBytes: log.bytes }));
  }

  /** A new point as of the cycle just applied; the caller saves it, then calls `opened`. */
  newPoint(seq: number, at: string, kind: RecoveryPointRecord["kind"]): RecoveryPointRecord {
    const id = randomUUID();
    return { id, seq, at, kind, undoFile: join(this.dir, `${id}.undo`), undoBytes: 0 };
  }

  /** Brings the open logs in line with the points just saved: opens new, deletes pruned. */
  async sync(points: RecoveryPointRecord[]): Promise<void> {
    const kept = new Set(points.map((p) => p.id));
    for (const { point, log } of this.logs) if (!kept.has(point.id)) await log.remove();
    const open = new Map(this.logs.map((l) => [l.point.id, l.log]));
    const next: typeof this.logs = [];
    for (const point of points) next.push({ point, log: open.get(point.id) ?? (await UndoLog.open(point.undoFile, 0)) });
    this.logs = next;
  }

  /** Undo bytes of each kept point, by id. */
  sizes(): Map<string, number> {
    return new Map(this.logs.map(({ point, log }) => [point.id, log.bytes]));
  }

  /**
   * Writes a kept point back into the replica disks: the undo logs from the newest down to the
   * point's own, so the oldest before-image of each block is the one that stays. Idempotent.
   */
  async restoreInPlace(pointId: string): Promise<number> {
    const i = this.logs.findIndex((l) => l.point.id === pointId);
    if (i < 0) throw new Error(`recovery point ${pointId} is not kept`);
    const files = new Map<number, FileHandle>();
    try {
      for (const [d, p] of this.diskPaths()) files.set(d, await open(p, "r+"));
      let bytes = 0;
      for (let j = this.logs.length - 1; j >= i; j--) bytes += await this.logs[j]!.log.copyTo(files);
      for (const fh of files.values()) await fh.datasync();
      return bytes;
    } finally {
      for (const fh of files.values()) await fh.close();
    }
  }

  /**
   * A read-only view of a kept point, or of the latest state when pointId is "latest"; for the
   * latest, call it between cycles. Every view records, in a log of its own, what each later
   * cycle overwrites (resynchronizations included), so it stays fixed whatever happens to the
   * kept points meanwhile: pruned, deleted by a resynchronization, or joined by new ones. The
   * point's own logs stay readable for it even when pruned.
   */
  async view(pointId: string): Promise<PointView> {
    const i = pointId === "latest" ? this.logs.length : this.logs.findIndex((l) => l.point.id === pointId);
    if (i < 0) throw new Error(`recovery point ${pointId} is not kept`);
    const pinned = this.logs.slice(i).map((l) => l.log.retain());
    const own = await UndoLog.open(join(this.dir, `view-${randomUUID()}.undo`), 0);
    this.transient.add(own);
    const logs = [...pinned, own];
    return new PointView(this.diskPaths(), () => logs, async () => {
      this.transient.delete(own);
      await own.remove();
      for (const log of pinned) await log.release();
    });
  }

  async close(): Promise<void> {
    for (const { log } of this.logs) await log.release();
    for (const log of this.transient) await log.remove();
    this.logs = [];
    this.transient.clear();
  }
}

/** A point-in-time view of a replica's disks, readable while replication goes on. */
export class PointView {
  private files = new Map<number, Promise<FileHandle>>();
  private closed = false;

  constructor(
    private readonly paths: Map<number, string>,
    /** Oldest first. */
    private readonly logs: () => UndoLog[],
    private readonly onClose: () => Promise<void>,
  ) {}

  get disks(): number[] {
    return [...this.paths.keys()];
  }

  async read(disk: number, offset: number, length: number): Promise<Buffer> {
    if (this.closed) throw new Error("the view was closed");
    const path = this.paths.get(disk);
    if (path === undefined) throw new Error(`no disk ${disk} in this view`);
    let fh = this.files.get(disk);
    if (!fh) this.files.set(disk, (fh = open(path, "r")));
    const buf = await readFully(await fh, Buffer.alloc(length), offset);
    // Newest first, so that the oldest before-image of a block is the one that stays.
    const logs = this.logs();
    for (let i = logs.length - 1; i >= 0; i--) await logs[i]!.overlay(disk, offset, buf);
    return buf;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fh of this.files.values()) await (await fh).close();
    await this.onClose();
  }
}
