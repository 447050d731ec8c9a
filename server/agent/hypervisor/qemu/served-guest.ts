/**
 * A VM whose disks the agent keeps itself (a replica's raw images, test failover and
 * failover overlays), run by QEMU: the agent serves the disks over NBD on a unix socket in
 * the VM's folder, and every guest write goes through the VM's queue and change tracking.
 */
import type { LabVm } from "../lab/lab-vm.js";
import type { QemuGuest } from "./guest.js";
import { NbdServer, type ServedDisk } from "./nbd-server.js";
import { Qmp } from "./qmp.js";
import { cpuSampler, launch, livePid, pidOf, QEMU_SYSTEM, systemArgs, vmPaths, waitGone } from "./qemu-process.js";

export class ServedGuest implements QemuGuest {
  private conn: Qmp | undefined;
  private server: NbdServer | undefined;
  private expecting = false;
  private guestShutdown = false;
  /** Told when QEMU ends without the agent asking (a crash, or the guest powered off). */
  onExit: (guestShutdown: boolean) => void = () => undefined;

  constructor(readonly vm: LabVm) {}

  get dir(): string {
    return this.vm.dir;
  }

  get running(): boolean {
    return Boolean(this.conn && !this.conn.isClosed);
  }

  async qmp(): Promise<Qmp> {
    if (!this.conn || this.conn.isClosed) throw new Error(`the QEMU process of '${this.vm.config.name}' is not running`);
    return this.conn;
  }

  private disk(name: string): ServedDisk | undefined {
    const m = /^disk([0-3])$/.exec(name);
    const vm = this.vm;
    const index = Number(m?.[1]);
    const info = m ? vm.config.disks.find((d) => d.index === index) : undefined;
    if (!info) return undefined;
    return {
      sizeBytes: info.sizeBytes,
      read: (offset, length) => vm.queue.run(() => vm.disk(index).read(offset, length)),
      write: (offset, data) => vm.guestWrite(index, offset, data),
      flush: () => vm.guestFlush(index),
    };
  }

  async startSystem(incoming: boolean): Promise<Qmp> {
    await waitGone(await livePid(this.dir));
    const p = vmPaths(this.dir);
    this.server ??= await NbdServer.listen(p.agentNbd, (name) => this.disk(name));
    try {
      const qmp = await launch(QEMU_SYSTEM, systemArgs(this.dir, this.vm.config, { incoming, agentNbd: p.agentNbd }), this.dir);
      this.adopt(qmp);
      return qmp;
    } catch (err) {
      await this.stopped();
      throw err;
    }
  }

  private adopt(qmp: Qmp): void {
    this.conn = qmp;
    const pid = pidOf(this.dir);
    this.vm.cpuSampler = pid ? cpuSampler(pid, this.vm.config.cpus) : undefined;
    this.expecting = false;
    this.guestShutdown = false;
    qmp.on("event", (e) => {
      if (e.event === "SHUTDOWN" && e.data?.guest) this.guestShutdown = true;
    });
    qmp.on("close", () => {
      if (this.conn !== qmp) return;
      this.conn = undefined;
      if (!this.expecting) this.onExit(this.guestShutdown);
    });
  }

  async stopped(): Promise<void> {
    this.vm.cpuSampler = undefined;
    await this.server?.close();
    this.server = undefined;
  }

  async beforeSave(): Promise<void> {}

  async quit(): Promise<void> {
    const qmp = this.conn;
    if (!qmp) return;
    const pid = await livePid(this.dir);
    this.expecting = true;
    await qmp.execute("quit").catch(() => undefined);
    await waitGone(pid);
    this.conn = undefined;
  }

  expectExit(on: boolean): void {
    this.expecting = on;
  }
}
