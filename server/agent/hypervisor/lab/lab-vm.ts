/** A lab VM: a folder with vm.json and raw sparse disk images, and a synthetic guest. */
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FrozenCycle, ReplicableVm, VmConfig } from "../types.js";
import type { TrackingLoss } from "../../tracking/region-log.js";
import { TrackedDisk } from "../../tracking/tracked-disk.js";
import { SerialQueue } from "../../util/serial-queue.js";
import { Workload } from "./workload.js";
import { badRequest, conflict } from "../../errors.js";
import type { OverlayDisk } from "./overlay-disk.js";
import type { QemuDisk } from "../qemu/qemu-vm.js";

/** A lab VM's disk: a tracked raw image, or (test failover) an overlay on a recovery point; a QEMU VM's qcow2 disk. */
export type GuestDisk = TrackedDisk | OverlayDisk | QemuDisk;

export class LabVm implements ReplicableVm {
  readonly queue = new SerialQueue();
  readonly workload: Workload;
  protected constructor(
    readonly dir: string,
    public config: VmConfig,
    readonly disks: Map<number, GuestDisk>,
    onWorkloadError: (err: unknown) => void,
  ) {
    this.workload = new Workload(config.workload, {
      disks: config.disks,
      write: (disk, offset, data) => this.guestWrite(disk, offset, data),
      onError: onWorkloadError,
    });
  }

  static async load(dir: string, config: VmConfig, onWorkloadError: (err: unknown) => void): Promise<LabVm> {
    const disks = new Map<number, TrackedDisk>();
    for (const d of config.disks) disks.set(d.index, await TrackedDisk.open(d.index, join(dir, d.file), d.sizeBytes));
    return new LabVm(dir, config, disks, onWorkloadError);
  }

  /** A VM over disks opened by the caller (test failover overlays). */
  static withDisks(dir: string, config: VmConfig, disks: Map<number, GuestDisk>, onWorkloadError: (err: unknown) => void): LabVm {
    return new LabVm(dir, config, disks, onWorkloadError);
  }

  /** Set while QEMU runs the guest: its CPU usage comes from the QEMU process. */
  cpuSampler: (() => number) | undefined;

  /** The guest's CPU usage over the last second or so, as a share of its virtual processors (0-100). */
  cpuUsagePercent(): number {
    return this.cpuSampler?.() ?? this.workload.cpuUsagePercent(this.config.cpus);
  }

  get id(): string {
    return this.config.id;
  }

  disk(index: number): GuestDisk {
    const d = this.disks.get(index);
    if (!d) throw badRequest(`VM '${this.config.name}' has no disk ${index}; its disks are ${[...this.disks.keys()].join(", ")}`);
    return d;
  }

  /**
   * Swaps the VM's disks (failover onto overlays and back), with guest I/O held meanwhile;
   * `before` runs first in the same pause (committing overlays into the images).
   */
  async replaceDisks(next: Map<number, GuestDisk>, before?: () => Promise<void>): Promise<void> {
    await this.queue.run(async () => {
      await before?.();
      for (const d of this.disks.values()) await d.close();
      this.disks.clear();
      for (const [i, d] of next) this.disks.set(i, d);
    });
  }

  /** Opens the VM's own raw images again (after running from overlays). */
  async rawDisks(): Promise<Map<number, GuestDisk>> {
    const disks = new Map<number, GuestDisk>();
    for (const d of this.config.disks) disks.set(d.index, await TrackedDisk.open(d.index, join(this.dir, d.file), d.sizeBytes));
    return disks;
  }

  private tracked(index: number): TrackedDisk {
    const d = this.disk(index);
    if (!(d instanceof TrackedDisk)) throw conflict(`'${this.config.name}' is a test failover virtual machine; it cannot be replicated`);
    return d;
  }

  async saveConfig(): Promise<void> {
    const tmp = join(this.dir, "vm.json.tmp");
    await writeFile(tmp, JSON.stringify(this.config, null, 2));
    await rename(tmp, join(this.dir, "vm.json"));
  }

  /** A write from the guest (its workload, or a test through the API). */
  /** Guest writes since the agent started (churn, for storage estimates), and since when. */
  readonly churn = { bytes: 0, since: Date.now() };

  guestWrite(disk: number, offset: number, data: Uint8Array): Promise<void> {
    const d = this.disk(disk);
    d.checkRange(offset, data.length);
    this.churn.bytes += data.length;
    return this.queue.run(() => d.write(offset, data));
  }

  /** The guest's flush: once it resolves, every write the guest was told had finished is durable. */
  guestFlush(disk: number): Promise<void> {
    const d = this.disk(disk);
    return this.queue.run(() => d.flush());
  }

  async startTracking(disks: number[], allDirty: boolean): Promise<void> {
    await this.queue.run(async () => {
      for (const i of disks) await this.tracked(i).startTracking(allDirty);
    });
  }

  async resumeTracking(disks: number[]): Promise<Map<number, TrackingLoss>> {
    const lost = new Map<number, TrackingLoss>();
    await this.queue.run(async () => {
      for (const i of disks) {
        const why = await this.tracked(i).resumeTracking();
        if (why) lost.set(i, why);
      }
    });
    return lost;
  }

  async stopTracking(): Promise<void> {
    await this.queue.run(async () => {
      for (const d of this.disks.values()) if (d instanceof TrackedDisk && d.tracking) await d.stopTracking();
    });
  }

  pendingBytes(): number {
    let n = 0;
    for (const d of this.disks.values()) n += d.pendingBytes;
    return n;
  }

  async markChanged(disk: number, fromBlock: number, toBlock: number): Promise<void> {
    await this.queue.run(() => this.tracked(disk).markChanged(fromBlock, toBlock));
  }

  async clearChanged(disks: number[]): Promise<void> {
    await this.queue.run(async () => {
      for (const i of disks) await this.tracked(i).clearChanged();
    });
  }

  async quiesce(timeoutMs: number): Promise<() => void> {
    if (this.config.state !== "Running") return () => undefined;
    return this.workload.quiesce(timeoutMs);
  }

  async freeze(disks: number[]): Promise<FrozenCycle> {
    const frozenAt = new Date();
    const snaps = await this.queue.run(() => {
      for (const i of disks) if (!this.tracked(i).tracking) throw conflict(`disk ${i} of '${this.config.name}' is not tracked`);
      return disks.map((i) => ({ index: i, snap: this.tracked(i).freeze() }));
    });
    return {
      frozenAt,
      disks: snaps.map(({ index, snap }) => ({
        index,
        blockSize: snap.blockSize,
        changedBytes: snap.changedBytes,
        runs: (max: number) => snap.runs(max),
        read: (from: number, to: number, into?: Buffer) => snap.read(from, to, into),
      })),
      commit: () =>
        this.queue.run(async () => {
          for (const i of disks) await this.tracked(i).commit();
        }),
      release: () =>
        this.queue.run(async () => {
          for (const i of disks) await this.tracked(i).release();
        }),
    };
  }

  async close(): Promise<void> {
    this.workload.stop();
    await this.queue.drain();
    for (const d of this.disks.values()) await d.close();
  }
}
