/**
 * The QEMU/KVM hypervisor: VMs created on this host run as real qemu-system processes over
 * qcow2 disks with persistent dirty bitmaps. Replica VMs keep the engine's raw images (the
 * replica store writes them directly) until they are failed over.
 */
import { execFile } from "node:child_process";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { join } from "node:path";
import type { PowerAction } from "../../../shared/agent-api.js";
import type { VmConfig } from "../types.js";
import { LabHypervisor, type NewVmOptions } from "../lab/lab-hypervisor.js";
import type { LabVm } from "../lab/lab-vm.js";
import { conflict } from "../../errors.js";
import { QemuVm } from "./qemu-vm.js";
import { accelerator, createQcow2, livePid, pidOf, QEMU_IMG, vmPaths, waitGone } from "./qemu-process.js";
import type { QemuGuest } from "./guest.js";
import { ServedGuest } from "./served-guest.js";

const run = promisify(execFile);
const SHUTDOWN_TIMEOUT_MS = Number(process.env.RM_QEMU_SHUTDOWN_TIMEOUT_MS ?? 60_000);

export class QemuHypervisor extends LabHypervisor {
  readonly accelerator = accelerator();
  /** VMs with disks the agent keeps, while QEMU runs their guest. */
  private readonly served = new Map<string, ServedGuest>();

  /** Where the pids of QEMU processes running over served disks are noted (see start). */
  private get servedFile(): string {
    return join(this.dataDir, "served-guests.json");
  }

  private async noteServed(): Promise<void> {
    const pids = [...this.served.values()].filter((g) => g.running).map((g) => ({ pid: pidOf(g.dir), dir: g.dir }));
    await writeFile(this.servedFile, JSON.stringify(pids));
  }

  /**
   * QEMU processes whose disks this agent served cannot go on without it: any left by an agent
   * that died are ended (their VMs are Off, or gone for test failover VMs).
   */
  private async endOrphans(): Promise<void> {
    const orphans = JSON.parse(await readFile(this.servedFile, "utf8").catch(() => "[]")) as { pid: number; dir: string }[];
    for (const o of orphans) {
      if ((await livePid(o.dir)) !== o.pid) continue;
      process.kill(o.pid, "SIGKILL");
      await waitGone(o.pid);
    }
    await rm(this.servedFile, { force: true });
  }

  override async start(): Promise<void> {
    await this.endOrphans();
    const rows = this.db.prepare("SELECT id, path FROM vms").all() as { id: string; path: string }[];
    for (const row of rows) {
      try {
        const config = JSON.parse(await readFile(join(row.path, "vm.json"), "utf8")) as VmConfig;
        if (config.driver !== "qemu") {
          await this.startLab(row.path, config);
          continue;
        }
        const vm = (await this.load(row.path, config)) as QemuVm;
        const kind = await vm.attach();
        const expected = ["Running", "Paused", "Starting", "Stopping", "Saving"].includes(config.state);
        if (expected && kind !== "system") {
          this.events.emit({ severity: "warning", kind: "vm.crashed", vmId: vm.id, message: `The QEMU process of '${config.name}' was gone when the host agent started; the virtual machine is now Off.` });
          await this.setState(vm, "Off");
        } else if (expected) {
          this.events.emit({ severity: "info", kind: "vm.reattached", vmId: vm.id, message: `The host agent re-attached to the running QEMU process of '${config.name}'.` });
        }
      } catch (err) {
        this.events.emit({ severity: "error", kind: "vm.load-failed", vmId: row.id, message: `Virtual machine in ${row.path} could not be loaded: ${(err as Error).message}` });
      }
    }
  }

  /** The VNC socket of a VM's running QEMU process (its own, or the one over disks the agent serves). */
  vncSocket(id: string): string {
    const vm = this.get(id);
    const { state, name } = vm.config;
    if (state !== "Running" && state !== "Paused") {
      throw conflict(`virtual machine '${name}' is ${state}: its screen exists only while it runs; start it, then connect`);
    }
    return vmPaths(this.served.get(id)?.dir ?? vm.dir).vnc;
  }

  /** A lab-format VM on this host (a replica's raw images): as the lab hypervisor loads it. */
  private async startLab(dir: string, config: VmConfig): Promise<void> {
    const vm = await this.load(dir, config);
    if (config.state !== "Off" && config.state !== "Saved") await this.setState(vm, "Off");
  }

  /** Running QEMU VMs keep running without the agent; their disks' daemons stop cleanly. */
  override async stop(): Promise<void> {
    // The agent serves these disks: the guests are saved, as the lab's are.
    for (const [id, g] of this.served) {
      const vm = this.find(id);
      if (vm && g.running) await transition(g, "save", vm.config.state).then(() => this.setState(vm, "Saved"), () => g.quit());
      await g.stopped();
    }
    this.served.clear();
    for (const vm of this.list()) {
      if (!(vm instanceof QemuVm)) continue;
      await vm.queue.run(async () => {
        if (vm.processKind === "daemon") await vm.quit();
        else await vm.detach();
      });
      this.vms.delete(vm.id);
    }
    await super.stop();
  }

  protected override async load(dir: string, config: VmConfig): Promise<LabVm> {
    if (config.driver !== "qemu") return super.load(dir, config);
    const vm = QemuVm.create(dir, config, this.guestIoError(config));
    vm.onExit = (guestShutdown) => void this.exited(vm, vm, guestShutdown);
    this.vms.set(config.id, vm);
    return vm;
  }

  protected override diskFile(index: number, opts: NewVmOptions): string {
    return opts.replicaOf ? super.diskFile(index, opts) : `disk${index}.qcow2`;
  }

  protected override async createImages(dir: string, config: VmConfig, opts: NewVmOptions): Promise<LabVm> {
    if (opts.replicaOf) return super.createImages(dir, config, opts);
    config.driver = "qemu";
    for (const d of config.disks) await createQcow2(join(dir, d.file), d.sizeBytes);
    const vm = (await this.load(dir, config)) as QemuVm;
    await vm.attach();
    return vm;
  }

  /**
   * A QEMU VM becomes a replica (reverse replication after a failover): its qcow2 images are
   * converted to the raw images the replica store writes, and it is a lab-format VM from then
   * on (QEMU runs it over disks the agent serves when it is failed over again).
   */
  override async asReplicaImages(id: string): Promise<LabVm> {
    const vm = this.get(id);
    if (!(vm instanceof QemuVm)) return vm;
    if (vm.config.state !== "Off") throw conflict(`'${vm.config.name}' is ${vm.config.state}; it must be off to become a replica`);
    const disks = vm.config.disks.map((d) => ({ ...d, file: `disk${d.index}.raw` }));
    await vm.queue.run(async () => {
      await vm.quit();
      for (const [i, d] of vm.config.disks.entries()) {
        const tmp = join(vm.dir, `${disks[i]!.file}.tmp`);
        await run(QEMU_IMG, ["convert", "-q", "-f", "qcow2", "-O", "raw", "-S", "4k", join(vm.dir, d.file), tmp]);
        await rename(tmp, join(vm.dir, disks[i]!.file));
      }
    });
    const { driver: _, ...rest } = vm.config;
    this.vms.delete(id);
    const lab = await super.load(vm.dir, { ...rest, disks });
    await lab.saveConfig();
    for (const d of vm.config.disks) {
      await rm(join(vm.dir, d.file), { force: true });
      await rm(join(vm.dir, `disk${d.index}.marked`), { force: true });
    }
    return lab;
  }

  override async delete(id: string, isReplicated: (id: string) => boolean): Promise<void> {
    const vm = this.get(id);
    if (vm instanceof QemuVm && vm.config.state === "Off" && !vm.config.testOf && !isReplicated(id)) await vm.queue.run(() => vm.quit());
    await super.delete(id, isReplicated);
  }

  /** The process went away without the agent asking: the guest powered off, or QEMU died. */
  private async exited(vm: LabVm, guest: QemuGuest, guestShutdown: boolean): Promise<void> {
    if (!guestShutdown) {
      this.events.emit({ severity: "error", kind: "vm.crashed", vmId: vm.id, message: `The QEMU process of '${vm.config.name}' ended unexpectedly; the virtual machine is now Off.` });
    }
    const reopen = () =>
      guest.stopped().catch((err: Error) =>
        this.events.emit({ severity: "error", kind: "vm.disks-unavailable", vmId: vm.id, message: `The disks of '${vm.config.name}' cannot be opened: ${err.message}` }),
      );
    if (vm instanceof QemuVm) await vm.queue.run(reopen);
    else {
      await reopen();
      await this.noteServed();
    }
    await this.setState(vm, "Off");
  }

  /** The QEMU side of a VM: itself (qcow2), or the guest the agent serves its own disks to. */
  private guest(vm: LabVm): QemuGuest {
    if (vm instanceof QemuVm) return vm;
    let g = this.served.get(vm.id);
    if (!g) {
      const guest = new ServedGuest(vm);
      guest.onExit = (guestShutdown) => void this.exited(vm, guest, guestShutdown);
      this.served.set(vm.id, (g = guest));
    }
    return g;
  }

  override async power(id: string, action: PowerAction): Promise<VmConfig> {
    const vm = this.get(id);
    const guest = this.guest(vm);
    const from = vm.config.state;
    const t = this.checkPower(vm, action);
    if (t.via) await this.setState(vm, t.via);
    try {
      // A served guest's disk I/O goes through the VM's queue itself: not held by the action.
      if (vm instanceof QemuVm) await vm.queue.run(() => transition(guest, action, from));
      else {
        await transition(guest, action, from);
        await this.noteServed();
      }
    } catch (err) {
      await this.setState(vm, guest.running ? (from === "Paused" ? "Paused" : "Running") : from === "Saved" ? "Saved" : "Off");
      const e = conflict(`${action} of '${vm.config.name}' failed: ${(err as Error).message}`);
      this.events.emit({ severity: "error", kind: "vm.power-failed", vmId: id, message: e.message });
      throw e;
    }
    await this.setState(vm, t.to);
    return vm.config;
  }

  override async removeTransient(id: string): Promise<void> {
    const g = this.served.get(id);
    if (g) {
      await g.quit();
      await g.stopped();
      this.served.delete(id);
      await this.noteServed();
    }
    await super.removeTransient(id);
  }
}

/** One power action on a VM's QEMU process, from state `from` (checked by the caller). */
async function transition(guest: QemuGuest, action: PowerAction, from: string): Promise<void> {
  const paths = vmPaths(guest.dir);
  switch (action) {
    case "start": {
      const qmp = await guest.startSystem(from === "Saved");
      if (from === "Saved") {
        await qmp.execute("migrate-incoming", { uri: `exec:cat '${paths.savedState}'` });
        await migrationDone(qmp);
        await qmp.execute("cont");
        await rm(paths.savedState, { force: true });
      }
      return;
    }
    case "pause":
      await (await guest.qmp()).execute("stop");
      return;
    case "resume":
      await (await guest.qmp()).execute("cont");
      return;
    case "save": {
      const qmp = await guest.qmp();
      await qmp.execute("stop");
      await guest.beforeSave();
      await qmp.execute("migrate", { uri: `exec:cat > '${paths.savedState}'` });
      await migrationDone(qmp);
      await guest.quit();
      await guest.stopped();
      return;
    }
    case "turn-off":
      if (from === "Saved") {
        await rm(paths.savedState, { force: true });
        return;
      }
      await guest.quit();
      await guest.stopped();
      return;
    case "shutdown": {
      const qmp = await guest.qmp();
      const gone = new Promise<boolean>((ok) => {
        const timer = setTimeout(() => ok(false), SHUTDOWN_TIMEOUT_MS);
        qmp.once("close", () => {
          clearTimeout(timer);
          ok(true);
        });
      });
      guest.expectExit(true);
      await qmp.execute("system_powerdown");
      if (!(await gone)) {
        guest.expectExit(false);
        throw new Error(`the guest did not shut down within ${SHUTDOWN_TIMEOUT_MS / 1000} s of the ACPI power button (does it handle ACPI?); use Turn Off to stop it at once`);
      }
      await guest.stopped();
      return;
    }
  }
}

async function migrationDone(qmp: import("./qmp.js").Qmp, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await qmp.execute<{ status?: string; "error-desc"?: string }>("query-migrate");
    if (info.status === "completed") return;
    if (info.status === "failed" || info.status === "cancelled") throw new Error(`saving or restoring the memory state ${info.status}: ${info["error-desc"] ?? "see qemu.log"}`);
    if (Date.now() > deadline) throw new Error("saving or restoring the memory state did not finish in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
