/**
 * A VM run by QEMU: qcow2 disks held by `qemu-system-x86_64` while it runs and by
 * `qemu-storage-daemon` while it is off; the agent reaches them over QMP and NBD.
 */
import type { FrozenCycle, VmConfig } from "../types.js";
import type { TrackingLoss } from "../../tracking/region-log.js";
import { LabVm } from "../lab/lab-vm.js";
import { NbdClient } from "./nbd-client.js";
import { Qmp } from "./qmp.js";
import { DirtyTracking } from "./dirty-tracking.js";
import { cpuSampler, daemonArgs, pidOf, launch, livePid, QEMU_STORAGE_DAEMON, QEMU_SYSTEM, systemArgs, vmPaths, waitGone } from "./qemu-process.js";
import { guestFreeze } from "./guest-agent.js";
import type { QemuGuest } from "./guest.js";

/** One qcow2 disk as the agent reads and writes it: through the holding process's NBD export. */
export class QemuDisk {
  constructor(
    private readonly vm: QemuVm,
    readonly index: number,
    readonly sizeBytes: number,
  ) {}

  get pendingBytes(): number {
    return 0;
  }

  checkRange(offset: number, length: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.sizeBytes) {
      throw new RangeError(`range ${offset}+${length} is outside disk ${this.index} (${this.sizeBytes} bytes)`);
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkRange(offset, length);
    return (await this.vm.nbd(this.index)).read(offset, length);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkRange(offset, data.length);
    const nbd = await this.vm.nbd(this.index);
    await nbd.write(offset, data);
    await nbd.flush();
  }

  /** Every write is flushed already (above); a flush asks QEMU again. */
  async flush(): Promise<void> {
    await (await this.vm.nbd(this.index)).flush();
  }

  async close(): Promise<void> {
    /* connections belong to the VM */
  }
}

export type QemuProcessKind = "system" | "daemon";

export class QemuVm extends LabVm implements QemuGuest {
  private conn: Qmp | undefined;
  private kind: QemuProcessKind | undefined;
  private readonly nbds = new Map<number, Promise<NbdClient>>();
  readonly tracking: DirtyTracking;
  /** Told when the process goes away without the agent asking (a crash, or the guest powered off). */
  onExit: (guestShutdown: boolean) => void = () => undefined;
  private expectingExit = false;
  private guestShutdown = false;

  private constructor(dir: string, config: VmConfig, onError: (err: unknown) => void) {
    super(dir, config, new Map(), onError);
    for (const d of config.disks) this.disks.set(d.index, new QemuDisk(this, d.index, d.sizeBytes));
    this.tracking = new DirtyTracking({
      dir,
      disks: config.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes })),
      qmp: () => this.qmp(),
      ensureNbdServer: () => this.ensureNbdServer(),
    });
  }

  static create(dir: string, config: VmConfig, onError: (err: unknown) => void): QemuVm {
    return new QemuVm(dir, config, onError);
  }

  get processKind(): QemuProcessKind | undefined {
    return this.kind;
  }

  get running(): boolean {
    return this.kind === "system";
  }

  async startSystem(incoming: boolean): Promise<Qmp> {
    await this.quit();
    const qmp = await this.launch("system", { incoming }).catch(async (err: Error) => {
      await this.launch("daemon", { incoming: false });
      throw err;
    });
    if (!incoming) await this.ensureNbdServer();
    return qmp;
  }

  async stopped(): Promise<void> {
    await this.launch("daemon", { incoming: false });
  }

  beforeSave(): Promise<void> {
    return this.closeExports();
  }

  async qmp(): Promise<Qmp> {
    if (!this.conn || this.conn.isClosed) throw new Error(`the QEMU process of '${this.config.name}' is not running`);
    return this.conn;
  }

  /**
   * Connects to the process holding the disks, starting the storage daemon when nothing
   * holds them; a running VM's process found alive is re-attached, not restarted.
   */
  async attach(): Promise<QemuProcessKind> {
    const want: QemuProcessKind = ["Running", "Paused", "Starting", "Stopping", "Saving"].includes(this.config.state) ? "system" : "daemon";
    const pid = await livePid(this.dir);
    if (pid) {
      let qmp: Qmp | undefined;
      try {
        qmp = await Qmp.connect(vmPaths(this.dir).qmp, 2000);
        // qemu-storage-daemon has no guest, so no query-status.
        const status = await qmp.execute<{ status: string }>("query-status").catch((err: Error) => (qmp!.isClosed ? Promise.reject(err) : undefined));
        const kind: QemuProcessKind = status ? "system" : "daemon";
        if (kind === want) {
          this.adopt(qmp, kind);
          return kind;
        }
        await qmp.execute("quit").catch(() => undefined);
      } catch {
        /* not answering: ended below */
      }
      qmp?.close();
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
      await waitGone(pid);
    }
    // Off (or the VM's process died while the agent was away): the daemon holds the disks.
    await this.launch("daemon", { incoming: false });
    return "daemon";
  }

  private adopt(qmp: Qmp, kind: QemuProcessKind): void {
    this.conn = qmp;
    this.kind = kind;
    const pid = pidOf(this.dir);
    this.cpuSampler = kind === "system" && pid ? cpuSampler(pid, this.config.cpus) : undefined;
    this.expectingExit = false;
    this.guestShutdown = false;
    qmp.on("event", (e) => {
      if (e.event === "SHUTDOWN" && e.data?.guest) this.guestShutdown = true;
    });
    qmp.on("close", () => {
      if (this.conn !== qmp) return;
      this.conn = undefined;
      this.kind = undefined;
      this.dropNbd();
      if (!this.expectingExit) this.onExit(this.guestShutdown);
    });
  }

  async launch(kind: QemuProcessKind, opts: { incoming: boolean }): Promise<Qmp> {
    // A predecessor that is still dying holds the images' locks.
    await waitGone(await livePid(this.dir));
    const qmp = kind === "system" ? await launch(QEMU_SYSTEM, systemArgs(this.dir, this.config, opts), this.dir) : await launch(QEMU_STORAGE_DAEMON, daemonArgs(this.dir, this.config), this.dir);
    this.adopt(qmp, kind);
    return qmp;
  }

  /** Ends the holding process cleanly (bitmaps are stored in the images). */
  async quit(): Promise<void> {
    const qmp = this.conn;
    if (!qmp) return;
    const pid = await livePid(this.dir);
    this.expectingExit = true;
    this.dropNbd();
    await qmp.execute("quit").catch(() => undefined);
    await waitGone(pid);
    this.conn = undefined;
    this.kind = undefined;
  }

  async ensureNbdServer(): Promise<void> {
    const qmp = await this.qmp();
    await qmp.execute("nbd-server-start", { addr: { type: "unix", data: { path: vmPaths(this.dir).nbd } } }).catch((err: Error) => {
      if (!/already running/i.test(err.message)) throw err;
    });
    const exports = await qmp.execute<{ id: string }[]>("query-block-exports");
    for (const d of this.config.disks) {
      if (exports.some((e) => e.id === `live${d.index}`)) continue;
      await qmp.execute("block-export-add", { type: "nbd", id: `live${d.index}`, "node-name": `d${d.index}`, name: `disk${d.index}`, writable: true });
    }
  }

  /** Ends the NBD exports (saving the memory state needs the disks inactive). */
  async closeExports(): Promise<void> {
    const qmp = await this.qmp();
    this.dropNbd();
    for (const e of await qmp.execute<{ id: string }[]>("query-block-exports")) {
      const gone = qmp.waitEvent("BLOCK_EXPORT_DELETED", (d) => d.id === e.id, 10_000);
      await qmp.execute("block-export-del", { id: e.id, mode: "hard" });
      await gone;
    }
    await qmp.execute("nbd-server-stop").catch(() => undefined);
  }

  /** The agent's own NBD connection to a disk's live export. */
  nbd(index: number): Promise<NbdClient> {
    let c = this.nbds.get(index);
    if (!c) {
      c = this.ensureNbdServer().then(() => NbdClient.connect(vmPaths(this.dir).nbd, `disk${index}`));
      c.catch(() => this.nbds.delete(index));
      this.nbds.set(index, c);
    }
    return c;
  }

  private dropNbd(): void {
    for (const c of this.nbds.values()) void c.then((n) => n.close(), () => undefined);
    this.nbds.clear();
  }

  /** The process is about to end by the guest's own shutdown: not a crash. */
  expectExit(on: boolean): void {
    this.expectingExit = on;
  }

  async detach(): Promise<void> {
    this.expectingExit = true;
    this.dropNbd();
    this.conn?.close();
    this.conn = undefined;
  }

  override async startTracking(disks: number[], allDirty: boolean): Promise<void> {
    await this.queue.run(() => this.tracking.start(disks, allDirty));
  }

  override async resumeTracking(disks: number[]): Promise<Map<number, TrackingLoss>> {
    return this.queue.run(() => this.tracking.resume(disks));
  }

  override async stopTracking(): Promise<void> {
    await this.queue.run(() => this.tracking.stop(this.config.disks.map((d) => d.index)));
  }

  override pendingBytes(): number {
    return this.tracking.pendingBytes();
  }

  override async markChanged(disk: number, fromBlock: number, toBlock: number): Promise<void> {
    await this.queue.run(() => this.tracking.markChanged(disk, fromBlock, toBlock));
  }

  override async clearChanged(disks: number[]): Promise<void> {
    await this.queue.run(() => this.tracking.clear(disks));
  }

  override async freeze(disks: number[]): Promise<FrozenCycle> {
    return this.queue.run(() => this.tracking.freeze(disks));
  }

  override async quiesce(timeoutMs: number): Promise<() => void> {
    if (this.config.state !== "Running") return () => undefined;
    return guestFreeze(this.dir, timeoutMs);
  }

  override async close(): Promise<void> {
    await this.queue.drain();
    await this.detach();
  }
}
