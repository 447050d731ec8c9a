/** The built-in lab hypervisor: VMs as folders, power as real state transitions. */
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Db } from "../../state/db.js";
import type { EventLog } from "../../state/events.js";
import type { CreateVmBody, PowerAction, WorkloadSpec } from "../../../shared/agent-api.js";
import type { VmState } from "../../../shared/replication.js";
import type { VmConfig } from "../types.js";
import { LabVm, type GuestDisk } from "./lab-vm.js";
import { createSparseFile } from "../../util/files.js";
import { conflict, notFound } from "../../errors.js";

const now = () => new Date().toISOString();

/** Which power actions make sense in which state, and where they lead. */
export const TRANSITIONS: Record<PowerAction, { from: VmState[]; to: VmState; via?: VmState }> = {
  start: { from: ["Off", "Saved"], to: "Running", via: "Starting" },
  shutdown: { from: ["Running"], to: "Off", via: "Stopping" },
  "turn-off": { from: ["Running", "Paused", "Saved"], to: "Off" },
  save: { from: ["Running", "Paused"], to: "Saved", via: "Saving" },
  pause: { from: ["Running"], to: "Paused" },
  resume: { from: ["Paused"], to: "Running" },
};

export interface NewVmOptions {
  id?: string;
  dir?: string;
  replicaOf?: { primaryServer: string };
  /** Disk indexes in the order of spec.disks (a replica keeps its primary's numbering). */
  diskIndexes?: number[];
}

export class LabHypervisor {
  protected readonly vms = new Map<string, LabVm>();
  /** Hooks that may refuse a power action (e.g. a VM prepared for planned failover). */
  readonly powerGuards: ((vm: LabVm, action: PowerAction) => void)[] = [];

  constructor(
    protected readonly dataDir: string,
    protected readonly db: Db,
    protected readonly events: EventLog,
  ) {}

  async start(): Promise<void> {
    const rows = this.db.prepare("SELECT id, path FROM vms").all() as { id: string; path: string }[];
    for (const row of rows) {
      try {
        const config = JSON.parse(await readFile(join(row.path, "vm.json"), "utf8")) as VmConfig;
        const vm = await this.load(row.path, config);
        if (config.state !== "Off" && config.state !== "Saved") {
          // The agent is the lab VM's host: if it died, so did the VM.
          this.events.emit({
            severity: "warning",
            kind: "vm.crashed",
            vmId: vm.id,
            message: `Virtual machine '${config.name}' was ${config.state} when the host agent stopped uncleanly; it is now Off.`,
          });
          await this.setState(vm, "Off");
        }
      } catch (err) {
        this.events.emit({
          severity: "error",
          kind: "vm.load-failed",
          vmId: row.id,
          message: `Virtual machine in ${row.path} could not be loaded: ${(err as Error).message}`,
        });
      }
    }
  }

  /** Ordered shutdown: running VMs are saved, as Hyper-V's default automatic stop action. */
  async stop(): Promise<void> {
    for (const vm of this.vms.values()) {
      if (vm.config.state === "Running" || vm.config.state === "Paused") await this.setState(vm, "Saved");
      await vm.close();
    }
    this.vms.clear();
  }

  protected guestIoError(config: VmConfig) {
    return (err: unknown) =>
      this.events.emit({
        severity: "error",
        kind: "vm.guest-io-error",
        vmId: config.id,
        message: `Guest I/O of '${config.name}' failed: ${(err as Error).message}`,
      });
  }

  protected async load(dir: string, config: VmConfig): Promise<LabVm> {
    const vm = await LabVm.load(dir, config, this.guestIoError(config));
    this.vms.set(config.id, vm);
    return vm;
  }

  list(): LabVm[] {
    return [...this.vms.values()];
  }

  get(id: string): LabVm {
    const vm = this.vms.get(id);
    if (!vm) throw notFound(`no virtual machine with id ${id} on this host`);
    return vm;
  }

  find(id: string): LabVm | undefined {
    return this.vms.get(id);
  }

  async create(spec: CreateVmBody, opts: NewVmOptions = {}): Promise<LabVm> {
    const id = opts.id ?? randomUUID();
    if (this.vms.has(id)) throw conflict(`a virtual machine with id ${id} already exists on this host`);
    const dir = opts.dir ?? join(this.dataDir, "vms", id);
    if (await stat(dir).catch(() => undefined)) throw conflict(`folder ${dir} already exists; remove it or choose another storage location`);
    await mkdir(dir, { recursive: true });
    const config: VmConfig = {
      id,
      name: spec.name,
      cpus: spec.cpus,
      memoryMiB: spec.memoryMiB,
      disks: spec.disks.map((d, i) => {
        const index = opts.diskIndexes?.[i] ?? i;
        return { index, sizeBytes: d.sizeBytes, file: this.diskFile(index, opts) };
      }),
      workload: spec.workload,
      state: "Off",
      networkConnected: true,
      createdAt: now(),
      stateChangedAt: now(),
      ...(opts.replicaOf ? { replicaOf: opts.replicaOf } : {}),
    };
    try {
      const vm = await this.createImages(dir, config, opts);
      await vm.saveConfig();
      this.db.prepare("INSERT INTO vms (id, path, created_at) VALUES (?, ?, ?)").run(id, dir, config.createdAt);
      this.events.emit({ severity: "info", kind: "vm.created", vmId: id, message: `Virtual machine '${spec.name}' was created.` });
      return vm;
    } catch (err) {
      this.vms.delete(id);
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A VM about to become a replica, with disks in the replica store's format (raw images). */
  async asReplicaImages(id: string): Promise<LabVm> {
    return this.get(id);
  }

  /** The image file of a new VM's disk. */
  protected diskFile(index: number, _opts: NewVmOptions): string {
    return `disk${index}.raw`;
  }

  /** Creates a new VM's disk images and loads it. */
  protected async createImages(dir: string, config: VmConfig, _opts: NewVmOptions): Promise<LabVm> {
    for (const d of config.disks) await createSparseFile(join(dir, d.file), d.sizeBytes);
    return this.load(dir, config);
  }

  /**
   * Adds a VM that lives only while this agent runs (a test failover VM over overlay disks):
   * it is not recorded in the database, so a restart never brings it back.
   */
  async addTransient(dir: string, config: VmConfig, disks: Map<number, GuestDisk>): Promise<LabVm> {
    if (this.vms.has(config.id)) throw conflict(`a virtual machine with id ${config.id} already exists on this host`);
    const vm = LabVm.withDisks(dir, config, disks, this.guestIoError(config));
    await vm.saveConfig();
    this.vms.set(config.id, vm);
    this.events.emit({ severity: "info", kind: "vm.created", vmId: config.id, message: `Virtual machine '${config.name}' was created.` });
    return vm;
  }

  /** Turns off and removes a transient VM; its folder is the caller's to delete. */
  async removeTransient(id: string): Promise<void> {
    const vm = this.get(id);
    vm.workload.stop();
    await vm.close();
    this.vms.delete(id);
    this.events.emit({ severity: "info", kind: "vm.deleted", vmId: id, message: `Virtual machine '${vm.config.name}' was deleted.` });
  }

  async delete(id: string, isReplicated: (id: string) => boolean): Promise<void> {
    const vm = this.get(id);
    if (vm.config.testOf) throw conflict(`'${vm.config.name}' is a test failover virtual machine; use Stop Test Failover on its replica virtual machine to delete it`);
    if (vm.config.state !== "Off") throw conflict(`'${vm.config.name}' is ${vm.config.state}; turn it off before deleting it`);
    if (isReplicated(id)) throw conflict(`'${vm.config.name}' is replicated; remove replication before deleting it`);
    await vm.close();
    this.vms.delete(id);
    this.db.prepare("DELETE FROM vms WHERE id = ?").run(id);
    await rm(vm.dir, { recursive: true, force: true });
    this.events.emit({ severity: "info", kind: "vm.deleted", vmId: id, message: `Virtual machine '${vm.config.name}' was deleted.` });
  }

  async power(id: string, action: PowerAction): Promise<VmConfig> {
    const vm = this.get(id);
    const t = this.checkPower(vm, action);
    if (t.via) await this.setState(vm, t.via);
    if (t.to === "Running") vm.workload.start();
    else vm.workload.stop();
    await vm.queue.drain();
    await this.setState(vm, t.to);
    return vm.config;
  }

  /** Refuses a power action that makes no sense now; otherwise says where it leads. */
  protected checkPower(vm: LabVm, action: PowerAction): (typeof TRANSITIONS)[PowerAction] {
    const id = vm.id;
    const t = TRANSITIONS[action];
    if (!t.from.includes(vm.config.state)) {
      const err = conflict(
        `cannot ${action} '${vm.config.name}' while it is ${vm.config.state}; ${action} works from ${t.from.join(" or ")}`,
        { state: vm.config.state },
      );
      this.events.emit({ severity: "warning", kind: "vm.power-refused", vmId: id, message: err.message });
      throw err;
    }
    if (action === "start" && vm.config.replicaOf) {
      throw conflict(`'${vm.config.name}' is a Replica virtual machine; fail it over (test, planned or unplanned) before starting it`);
    }
    for (const guard of this.powerGuards) guard(vm, action);
    return t;
  }

  async setWorkload(id: string, spec: WorkloadSpec): Promise<VmConfig> {
    const vm = this.get(id);
    vm.config = { ...vm.config, workload: spec };
    vm.workload.update(spec);
    await vm.saveConfig();
    return vm.config;
  }

  async setState(vm: LabVm, state: VmState): Promise<void> {
    const from = vm.config.state;
    vm.config = { ...vm.config, state, stateChangedAt: now() };
    await vm.saveConfig();
    this.events.emit({
      severity: "info",
      kind: "vm.state",
      vmId: vm.id,
      message: `'${vm.config.name}' changed from ${from} to ${state}.`,
      data: { from, to: state },
    });
  }
}
