/**
 * The write-ahead record of which regions of a disk may differ from the replica.
 *
 * Before a guest write reaches the disk, the coarse bit of every region it touches is
 * written to this file (only when the bit was not set already, so the cost is one small
 * write per region per cycle). A killed agent therefore never loses track of a write: on
 * restart the fine bitmap is rebuilt as "every block of every marked region", a superset.
 * The page cache survives a process crash but not a host crash, so the file records the
 * boot it was written in; an unclean stop in another boot means tracking was lost and the
 * relationship needs resynchronization, which is said, never assumed away.
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { Bitmap } from "./bitmap.js";
import { currentBootId } from "../util/files.js";

const MAGIC = "RMTRACK1";
const HEADER = 128;
const STATE_CLEAN = 0;
const STATE_ACTIVE = 1;

export type TrackingLoss = "host-crash" | "disk-modified-while-off" | "log-missing" | "log-corrupt" | "qemu-crash" | "bitmap-missing";

export interface OpenedRegionLog {
  log: RegionLog;
  /** Fine-grained blocks that may differ from the replica (a superset). */
  dirty: Bitmap;
  lost?: TrackingLoss;
}

export class RegionLog {
  private constructor(
    private readonly fh: FileHandle,
    private readonly coarse: Bitmap,
    private readonly blocksPerRegion: number,
    private readonly diskPath: string,
  ) {}

  static regionBlocks(blockSize: number): number {
    return (16 * 1024 * 1024) / blockSize;
  }

  /** Starts tracking afresh: every block is dirty (the initial copy) or none. */
  static async create(path: string, diskPath: string, blocks: number, blockSize: number, allDirty: boolean): Promise<OpenedRegionLog> {
    const per = RegionLog.regionBlocks(blockSize);
    const coarse = new Bitmap(Math.ceil(blocks / per));
    if (allDirty) coarse.setAll();
    const fh = await open(path, "w+");
    const log = new RegionLog(fh, coarse, per, diskPath);
    await log.writeAll(STATE_ACTIVE);
    const dirty = new Bitmap(blocks);
    if (allDirty) dirty.setAll();
    return { log, dirty };
  }

  /** Reopens after a restart. A missing or unreadable log is reported as lost tracking. */
  static async reopen(path: string, diskPath: string, blocks: number, blockSize: number): Promise<OpenedRegionLog> {
    const per = RegionLog.regionBlocks(blockSize);
    const regions = Math.ceil(blocks / per);
    let fh: FileHandle;
    try {
      fh = await open(path, "r+");
    } catch {
      const created = await RegionLog.create(path, diskPath, blocks, blockSize, true);
      return { ...created, lost: "log-missing" };
    }
    const header = Buffer.alloc(HEADER);
    await fh.read(header, 0, HEADER, 0);
    const coarseBytes = Buffer.alloc(Math.ceil(regions / 32) * 4);
    await fh.read(coarseBytes, 0, coarseBytes.length, HEADER);
    const coarse = Bitmap.fromBuffer(regions, coarseBytes);
    const log = new RegionLog(fh, coarse, per, diskPath);

    let lost: TrackingLoss | undefined;
    if (header.toString("latin1", 0, 8) !== MAGIC || header.readUInt32LE(8) !== per) lost = "log-corrupt";
    else {
      const state = header.readUInt8(12);
      const boot = header.toString("latin1", 16, 52).replace(/\0+$/, "");
      const mtimeMs = header.readDoubleLE(56);
      if (state === STATE_ACTIVE && boot !== currentBootId()) lost = "host-crash";
      if (state === STATE_CLEAN && (await stat(diskPath)).mtimeMs !== mtimeMs) lost = "disk-modified-while-off";
    }
    const dirty = new Bitmap(blocks);
    if (lost) {
      coarse.setAll();
      dirty.setAll();
    } else {
      for (const [from, to] of coarse.runs()) dirty.setRange(from * per, Math.min(blocks, to * per));
    }
    await log.writeAll(STATE_ACTIVE);
    return { log, dirty, lost };
  }

  /**
   * Persists the regions of blocks [from, to) before the guest's data is written. Returns
   * undefined when they are already marked (the common case), so the hot path costs no await.
   */
  ensure(from: number, to: number): Promise<void> | undefined {
    const r0 = Math.floor(from / this.blocksPerRegion);
    const r1 = Math.floor((to - 1) / this.blocksPerRegion);
    let changed = false;
    for (let r = r0; r <= r1; r++) {
      if (!this.coarse.get(r)) {
        this.coarse.set(r);
        changed = true;
      }
    }
    if (!changed) return undefined;
    const w0 = r0 >>> 5;
    const w1 = r1 >>> 5;
    const bytes = Buffer.from(this.coarse.toBuffer().subarray(w0 * 4, (w1 + 1) * 4));
    return this.fh.write(bytes, 0, bytes.length, HEADER + w0 * 4).then(() => undefined);
  }

  /** After a cycle commits: only the regions still dirty in `pending` stay marked. */
  async rewrite(pending: Bitmap): Promise<void> {
    this.coarse.clear();
    for (const [from, to] of pending.runs()) {
      this.coarse.setRange(Math.floor(from / this.blocksPerRegion), Math.floor((to - 1) / this.blocksPerRegion) + 1);
    }
    await this.writeAll(STATE_ACTIVE);
  }

  /** Clean close: records the disk's mtime so changes made while tracking was off are seen. */
  async close(): Promise<void> {
    await this.writeAll(STATE_CLEAN);
    await this.fh.sync();
    await this.fh.close();
  }

  private async writeAll(state: number): Promise<void> {
    const header = Buffer.alloc(HEADER);
    header.write(MAGIC, 0, "latin1");
    header.writeUInt32LE(this.blocksPerRegion, 8);
    header.writeUInt8(state, 12);
    header.write(currentBootId().slice(0, 36), 16, "latin1");
    header.writeDoubleLE(state === STATE_CLEAN ? (await stat(this.diskPath)).mtimeMs : 0, 56);
    await this.fh.write(Buffer.concat([header, this.coarse.toBuffer()]), 0, undefined, 0);
  }
}
