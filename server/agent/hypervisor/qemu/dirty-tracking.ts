/**
 * Change tracking of a QEMU VM's qcow2 disks with persistent dirty bitmaps `rm-<n>` (the
 * highest n records; older ones are frozen cycles). A freeze swaps bitmaps and starts
 * fleecing in one QMP transaction; the frozen extents are read back over NBD from the
 * fleecing image with the `qemu:dirty-bitmap` meta context. Ranges the engine marks itself
 * (resynchronization, initial copy) are kept in a small file per disk beside the image.
 */
import { rm, writeFile, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { describeLoss, TrackingLostError, type FrozenCycle } from "../types.js";
import type { TrackingLoss } from "../../tracking/region-log.js";
import { Bitmap } from "../../tracking/bitmap.js";
import { BLOCK_SIZE } from "../../tracking/tracked-disk.js";
import { NbdClient } from "./nbd-client.js";
import type { Qmp } from "./qmp.js";
import { createQcow2, vmPaths } from "./qemu-process.js";

export const GRANULARITY = 64 * 1024;
const PREFIX = "rm-";

interface BitmapInfo {
  name: string;
  count: number;
  recording: boolean;
  inconsistent?: boolean;
}

export interface TrackedQemuDisk {
  index: number;
  sizeBytes: number;
}

/** What the tracker needs of its VM: the QMP connection of whichever process holds the disks. */
export interface TrackerHost {
  dir: string;
  disks: TrackedQemuDisk[];
  qmp(): Promise<Qmp>;
  ensureNbdServer(): Promise<void>;
}

export class DirtyTracking {
  /** Per disk, the blocks (4 KiB) the engine marked changed, not yet frozen. */
  private marked = new Map<number, Bitmap>();
  private pending = 0;

  constructor(private readonly host: TrackerHost) {}

  private disk(index: number): TrackedQemuDisk {
    const d = this.host.disks.find((x) => x.index === index);
    if (!d) throw new Error(`no disk ${index}`);
    return d;
  }

  private markPath(index: number): string {
    return join(this.host.dir, `disk${index}.marked`);
  }

  private marks(index: number): Bitmap {
    let m = this.marked.get(index);
    if (!m) this.marked.set(index, (m = new Bitmap(Math.ceil(this.disk(index).sizeBytes / BLOCK_SIZE))));
    return m;
  }

  private async saveMarks(index: number, extra?: Bitmap): Promise<void> {
    const m = this.marks(index).clone();
    if (extra) m.or(extra);
    const tmp = `${this.markPath(index)}.tmp`;
    await writeFile(tmp, m.toBuffer());
    await rename(tmp, this.markPath(index));
  }

  private async bitmaps(qmp: Qmp, index: number): Promise<BitmapInfo[]> {
    const nodes = await qmp.execute<{ "node-name": string; "dirty-bitmaps"?: BitmapInfo[] }[]>("query-named-block-nodes", { flat: true });
    const node = nodes.find((n) => n["node-name"] === `d${index}`);
    return (node?.["dirty-bitmaps"] ?? []).filter((b) => b.name.startsWith(PREFIX));
  }

  private static gen(name: string): number {
    return Number(name.slice(PREFIX.length));
  }

  private async current(qmp: Qmp, index: number): Promise<string> {
    const names = (await this.bitmaps(qmp, index)).map((b) => b.name).sort((a, b) => DirtyTracking.gen(b) - DirtyTracking.gen(a));
    if (!names[0]) throw new Error(`disk ${index} has no change-tracking bitmap`);
    return names[0];
  }

  private add(qmp: Qmp, index: number, gen: number): Promise<unknown> {
    return qmp.execute("block-dirty-bitmap-add", { node: `d${index}`, name: `${PREFIX}${gen}`, persistent: true, granularity: GRANULARITY });
  }

  async start(disks: number[], allDirty: boolean): Promise<void> {
    const qmp = await this.host.qmp();
    for (const i of disks) {
      for (const b of await this.bitmaps(qmp, i)) await qmp.execute("block-dirty-bitmap-remove", { node: `d${i}`, name: b.name });
      await this.add(qmp, i, 1);
      const m = this.marks(i);
      m.clear();
      if (allDirty) m.setAll();
      await this.saveMarks(i);
    }
  }

  /**
   * After an agent restart: the disks' bitmaps checked and settled (see settle); tracking
   * that was never recorded beside the image is lost too.
   */
  async resume(disks: number[]): Promise<Map<number, TrackingLoss>> {
    const qmp = await this.host.qmp();
    const lost = new Map<number, TrackingLoss>();
    for (const i of disks) {
      const marks = await readFile(this.markPath(i)).catch(() => undefined);
      if (marks) this.marked.set(i, Bitmap.fromBuffer(Math.ceil(this.disk(i).sizeBytes / BLOCK_SIZE), marks));
      // A cycle cut short by an agent crash leaves its fleecing in a QEMU that kept running.
      await this.teardown(qmp, i);
      const why = await this.settle(qmp, i, marks ? undefined : "log-missing");
      if (why) lost.set(i, why);
    }
    return lost;
  }

  /**
   * Frozen bitmaps left by an unfinished cycle go back into the current one. A missing or
   * inconsistent bitmap (QEMU or the host died with the image open) is a loss: tracking
   * starts afresh, and a resynchronization compares the disks.
   */
  private async settle(qmp: Qmp, i: number, known?: TrackingLoss): Promise<TrackingLoss | undefined> {
    const list = (await this.bitmaps(qmp, i)).sort((a, b) => DirtyTracking.gen(b.name) - DirtyTracking.gen(a.name));
    const lost = known ?? (list.length === 0 ? "bitmap-missing" : list.some((b) => b.inconsistent) ? "qemu-crash" : undefined);
    if (lost) {
      for (const b of list) await qmp.execute("block-dirty-bitmap-remove", { node: `d${i}`, name: b.name });
      await this.add(qmp, i, 1);
      this.marks(i).clear();
      await this.saveMarks(i);
      return lost;
    }
    const [head, ...older] = list;
    if (!head!.recording) await qmp.execute("block-dirty-bitmap-enable", { node: `d${i}`, name: head!.name });
    for (const b of older) {
      await qmp.execute("block-dirty-bitmap-merge", { node: `d${i}`, target: head!.name, bitmaps: [b.name] });
      await qmp.execute("block-dirty-bitmap-remove", { node: `d${i}`, name: b.name });
    }
    return undefined;
  }

  /** Ends tracking; with no process holding the disks (converted to raw), only the marks go. */
  async stop(disks: number[]): Promise<void> {
    const qmp = await this.host.qmp().catch(() => undefined);
    for (const i of disks) {
      if (qmp) for (const b of await this.bitmaps(qmp, i)) await qmp.execute("block-dirty-bitmap-remove", { node: `d${i}`, name: b.name });
      await rm(this.markPath(i), { force: true });
      this.marked.delete(i);
    }
  }

  async markChanged(index: number, fromBlock: number, toBlock: number): Promise<void> {
    this.marks(index).setRange(fromBlock, toBlock);
    await this.saveMarks(index);
  }

  async clear(disks: number[]): Promise<void> {
    const qmp = await this.host.qmp();
    for (const i of disks) {
      await qmp.execute("block-dirty-bitmap-clear", { node: `d${i}`, name: await this.current(qmp, i) });
      this.marks(i).clear();
      await this.saveMarks(i);
    }
  }

  /** Bytes recorded as changed and not yet replicated (refreshed in the background). */
  pendingBytes(): number {
    void this.refreshPending();
    return this.pending;
  }

  private refreshing = false;
  private async refreshPending(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const qmp = await this.host.qmp();
      let n = 0;
      for (const d of this.host.disks) {
        for (const b of await this.bitmaps(qmp, d.index)) n += b.count;
        n += (this.marked.get(d.index)?.count() ?? 0) * BLOCK_SIZE;
      }
      this.pending = n;
    } catch {
      /* the process is changing; keep the last figure */
    } finally {
      this.refreshing = false;
    }
  }

  /**
   * Freezes the changed set of `disks` at one point in time: in one transaction per VM the
   * current bitmaps stop recording, new ones start, and copy-before-write fleecing keeps the
   * frozen point readable while the guest goes on writing.
   */
  async freeze(disks: number[]): Promise<FrozenCycle> {
    const qmp = await this.host.qmp();
    await this.host.ensureNbdServer();
    const frozenAt = new Date();
    const gens = new Map<number, number>();
    const lost = new Map<number, TrackingLoss>();
    for (const i of disks) {
      await this.teardown(qmp, i);
      const why = await this.settle(qmp, i);
      if (why) lost.set(i, why);
    }
    if (lost.size) throw new TrackingLostError(describeLoss(lost));
    for (const i of disks) {
      const file = join(this.host.dir, `fleece${i}.qcow2`);
      await createQcow2(file, this.disk(i).sizeBytes);
      await qmp.execute("blockdev-add", { driver: "qcow2", "node-name": `fl${i}`, file: { driver: "file", filename: file }, backing: `d${i}` });
      gens.set(i, DirtyTracking.gen(await this.current(qmp, i)));
    }
    await qmp.execute("transaction", {
      actions: disks.flatMap((i) => [
        { type: "block-dirty-bitmap-add", data: { node: `d${i}`, name: `${PREFIX}${gens.get(i)! + 1}`, persistent: true, granularity: GRANULARITY } },
        { type: "block-dirty-bitmap-disable", data: { node: `d${i}`, name: `${PREFIX}${gens.get(i)}` } },
        { type: "blockdev-backup", data: { "job-id": `fleece${i}`, device: `d${i}`, target: `fl${i}`, sync: "none", "auto-dismiss": true } },
      ]),
    });
    const frozenMarks = new Map<number, Bitmap>();
    for (const i of disks) {
      frozenMarks.set(i, this.marks(i).clone());
      this.marks(i).clear();
    }
    const views: { index: number; nbd: NbdClient; changed: Bitmap }[] = [];
    try {
      for (const i of disks) {
        const name = `${PREFIX}${gens.get(i)}`;
        await qmp.execute("block-export-add", { type: "nbd", id: `fx${i}`, "node-name": `fl${i}`, name: `fleece${i}`, writable: false, bitmaps: [name] });
        const nbd = await NbdClient.connect(vmPaths(this.host.dir).nbd, `fleece${i}`, `qemu:dirty-bitmap:${name}`);
        const changed = frozenMarks.get(i)!.clone();
        const per = GRANULARITY / BLOCK_SIZE;
        for (const [offset, length, flags] of await nbd.blockStatus(0, this.disk(i).sizeBytes)) {
          if (flags & 1) changed.setRange(Math.floor(offset / GRANULARITY) * per, Math.min(changed.size, Math.ceil((offset + length) / GRANULARITY) * per));
        }
        views.push({ index: i, nbd, changed });
      }
    } catch (err) {
      for (const v of views) v.nbd.close();
      await this.finish(disks, gens, frozenMarks, false);
      throw err;
    }
    let done = false;
    const end = async (ok: boolean) => {
      if (done) return;
      done = true;
      for (const v of views) v.nbd.close();
      await this.finish(disks, gens, frozenMarks, ok);
    };
    return {
      frozenAt,
      disks: views.map((v) => ({
        index: v.index,
        blockSize: BLOCK_SIZE,
        changedBytes: v.changed.count() * BLOCK_SIZE,
        runs: (max: number) => v.changed.runs(max),
        read: (from: number, to: number) => v.nbd.read(from * BLOCK_SIZE, Math.min(to * BLOCK_SIZE, this.disk(v.index).sizeBytes) - from * BLOCK_SIZE),
      })),
      commit: () => end(true),
      release: () => end(false),
    };
  }

  /** Ends a cycle: drops the fleecing; a committed cycle drops its bitmap, a failed one merges it back. */
  private async finish(disks: number[], gens: Map<number, number>, frozenMarks: Map<number, Bitmap>, committed: boolean): Promise<void> {
    let qmp: Qmp | undefined;
    try {
      qmp = await this.host.qmp();
    } catch {
      /* the process is gone: resume() merges what is left when the disks are opened again */
    }
    for (const i of disks) {
      if (!committed) this.marks(i).or(frozenMarks.get(i)!);
      await this.saveMarks(i);
      if (!qmp) continue;
      await this.teardown(qmp, i);
      const frozen = `${PREFIX}${gens.get(i)}`;
      const list = await this.bitmaps(qmp, i).catch(() => []);
      if (!list.some((b) => b.name === frozen)) continue;
      if (!committed) await qmp.execute("block-dirty-bitmap-merge", { node: `d${i}`, target: `${PREFIX}${gens.get(i)! + 1}`, bitmaps: [frozen] });
      await qmp.execute("block-dirty-bitmap-remove", { node: `d${i}`, name: frozen });
    }
  }

  /** Removes a disk's fleecing export, job and image, whatever is left of them. */
  private async teardown(qmp: Qmp, i: number): Promise<void> {
    const exports = await qmp.execute<{ id: string }[]>("query-block-exports").catch(() => []);
    if (exports.some((e) => e.id === `fx${i}`)) {
      const gone = qmp.waitEvent("BLOCK_EXPORT_DELETED", (d) => d.id === `fx${i}`, 10_000);
      await qmp.execute("block-export-del", { id: `fx${i}`, mode: "hard" });
      await gone;
    }
    const jobs = await qmp.execute<{ device: string }[]>("query-block-jobs").catch(() => []);
    if (jobs.some((j) => j.device === `fleece${i}`)) {
      const gone = qmp.waitEvent("JOB_STATUS_CHANGE", (d) => d.id === `fleece${i}` && d.status === "null", 10_000);
      await qmp.execute("block-job-cancel", { device: `fleece${i}`, force: true });
      await gone;
    }
    const nodes = await qmp.execute<{ "node-name": string }[]>("query-named-block-nodes", { flat: true }).catch(() => []);
    if (nodes.some((n) => n["node-name"] === `fl${i}`)) await qmp.execute("blockdev-del", { "node-name": `fl${i}` });
    await rm(join(this.host.dir, `fleece${i}.qcow2`), { force: true });
  }
}
