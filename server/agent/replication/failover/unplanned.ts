/**
 * Unplanned failover on the Replica server, when the primary is lost: the replica VM runs
 * from a chosen recovery point on overlays (nothing is copied or changed yet), and then
 *   Cancel Failover   → back to a replica exactly as before; another point can be chosen;
 *   Complete Failover → the point and what the VM wrote are committed into the disks and the
 *                       other points deleted; health is Warning until
 *   Reverse Replication → the old primary, when back, becomes the replica (fenced first) and
 *                       a resynchronization sends only the blocks that differ.
 * The primary is asked first and the failover refused while its VM is known to run.
 */
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import type { GuestDisk, LabVm } from "../../hypervisor/lab/lab-vm.js";
import { OverlayDisk } from "../../hypervisor/lab/overlay-disk.js";
import type { PrimaryRecord, ReplicaRecord } from "../../state/relationships.js";
import type { PeerTarget } from "../../transport/peer-client.js";
import { AgentError, conflict } from "../../errors.js";
import { nowIso } from "../../util/clock.js";
import { readFully, writeFully } from "../../util/files.js";
import { SerialQueue } from "../../util/serial-queue.js";
import { failpoint } from "../../util/failpoints.js";
import type { PointView } from "../recovery/recovery-history.js";
import { reversedPrimary, type FailoverDeps as Deps, type Step } from "./planned.js";

const B = 4096;
const WAITING = "Failed over (waiting for completion)";
/** The split-brain check does not hold up a failover for long when the primary is gone. */
const PRIMARY_CHECK_MS = 5000;


export class UnplannedFailover {
  private readonly views = new Map<string, PointView>();
  private readonly queue = new SerialQueue();

  constructor(private readonly deps: Deps) {}

  private dir(rec: ReplicaRecord): string {
    return join(rec.storageDir, ".failover");
  }

  private event(severity: "info" | "warning" | "error", kind: string, rec: ReplicaRecord, message: string, data?: Record<string, unknown>): void {
    this.deps.events.emit({ severity, kind, vmId: rec.vmId, relationshipId: rec.id, message, data });
  }

  /** After a restart: a failed-over VM runs from its overlays again; a completion is finished. */
  async start(): Promise<void> {
    for (const rec of this.deps.repo.all()) {
      if (rec.role !== "replica" || !rec.failover) continue;
      try {
        await this.attach(rec, false);
        if (rec.failover.completing) await this.commit(this.deps.replicas.replicaOfVm(rec.vmId));
      } catch (err) {
        this.event("error", "replica.failover-resume-failed", rec, `The failover of '${rec.vmName}' could not be resumed after the restart: ${(err as Error).message}`);
      }
    }
  }

  async stop(): Promise<void> {
    for (const view of this.views.values()) await view.close();
    this.views.clear();
  }

  /** Puts the VM on overlays over the failover's point (new ones, or those of before a restart). */
  private async attach(rec: ReplicaRecord, fresh: boolean): Promise<{ vm: LabVm; view: PointView }> {
    const { view } = await this.deps.replicas.openView(rec.vmId, rec.failover!.pointId);
    const dir = this.dir(rec);
    const disks = new Map<number, GuestDisk>();
    try {
      if (fresh) {
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
      }
      for (const d of rec.disks) {
        const base = (offset: number, length: number) => view.read(d.index, offset, length);
        const file = join(dir, `disk${d.index}.overlay`);
        const map = `${file}.map`;
        disks.set(d.index, fresh ? await OverlayDisk.create(d.index, file, d.sizeBytes, base, map) : await OverlayDisk.open(d.index, file, d.sizeBytes, base, map));
      }
    } catch (err) {
      for (const d of disks.values()) await d.close().catch(() => undefined);
      await view.close();
      throw err;
    }
    const vm = this.deps.hypervisor.get(rec.vmId);
    await vm.replaceDisks(disks);
    const { replicaOf: _, ...config } = vm.config;
    vm.config = config;
    await vm.saveConfig();
    this.views.set(rec.id, view);
    return { vm, view };
  }

  /** Asks the primary whether its VM runs: a reachable primary with a running VM refuses the failover. */
  private async primaryCheck(rec: ReplicaRecord): Promise<Step> {
    const step = "Check the primary virtual machine is not running";
    if (!rec.returnPath) return { step, ok: true, detail: `the primary server ${rec.primaryServer} gave no address to check it at; assuming it is lost` };
    const target: PeerTarget = { server: rec.primaryServer, port: rec.returnPath.port, mode: rec.returnPath.authMode };
    try {
      const s = await this.deps.peers.json<{ vmState: string; state: string }>(target, "GET", `/replication/v1/relationships/${rec.id}/primary`, undefined, undefined, PRIMARY_CHECK_MS);
      const running = s.vmState !== "Off" && s.vmState !== "Saved";
      return { step, ok: !running, detail: running ? `'${rec.vmName}' is ${s.vmState} on ${rec.primaryServer} (checked just now): failing over would run it twice; shut it down there, or use Planned Failover` : `${rec.primaryServer} answered: '${rec.vmName}' is ${s.vmState} there` };
    } catch (err) {
      return { step, ok: true, detail: `${rec.primaryServer} is unreachable (${(err as Error).message}); it will be fenced when it comes back` };
    }
  }

  failOver(vmId: string, pointId: string, startVm: boolean): Promise<{ steps: Step[]; dataLoss: { pointAt: string | null; lastReplicatedAt: string | null; seconds: number } }> {
    return this.queue.run(async () => {
      const rec = this.deps.replicas.replicaOfVm(vmId);
      if (rec.failover || rec.state === WAITING) throw conflict(`'${rec.vmName}' is already failed over to the point of ${rec.failover?.pointAt}; cancel the failover to choose another point`);
      if (rec.state === "Failover complete") throw conflict(`the failover of '${rec.vmName}' is complete; use Reverse Replication`);
      if (rec.state === "Resynchronizing" || rec.lastAppliedSeq < 0) throw conflict(`'${rec.vmName}' has no consistent point to fail over to (${rec.state})`);
      if (rec.testFailover) throw conflict(`a test failover of '${rec.vmName}' is running; stop it first`);
      const steps = [await this.primaryCheck(rec)];
      if (!steps[0]!.ok) throw new AgentError(409, "PRECONDITION_FAILED", `'${rec.vmName}' cannot fail over: ${steps[0]!.detail}`, { steps });

      const point = (await this.deps.replicas.recoveryPoints(vmId)).find((p) => p.id === pointId);
      if (!point) throw new AgentError(404, "NOT_FOUND", `recovery point ${pointId} of '${rec.vmName}' is not kept; list them with GET /api/v1/vms/${vmId}/recovery-points`);
      const failover = { pointId, pointAt: point.at, seq: point.seq, startedAt: nowIso(), previousState: rec.state, completing: false };
      // No cycle may land while the VM runs from a point: the state refuses them from here.
      await this.deps.replicas.exclusive(vmId, async () => this.deps.repo.save({ ...this.deps.replicas.replicaOfVm(vmId), state: WAITING, failover }));
      try {
        await this.attach({ ...rec, failover }, true);
      } catch (err) {
        this.deps.repo.save({ ...this.deps.replicas.replicaOfVm(vmId), state: rec.state, failover: null });
        throw err;
      }
      const seconds = point.at && rec.lastSyncAt ? Math.max(0, (Date.parse(rec.lastSyncAt) - Date.parse(point.at)) / 1000) : 0;
      steps.push({ step: "Fail over to the recovery point", ok: true, detail: `${point.kind === "latest" ? "latest point" : `point of ${point.at}`}: changes after it are not in the virtual machine (${Math.round(seconds)} s before the last replicated state)` });
      this.event("warning", "replica.failed-over", rec, `'${rec.vmName}' was failed over (unplanned) to the ${point.kind === "latest" ? "latest recovery point" : `recovery point of ${point.at}`}; complete or cancel the failover.`, { pointId, seq: point.seq });
      if (startVm) {
        await this.deps.hypervisor.power(vmId, "start");
        steps.push({ step: "Start the virtual machine", ok: true, detail: "Running" });
      }
      return { steps, dataLoss: { pointAt: point.at, lastReplicatedAt: rec.lastSyncAt, seconds } };
    });
  }

  /** Back to a replica exactly as before the failover; what the VM wrote is discarded. */
  cancel(vmId: string): Promise<ReplicaRecord> {
    return this.queue.run(async () => {
      const rec = this.deps.replicas.replicaOfVm(vmId);
      if (rec.state === "Failover complete") throw conflict(`the failover of '${rec.vmName}' is complete and can no longer be cancelled; use Reverse Replication`);
      if (!rec.failover) throw conflict(`'${rec.vmName}' is not failed over`);
      if (rec.failover.completing) throw conflict(`the failover of '${rec.vmName}' is being completed; it can no longer be cancelled`);
      const vm = this.deps.hypervisor.get(vmId);
      if (vm.config.state !== "Off") await this.deps.hypervisor.power(vmId, "turn-off");
      await vm.replaceDisks(await vm.rawDisks());
      await this.views.get(rec.id)?.close();
      this.views.delete(rec.id);
      await rm(this.dir(rec), { recursive: true, force: true });
      vm.config = { ...vm.config, replicaOf: { primaryServer: rec.primaryServer } };
      await vm.saveConfig();
      const back: ReplicaRecord = { ...rec, state: rec.failover.previousState === WAITING ? "Replicating" : rec.failover.previousState, failover: null };
      this.deps.repo.save(back);
      this.event("info", "replica.failover-cancelled", rec, `The failover of '${rec.vmName}' was cancelled: it is a replica again, as before; what it wrote meanwhile was discarded.`);
      return back;
    });
  }

  /** Commits the chosen point and the VM's writes into its disks and deletes the other points. */
  complete(vmId: string): Promise<ReplicaRecord> {
    return this.queue.run(async () => {
      const rec = this.deps.replicas.replicaOfVm(vmId);
      if (rec.state === "Failover complete") throw conflict(`the failover of '${rec.vmName}' is already complete; use Reverse Replication`);
      if (!rec.failover) throw conflict(`'${rec.vmName}' is not failed over; choose a recovery point with Failover first`);
      const marked = { ...rec, failover: { ...rec.failover, completing: true } };
      this.deps.repo.save(marked);
      return this.commit(marked);
    });
  }

  /** Idempotent: after a crash it is simply run again from the same undo logs and overlays. */
  private async commit(rec: ReplicaRecord): Promise<ReplicaRecord> {
    const f = rec.failover!;
    const vm = this.deps.hypervisor.get(rec.vmId);
    const overlays = [...vm.disks.values()].filter((d): d is OverlayDisk => d instanceof OverlayDisk);
    // Guest I/O waits meanwhile; the VM may keep running and continues on its own disks.
    await vm.replaceDisks(await vm.rawDisks(), async () => {
      if (f.pointId !== "latest") await this.deps.replicas.restorePoint(rec.id, f.pointId);
      failpoint("failover.complete-mid");
      for (const o of overlays) {
        const raw = join(vm.dir, vm.config.disks.find((d) => d.index === o.index)!.file);
        const fh = await open(raw, "r+");
        const src = await open(o.path, "r");
        try {
          for (const [from, to] of o.writtenRanges()) {
            const buf = await readFully(src, Buffer.allocUnsafe((to - from) * B), from * B);
            await writeFully(fh, buf, from * B);
          }
          await fh.datasync();
        } finally {
          await fh.close();
          await src.close();
        }
      }
    });
    failpoint("failover.complete-before-save");
    await this.views.get(rec.id)?.close();
    this.views.delete(rec.id);
    await this.deps.replicas.dropPoints(rec.id);
    await rm(this.dir(rec), { recursive: true, force: true });
    const done: ReplicaRecord = {
      ...this.deps.replicas.replicaOfVm(rec.vmId),
      state: "Failover complete",
      failover: null,
      points: [],
      reason: `failed over to the ${f.pointId === "latest" ? "latest recovery point" : `recovery point of ${f.pointAt}`}; replication is not reversed yet: run Reverse Replication when ${rec.primaryServer} is back`,
    };
    this.deps.repo.save(done);
    this.event("info", "replica.failover-completed", rec, `The failover of '${rec.vmName}' was completed: the chosen point and the virtual machine's writes are in its disks, the other recovery points were deleted.`, { pointId: f.pointId });
    return done;
  }

  /**
   * After a completed failover: the old primary becomes the replica (fenced first), and a
   * resynchronization sends only the blocks that differ. The old primary must be reachable.
   */
  reverse(vmId: string, target?: { port?: number; authMode?: "https" | "http" }): Promise<PrimaryRecord> {
    return this.queue.run(async () => {
      const rec = this.deps.replicas.replicaOfVm(vmId);
      if (rec.state !== "Failover complete") throw conflict(`'${rec.vmName}' is ${rec.state}; Reverse Replication follows a completed failover`);
      const authMode = target?.authMode ?? rec.returnPath?.authMode;
      const port = target?.port ?? rec.returnPath?.port;
      if (!authMode || !port) throw new AgentError(400, "VALIDATION", `body.replicaPort: the former primary ${rec.primaryServer} never said where it accepts replication; give replicaPort and authMode`);
      const peer: PeerTarget = { server: rec.primaryServer, port, mode: authMode };
      try {
        await this.deps.peers.json(peer, "POST", `/replication/v1/relationships/${rec.id}/handover`, { seq: rec.lastAppliedSeq, reverse: true, unplanned: true });
      } catch (err) {
        throw new AgentError(502, "REVERSE_FAILED", `the former primary ${rec.primaryServer} did not become the replica: ${(err as Error).message}; nothing was changed here, try again when it is reachable`);
      }
      failpoint("failover.reverse-after-handover");
      await this.deps.replicas.release(rec.id);
      const vm = this.deps.hypervisor.get(vmId);
      await vm.startTracking(rec.disks.map((d) => d.index), false);
      const primary = reversedPrimary(rec, { port, authMode }, "Resynchronization required", `reversed after an unplanned failover: the disks of ${rec.primaryServer} are compared and only differing blocks are sent`);
      const p = this.deps.manager.adoptPrimary(primary, vm);
      await p.resynchronize();
      this.event("info", "replica.reversed", rec, `Replication of '${rec.vmName}' was reversed to ${rec.primaryServer}: a resynchronization compares the disks and sends only what differs.`);
      return p.record;
    });
  }
}
