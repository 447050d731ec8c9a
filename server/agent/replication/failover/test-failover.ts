/**
 * Test Failover on the Replica server: "<VM> - Test" runs from a chosen recovery point on
 * writable overlays over a point-in-time view, network disconnected (or on a named test
 * network), while replication into the replica goes on untouched. One test per VM; Stop
 * Test Failover deletes the test VM and its overlays and nothing else.
 */
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { LabHypervisor } from "../../hypervisor/lab/lab-hypervisor.js";
import type { GuestDisk, LabVm } from "../../hypervisor/lab/lab-vm.js";
import { OverlayDisk } from "../../hypervisor/lab/overlay-disk.js";
import type { VmConfig } from "../../hypervisor/types.js";
import type { EventLog } from "../../state/events.js";
import type { RelationshipRepo, ReplicaRecord } from "../../state/relationships.js";
import { conflict } from "../../errors.js";
import { SerialQueue } from "../../util/serial-queue.js";
import { nowIso } from "../../util/clock.js";
import type { PointView } from "../recovery/recovery-history.js";
import type { ReplicaStore } from "../replica-store.js";

interface Deps {
  replicas: ReplicaStore;
  hypervisor: LabHypervisor;
  repo: RelationshipRepo;
  events: EventLog;
}

export class TestFailovers {
  private readonly views = new Map<string, PointView>();
  private readonly queue = new SerialQueue();

  constructor(private readonly deps: Deps) {}

  private dir(rec: ReplicaRecord): string {
    return join(rec.storageDir, ".test");
  }

  /** A test VM does not outlive its agent: one found at start-up was ended by the restart. */
  async start(): Promise<void> {
    for (const rec of this.deps.repo.all()) {
      if (rec.role !== "replica" || !rec.testFailover) continue;
      await rm(this.dir(rec), { recursive: true, force: true });
      this.deps.repo.save({ ...rec, testFailover: null });
      this.deps.events.emit({
        severity: "warning",
        kind: "replica.test-failover-ended",
        vmId: rec.vmId,
        relationshipId: rec.id,
        message: `The test failover of '${rec.vmName}' ended when the host agent restarted; its test virtual machine and what was written to it were discarded. Start a new test failover if the test was not finished.`,
      });
    }
  }

  async stop(): Promise<void> {
    for (const view of this.views.values()) await view.close();
    this.views.clear();
  }

  begin(vmId: string, pointId: string, network: string | null): Promise<LabVm> {
    return this.queue.run(async () => {
      const rec = this.deps.replicas.replicaOfVm(vmId);
      if (rec.failover || rec.state === "Failed over (waiting for completion)") throw conflict(`'${rec.vmName}' is failed over; complete or cancel the failover first`);
      if (rec.state === "Failover complete") throw conflict(`the failover of '${rec.vmName}' is complete; use Reverse Replication`);
      if (rec.testFailover) {
        throw conflict(`a test failover of '${rec.vmName}' is already running ('${rec.vmName} - Test', from the point of ${rec.testFailover.pointAt}); stop it before starting another`);
      }
      const { view, point } = await this.deps.replicas.openView(vmId, pointId);
      const dir = this.dir(rec);
      const disks = new Map<number, GuestDisk>();
      try {
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        for (const d of rec.disks) {
          disks.set(d.index, await OverlayDisk.create(d.index, join(dir, `disk${d.index}.overlay`), d.sizeBytes, (offset, length) => view.read(d.index, offset, length)));
        }
        const replicaVm = this.deps.hypervisor.get(vmId).config;
        const at = nowIso();
        const config: VmConfig = {
          id: randomUUID(),
          name: `${rec.vmName} - Test`,
          cpus: replicaVm.cpus,
          memoryMiB: replicaVm.memoryMiB,
          disks: rec.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes, file: `disk${d.index}.overlay` })),
          workload: { pattern: "idle", rateMiBps: 0, quiesce: "works" },
          state: "Off",
          networkConnected: network !== null,
          ...(network !== null ? { networkName: network } : {}),
          testOf: { vmId, pointId: point.id, pointAt: point.at, seq: point.seq },
          createdAt: at,
          stateChangedAt: at,
        };
        const vm = await this.deps.hypervisor.addTransient(dir, config, disks);
        this.views.set(rec.id, view);
        const now = this.deps.replicas.replicaOfVm(vmId);
        this.deps.repo.save({ ...now, testFailover: { testVmId: config.id, pointId: point.id, pointAt: point.at, seq: point.seq, startedAt: at }, lastTestFailoverAt: at });
        this.deps.events.emit({
          severity: "info",
          kind: "replica.test-failover-started",
          vmId,
          relationshipId: rec.id,
          message: `Test failover of '${rec.vmName}' started from the ${point.kind === "latest" ? "latest recovery point" : `recovery point of ${point.at}`}: '${config.name}' is ready, ${network !== null ? `connected to test network '${network}'` : "network disconnected"}.`,
          data: { testVmId: config.id, pointId: point.id, seq: point.seq },
        });
        return vm;
      } catch (err) {
        for (const d of disks.values()) await d.close().catch(() => undefined);
        await view.close();
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    });
  }

  end(vmId: string): Promise<void> {
    return this.queue.run(async () => {
      const rec = this.deps.replicas.replicaOfVm(vmId);
      const test = rec.testFailover;
      if (!test) throw conflict(`no test failover of '${rec.vmName}' is running`);
      if (this.deps.hypervisor.find(test.testVmId)) await this.deps.hypervisor.removeTransient(test.testVmId);
      await this.views.get(rec.id)?.close();
      this.views.delete(rec.id);
      await rm(this.dir(rec), { recursive: true, force: true });
      this.deps.repo.save({ ...this.deps.replicas.replicaOfVm(vmId), testFailover: null });
      this.deps.events.emit({
        severity: "info",
        kind: "replica.test-failover-stopped",
        vmId,
        relationshipId: rec.id,
        message: `Test failover of '${rec.vmName}' was stopped: '${rec.vmName} - Test' and its changes were deleted; the replica was not touched.`,
      });
    });
  }
}
