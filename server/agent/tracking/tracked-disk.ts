/**
 * One virtual disk as the guest sees it, with change tracking when replication is on.
 *
 * Guest writes go through `write` under the VM's serial queue; `freeze` runs on that same
 * queue, so a freeze point never splits a write and is consistent across the VM's disks.
 */
import { open, rm, type FileHandle } from "node:fs/promises";
import { Bitmap } from "./bitmap.js";
import { DiskSnapshot } from "./disk-snapshot.js";
import { RegionLog, type TrackingLoss } from "./region-log.js";
import { readFully, writeFully } from "../util/files.js";

export const BLOCK_SIZE = 4096;

export class TrackedDisk {
  private live: Bitmap | undefined;
  private regionLog: RegionLog | undefined;
  private snapshot: DiskSnapshot | undefined;

  private constructor(
    readonly index: number,
    readonly path: string,
    readonly sizeBytes: number,
    private readonly fh: FileHandle,
  ) {}

  static async open(index: number, path: string, sizeBytes: number): Promise<TrackedDisk> {
    return new TrackedDisk(index, path, sizeBytes, await open(path, "r+"));
  }

  get blocks(): number {
    return Math.ceil(this.sizeBytes / BLOCK_SIZE);
  }

  get tracking(): boolean {
    return this.live !== undefined;
  }

  private get trackPath(): string {
    return `${this.path}.track`;
  }

  /** Turns tracking on for a new relationship; everything is dirty for the initial copy. */
  async startTracking(allDirty: boolean): Promise<void> {
    const { log, dirty } = await RegionLog.create(this.trackPath, this.path, this.blocks, BLOCK_SIZE, allDirty);
    this.regionLog = log;
    this.live = dirty;
  }

  /** Resumes tracking after an agent restart; says when what was tracked cannot be trusted. */
  async resumeTracking(): Promise<TrackingLoss | undefined> {
    const { log, dirty, lost } = await RegionLog.reopen(this.trackPath, this.path, this.blocks, BLOCK_SIZE);
    this.regionLog = log;
    this.live = dirty;
    return lost;
  }

  async stopTracking(): Promise<void> {
    await this.snapshot?.dispose();
    this.snapshot = undefined;
    await this.regionLog?.close();
    this.regionLog = undefined;
    this.live = undefined;
    await rm(this.trackPath, { force: true });
  }

  get pendingBytes(): number {
    return ((this.live?.count() ?? 0) + (this.snapshot?.bitmap.count() ?? 0)) * BLOCK_SIZE;
  }

  checkRange(offset: number, length: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.sizeBytes) {
      throw new RangeError(`range ${offset}+${length} is outside disk ${this.index} (${this.sizeBytes} bytes)`);
    }
  }

  /** The guest's write path. Call only from the VM's serial queue. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.length);
    if (data.length === 0) return;
    if (this.live && this.regionLog) {
      const from = Math.floor(offset / BLOCK_SIZE);
      const to = Math.ceil((offset + data.length) / BLOCK_SIZE);
      const logged = this.regionLog.ensure(from, to);
      if (logged) await logged;
      if (this.snapshot) await this.snapshot.preserve(from, to);
      this.live.setRange(from, to);
    }
    await writeFully(this.fh, data, offset);
  }

  read(offset: number, length: number): Promise<Buffer> {
    this.checkRange(offset, length);
    return readFully(this.fh, Buffer.allocUnsafe(length), offset);
  }

  /** Makes the written data durable (the guest's flush). */
  async flush(): Promise<void> {
    await this.fh.datasync();
  }

  /** Counts blocks as changed (a resynchronization range). Call only from the VM's serial queue. */
  async markChanged(from: number, to: number): Promise<void> {
    if (!this.live || !this.regionLog) throw new Error(`disk ${this.index} is not tracked`);
    const logged = this.regionLog.ensure(from, to);
    if (logged) await logged;
    this.live.setRange(from, to);
  }

  /**
   * Forgets the changed set: a resynchronization compares the whole disk instead, and tracks
   * only what changes from now on. Call only from the VM's serial queue, with no cycle in flight.
   */
  async clearChanged(): Promise<void> {
    if (!this.live || !this.regionLog) throw new Error(`disk ${this.index} is not tracked`);
    if (this.snapshot) throw new Error(`disk ${this.index} has a cycle in flight`);
    this.live.clear();
    await this.regionLog.rewrite(this.live);
  }

  /** Freezes the changed set. Call only from the VM's serial queue. */
  freeze(): DiskSnapshot {
    if (!this.live) throw new Error(`disk ${this.index} is not tracked`);
    if (this.snapshot) throw new Error(`disk ${this.index} already has a cycle in flight`);
    this.snapshot = new DiskSnapshot(this.fh, this.live, BLOCK_SIZE, `${this.path}.cbw`);
    this.live = new Bitmap(this.blocks);
    return this.snapshot;
  }

  /** The replica has the frozen set: forget it. Call only from the VM's serial queue. */
  async commit(): Promise<void> {
    const snap = this.snapshot;
    this.snapshot = undefined;
    await snap?.dispose();
    if (this.live && this.regionLog) await this.regionLog.rewrite(this.live);
  }

  /** The cycle failed: its blocks go back into the next one. Call from the serial queue. */
  async release(): Promise<void> {
    const snap = this.snapshot;
    this.snapshot = undefined;
    if (snap && this.live) this.live.or(snap.bitmap);
    await snap?.dispose();
  }

  async close(): Promise<void> {
    await this.release();
    await this.regionLog?.close();
    this.regionLog = undefined;
    await this.fh.close();
  }
}
