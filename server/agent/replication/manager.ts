/** Replication on this host: enabling, pausing, removing; the primaries' schedules. */
import { randomUUID } from "node:crypto";
import type { EnableReplicationBody, TestConnectionBody, UpdateReplicationBody } from "../../shared/agent-api.js";
import { describeLoss } from "../hypervisor/types.js";
import type { LabHypervisor } from "../hypervisor/lab/lab-hypervisor.js";
import type { LabVm } from "../hypervisor/lab/lab-vm.js";
import { emptyStats, type CycleRow, type PrimaryRecord, type RelationshipRecord } from "../state/relationships.js";
import type { ReplicationHealth } from "../../shared/replication.js";
import { assessHealth, DEFAULT_MONITORING, type HealthReport } from "./health.js";
import { AgentError, badRequest, conflict, notFound } from "../errors.js";
import { PeerError } from "../transport/peer-client.js";
import { PrimaryReplication, type CycleOutcome, type PrimaryDeps } from "./primary.js";
import type { ReplicaStore } from "./replica-store.js";
import { TestFailovers } from "./failover/test-failover.js";
import { PlannedFailover } from "./failover/planned.js";
import { UnplannedFailover } from "./failover/unplanned.js";
import { now, nowIso } from "../util/clock.js";
import { testReplicationConnection, type ConnectionTestResult } from "./connection-test.js";
import { MAX_INITIAL_AHEAD_MS, rescheduleInitial } from "./initial-schedule.js";
import { exportInitialCopy } from "./initial-export.js";
import { estimateHistory, statisticsOf, type HistoryEstimate, type ReplicationStatistics } from "./statistics.js";

export type { HistoryEstimate, ReplicationStatistics };

export class ReplicationManager {
  private readonly primaries = new Map<string, PrimaryReplication>();
  readonly tests: TestFailovers;
  readonly planned: PlannedFailover;
  readonly unplanned: UnplannedFailover;

  constructor(
    private readonly hostName: string,
    private readonly hypervisor: LabHypervisor,
    readonly replicas: ReplicaStore,
    private readonly deps: PrimaryDeps,
    private readonly ownCredentials: () => { https: boolean; http: boolean },
  ) {
    this.tests = new TestFailovers({ replicas, hypervisor, repo: deps.repo, events: deps.events });
    this.planned = new PlannedFailover({ hypervisor, repo: deps.repo, events: deps.events, peers: deps.peers, replicas, manager: this, settings: () => replicas.serverSettings() });
    this.unplanned = new UnplannedFailover({ hypervisor, repo: deps.repo, events: deps.events, peers: deps.peers, replicas, manager: this });
    hypervisor.powerGuards.push((vm, action) => {
      const state = this.primaryOf(vm.id)?.record.state;
      if (action === "start" && state === "Prepared for planned failover") {
        throw conflict(`'${vm.config.name}' is prepared for planned failover and may not start here; cancel the failover first`);
      }
      if (action === "start" && state === "Failover complete") {
        throw conflict(`'${vm.config.name}' was failed over to its Replica server and may not start here as a second primary; run Reverse Replication there`);
      }
    });
  }

  async start(): Promise<void> {
    await this.replicas.start();
    await this.tests.start();
    await this.unplanned.start();
    for (const rec of this.deps.repo.all()) {
      if (rec.role !== "primary") continue;
      const vm = this.hypervisor.find(rec.vmId);
      if (!vm) {
        this.deps.events.emit({ severity: "error", kind: "replication.vm-missing", relationshipId: rec.id, vmId: rec.vmId, message: `Replication of '${rec.vmName}' cannot run: its virtual machine is missing on this host.` });
        continue;
      }
      const p = new PrimaryReplication({ ...rec, reconcile: true }, vm, this.deps);
      this.primaries.set(rec.id, p);
      const lost = await vm.resumeTracking(rec.disks.map((d) => d.index));
      if (lost.size > 0) {
        const why = describeLoss(lost);
        p.setState("Resynchronization required", `Change tracking was lost (${why}). A resynchronization must compare the disks before replication can continue.`);
      }
      p.start();
    }
  }

  async stop(): Promise<void> {
    for (const p of this.primaries.values()) await p.stop();
    await this.tests.stop();
    await this.unplanned.stop();
  }

  private primaryOf(vmId: string): PrimaryReplication | undefined {
    for (const p of this.primaries.values()) if (p.record.vmId === vmId) return p;
    return undefined;
  }

  isReplicated(vmId: string): boolean {
    return this.deps.repo.byVm(vmId).length > 0;
  }

  /** Records as the API shows them: the live primary state, and health with its reasons. */
  forVm(vmId: string): (RelationshipRecord & { health: ReplicationHealth; healthReasons: string[] })[] {
    return this.deps.repo.byVm(vmId).map((r) => this.withHealth(r));
  }

  all(): (RelationshipRecord & { health: ReplicationHealth; healthReasons: string[] })[] {
    return this.deps.repo.all().map((r) => this.withHealth(r));
  }

  private live(r: RelationshipRecord): RelationshipRecord {
    return r.role === "primary" ? (this.primaries.get(r.id)?.record ?? r) : r;
  }

  private healthOf(r: RelationshipRecord): HealthReport {
    return assessHealth(r, now(), this.replicas.serverSettings().monitoring ?? DEFAULT_MONITORING, (from) => this.deps.repo.cycleCounts(r.id, from));
  }

  private withHealth(stored: RelationshipRecord) {
    const r = this.live(stored);
    const h = this.healthOf(r);
    return { ...r, health: h.health, healthReasons: h.reasons };
  }

  /** View Replication Health: state, health with reasons, and the statistics since the last reset. */
  statistics(vmId: string): ReplicationStatistics {
    const r = this.live(this.oneFor(vmId));
    const bucket = this.deps.hostBucket();
    return statisticsOf(r, this.healthOf(r), {
      hostName: this.hostName,
      primary: r.role === "primary" ? this.primaries.get(r.id) : undefined,
      hostLimitMiBps: bucket ? bucket.rate / (1024 * 1024) : null,
    });
  }

  /** Reset Statistics: counting starts again now (the cycle history is kept for charts). */
  resetStatistics(vmId: string): ReplicationStatistics {
    const r = this.oneFor(vmId);
    const p = r.role === "primary" ? this.primaries.get(r.id) : undefined;
    if (p) p.update({ stats: emptyStats() });
    else this.deps.repo.save({ ...r, stats: emptyStats() });
    this.deps.events.emit({ severity: "info", kind: "replication.statistics-reset", vmId, relationshipId: r.id, message: `Replication statistics of '${r.vmName}' were reset.` });
    return this.statistics(vmId);
  }

  /** The storage a recovery history would need on the Replica server (statistics.ts). */
  historyEstimate(vmId: string, recoveryHistory: number): HistoryEstimate {
    const rec = this.deps.repo.byVm(vmId).find((r) => r.role === "primary");
    return estimateHistory(this.hypervisor.get(vmId), rec ? this.deps.repo.cycles(rec.id, 5000) : [], recoveryHistory);
  }

  cycles(vmId: string, limit: number): CycleRow[] {
    return this.deps.repo.cycles(this.oneFor(vmId).id, limit);
  }

  /** For the split-brain check of this relationship's Replica server only. */
  primaryStatus(id: string, peerName: string): { vmState: string; state: string } {
    const rec = this.deps.repo.get(id);
    if (!rec || rec.role !== "primary") throw notFound(`no primary relationship ${id} on this host`);
    if (rec.replicaServer !== peerName) throw new AgentError(403, "FORBIDDEN", `'${peerName}' is not the Replica server of '${rec.vmName}'`);
    return { vmState: this.hypervisor.get(rec.vmId).config.state, state: this.primaries.get(id)?.record.state ?? rec.state };
  }

  /** Takes over a primary record made by a failover (saved, tracked from now, scheduled). */
  adoptPrimary(rec: PrimaryRecord, vm: LabVm): PrimaryReplication {
    this.deps.repo.save(rec);
    const p = new PrimaryReplication(rec, vm, this.deps);
    this.primaries.set(rec.id, p);
    p.start();
    return p;
  }

  /** Stops a primary relationship's schedule and change tracking; the caller rewrites its record. */
  async dropPrimary(id: string): Promise<void> {
    const p = this.primaries.get(id);
    if (!p) return;
    await p.stop();
    await p.vm.stopTracking();
    this.primaries.delete(id);
  }

  primaryFor(vmId: string): PrimaryReplication {
    this.hypervisor.get(vmId);
    const p = this.primaryOf(vmId);
    if (!p) throw conflict(`virtual machine ${vmId} is not a primary of replication on this host`);
    return p;
  }

  private oneFor(vmId: string): RelationshipRecord {
    this.hypervisor.get(vmId);
    const recs = this.forVm(vmId);
    if (recs.length === 0) throw notFound(`replication is not enabled for virtual machine ${vmId}; enable it first`);
    return recs.find((r) => r.role === "primary") ?? recs[0]!;
  }

  /** Test Replication Connection from this host, before (or without) enabling. */
  testConnection(body: TestConnectionBody): Promise<ConnectionTestResult> {
    if (body.replicaServer === this.hostName) throw badRequest(`replicaServer: '${body.replicaServer}' is this host; test the connection to another server`);
    return testReplicationConnection(this.deps.peers, body);
  }

  async enable(vmId: string, body: EnableReplicationBody): Promise<PrimaryRecord> {
    const vm = this.hypervisor.get(vmId);
    if (vm.config.replicaOf) throw conflict(`'${vm.config.name}' is a Replica virtual machine; replication is enabled on its primary server`);
    if (this.isReplicated(vmId)) throw conflict(`replication is already enabled for '${vm.config.name}'`);
    if (body.replicaServer === this.hostName) throw badRequest(`replicaServer '${body.replicaServer}' is this host; choose another server as the Replica server`);
    const indexes = body.disks ?? vm.config.disks.map((d) => d.index);
    for (const i of indexes) {
      if (!vm.config.disks.some((d) => d.index === i)) throw badRequest(`disks: '${vm.config.name}' has no disk ${i}; its disks are ${vm.config.disks.map((d) => d.index).join(", ")}`);
    }
    const disks = vm.config.disks.filter((d) => indexes.includes(d.index)).map((d) => ({ index: d.index, sizeBytes: d.sizeBytes }));
    const own = this.ownCredentials();
    if (body.authMode === "https" && !own.https) throw badRequest("authMode: this host has no replication certificate; configure replication.tls in its agent config, or use authMode 'http'");
    if (body.authMode === "http" && !own.http) throw badRequest("authMode: this host has no replication token; configure replication.token in its agent config, or use authMode 'https'");

    const rec: PrimaryRecord = {
      id: randomUUID(),
      role: "primary",
      vmId,
      vmName: vm.config.name,
      replicaServer: body.replicaServer,
      replicaPort: body.replicaPort,
      authMode: body.authMode,
      compression: body.compression,
      frequencySeconds: body.frequencySeconds,
      disks,
      state: "Ready for initial replication",
      createdAt: nowIso(),
      lastSyncAt: null,
      lastAckedSeq: -1,
      reconcile: false,
      recoveryHistory: body.recoveryHistory,
      appConsistentFrequencyHours: body.appConsistentFrequencyHours,
      resyncPolicy: body.resyncPolicy,
      bandwidthLimitMiBps: body.bandwidthLimitMiBps,
      lastPointAt: null,
      lastAppConsistentAt: null,
      stats: emptyStats(),
      reason: null,
    };
    const method = body.initialReplication;
    if (method.method === "network" && method.startAt && Date.parse(method.startAt) > now() + MAX_INITIAL_AHEAD_MS) {
      throw badRequest("initialReplication.startAt: the initial replication can be scheduled at most 7 days ahead");
    }
    const p = new PrimaryReplication(rec, vm, this.deps);
    // External media: the initial copy is written to the folder first, as of one freeze;
    // what changes after it is tracked and follows as ordinary cycles after the import.
    await vm.startTracking(disks.map((d) => d.index), true);
    let exported: { commit(): Promise<void>; release(): Promise<void> } | undefined;
    try {
      if (method.method === "external-media") exported = await exportInitialCopy(rec, vm, method.folder, this.deps.events);
      await this.deps.peers.json(p.target, "POST", "/replication/v1/relationships", {
        relationshipId: rec.id,
        vmId,
        vmName: vm.config.name,
        cpus: vm.config.cpus,
        memoryMiB: vm.config.memoryMiB,
        disks,
        frequencySeconds: rec.frequencySeconds,
        recoveryHistory: rec.recoveryHistory,
        initialMethod: method.method,
      });
    } catch (err) {
      await exported?.release();
      await vm.stopTracking();
      if (err instanceof AgentError && !(err instanceof PeerError)) throw err;
      const msg = `the Replica server ${body.replicaServer}:${body.replicaPort} did not accept the replica: ${(err as Error).message}`;
      this.deps.events.emit({ severity: "error", kind: "replication.enable-failed", vmId, message: `Enabling replication of '${vm.config.name}' failed: ${msg}` });
      if (err instanceof PeerError && err.status >= 400 && err.status < 500) throw new AgentError(409, "REPLICA_REFUSED", msg, { peerStatus: err.status, peerCode: err.code });
      throw new AgentError(502, "REPLICA_UNREACHABLE", msg);
    }
    if (exported) {
      await exported.commit();
      p.update({ lastAckedSeq: 0, awaitingImport: { folder: (method as { folder: string }).folder, exportedAt: nowIso() } });
    }
    this.deps.repo.save(p.record);
    this.primaries.set(rec.id, p);
    this.deps.events.emit({
      severity: "info",
      kind: "replication.enabled",
      vmId,
      relationshipId: rec.id,
      message: `Replication of '${vm.config.name}' to ${body.replicaServer} was enabled (every ${rec.frequencySeconds} s, ${body.authMode.toUpperCase()}, compression ${body.compression ? "on" : "off"}, ${describeHistory(rec)}).`,
    });
    if (method.method === "existing-copy") {
      p.start();
      await p.resynchronize(true);
    } else if (method.method === "external-media") {
      p.setState("Initial replication in progress");
      p.start();
    } else if (method.startAt && Date.parse(method.startAt) > now()) {
      p.update({ initialStartAt: new Date(Date.parse(method.startAt)).toISOString() });
      this.deps.events.emit({ severity: "info", kind: "replication.initial-scheduled", vmId, relationshipId: rec.id, message: `Initial replication of '${vm.config.name}' is scheduled for ${p.record.initialStartAt}.` });
      p.start();
    } else if (body.startInitialReplication) {
      p.setState("Initial replication in progress");
      p.start();
    }
    return p.record;
  }

  /** Settings reach the replica with the next cycle; a new recovery history from the next hour. */
  async update(vmId: string, body: UpdateReplicationBody): Promise<PrimaryRecord> {
    const p = this.primaryFor(vmId);
    const { initialStartAt, ...patch } = body;
    const next = { ...p.record, ...patch };
    if (next.appConsistentFrequencyHours && next.recoveryHistory === 0) {
      throw badRequest("appConsistentFrequencyHours: application-consistent points need additional hourly recovery points (recoveryHistory 1-24)");
    }
    // Checked before anything changes, so a refused schedule leaves the other settings alone too.
    const schedule = initialStartAt !== undefined ? rescheduleInitial(p, initialStartAt, this.deps.events) : undefined;
    schedule?.();
    const rec = p.update(patch);
    if (patch.recoveryHistory !== undefined || patch.appConsistentFrequencyHours !== undefined) {
      this.deps.events.emit({ severity: "info", kind: "replication.settings", vmId, relationshipId: rec.id, message: `Recovery history of '${rec.vmName}' changed to ${describeHistory(rec)}; it takes effect from the next hour.` });
    }
    if (patch.frequencySeconds !== undefined) p.start();
    return rec;
  }

  /** Resynchronize now, or at a time up to 7 days ahead (kept across restarts). */
  async resynchronize(vmId: string, at?: string): Promise<PrimaryRecord> {
    const p = this.primaryFor(vmId);
    if (at && Date.parse(at) > now() + 7 * 24 * 3600_000) throw badRequest("body.at: at must be at most 7 days ahead");
    if (at && Date.parse(at) > now()) {
      if (p.record.state !== "Resynchronization required") throw conflict(`replication of '${p.record.vmName}' is ${p.record.state}; a resynchronization starts from Resynchronization required`);
      const rec = p.update({ resyncAt: new Date(Date.parse(at)).toISOString() });
      this.deps.events.emit({ severity: "info", kind: "replication.resync-scheduled", vmId, relationshipId: rec.id, message: `Resynchronization of '${rec.vmName}' is scheduled for ${rec.resyncAt}.` });
      return rec;
    }
    await p.resynchronize();
    return p.record;
  }

  async replicateNow(vmId: string): Promise<CycleOutcome> {
    const p = this.primaryFor(vmId);
    if (p.record.state === "Ready for initial replication") p.setState("Initial replication in progress");
    const outcome = await p.replicateNow();
    if (!outcome) throw conflict(`replication of '${p.record.vmName}' is ${p.record.state}; no cycle can run in that state`, { state: p.record.state });
    return outcome;
  }

  async pause(vmId: string): Promise<RelationshipRecord> {
    const rec = this.oneFor(vmId);
    if (rec.state === "Suspended") throw conflict(`replication of '${rec.vmName}' is already paused`);
    // A failover's states are not paused: pausing would lift their guards (the fence, the refusal of old cycles).
    if (rec.state === "Prepared for planned failover") throw conflict(`'${rec.vmName}' is prepared for planned failover; cancel the failover first`);
    if (rec.state === "Failed over (waiting for completion)") throw conflict(`'${rec.vmName}' is failed over; complete or cancel the failover first`);
    if (rec.state === "Failover complete") {
      throw conflict(rec.role === "replica" ? `the failover of '${rec.vmName}' is complete; use Reverse Replication` : `'${rec.vmName}' was failed over to its Replica server; run Reverse Replication there`);
    }
    if (rec.state === "Resynchronization required" || (rec.state === "Resynchronizing" && rec.role === "replica")) {
      throw conflict(`replication of '${rec.vmName}' is ${rec.state}; pausing and resuming would not repair it`, { state: rec.state });
    }
    if (rec.role === "replica") return this.replicas.setState(rec.id, "Suspended");
    const p = this.primaries.get(rec.id)!;
    await p.stop();
    p.setState("Suspended");
    return p.record;
  }

  async resume(vmId: string): Promise<RelationshipRecord> {
    const rec = this.oneFor(vmId);
    if (rec.state !== "Suspended") throw conflict(`replication of '${rec.vmName}' is not paused (it is ${rec.state})`);
    if (rec.role === "replica") return this.replicas.setState(rec.id, rec.lastAppliedSeq < 0 ? "Waiting for initial replication" : "Replicating");
    const p = this.primaries.get(rec.id)!;
    if (!p.record.resync && p.backlogTooLarge()) {
      p.start();
      return p.record;
    }
    // A paused resynchronization continues where it stopped.
    p.setState(p.record.resync ? "Resynchronizing" : p.record.lastAckedSeq < 0 ? "Initial replication in progress" : "Replicating");
    p.update({ reconcile: true });
    p.start();
    void p.replicateNow();
    return p.record;
  }

  async remove(vmId: string): Promise<void> {
    const rec = this.oneFor(vmId);
    if (rec.role === "replica") {
      if (rec.testFailover) throw conflict(`a test failover of '${rec.vmName}' is running; stop it before removing replication`);
      if (rec.failover) throw conflict(`'${rec.vmName}' is failed over; complete or cancel the failover before removing replication`);
      return this.replicas.remove(rec.id);
    }
    const p = this.primaries.get(rec.id)!;
    await p.stop();
    await p.vm.stopTracking();
    this.primaries.delete(rec.id);
    this.deps.repo.delete(rec.id);
    this.deps.events.emit({ severity: "info", kind: "replication.removed", vmId, relationshipId: rec.id, message: `Replication of '${rec.vmName}' was removed on the primary server.` });
  }
}

function describeHistory(r: { recoveryHistory: number; appConsistentFrequencyHours: number | null }): string {
  if (r.recoveryHistory === 0) return "latest recovery point only";
  const app = r.appConsistentFrequencyHours ? `, application-consistent every ${r.appConsistentFrequencyHours} h` : "";
  return `${r.recoveryHistory} additional hourly recovery points${app}`;
}
