/**
 * Planned failover, as in Hyper-V: zero data loss, and replication reversed by itself.
 *
 *   primary (A)                                   replica (B)
 *   prepare: VM off, replication healthy,
 *   A accepts replication from B; send the
 *   last changes (marked "prepared") → Prepared
 *                                                 fail over: the last cycle is applied;
 *   handover ←─────────────────────────────────── B asks A to hand over (A checks it is
 *   A's VM becomes B's replica (or is fenced)     prepared at exactly that cycle)
 *                                                 B's VM becomes the primary, tracked from
 *                                                 the switch point (both sides identical), and
 *                                                 optionally starts
 *
 * Each side's step can be driven through its own API, and `run` on A does all of it in one
 * call. Every step is safe to retry: a handover already done answers the same again.
 */
import type { ReplicaServerSettings } from "../../../shared/agent-api.js";
import type { LabHypervisor } from "../../hypervisor/lab/lab-hypervisor.js";
import type { EventLog } from "../../state/events.js";
import { emptyStats, type PrimaryRecord, type RelationshipRepo, type ReplicaRecord } from "../../state/relationships.js";
import { authorizePrimary } from "../../transport/authorization.js";
import type { PeerClient, PeerTarget } from "../../transport/peer-client.js";
import { PeerError } from "../../transport/peer-client.js";
import { AgentError, conflict } from "../../errors.js";
import { nowIso } from "../../util/clock.js";
import { failpoint } from "../../util/failpoints.js";
import type { PrimaryReplication } from "../primary.js";
import type { Peer, ReplicaStore } from "../replica-store.js";
import type { ReplicationManager } from "../manager.js";

export interface Step {
  step: string;
  ok: boolean;
  detail: string;
}

export interface FailoverOptions {
  /** "Reverse the replication direction after failover" (on by default). */
  reverse: boolean;
  /** "Start the Replica virtual machine after failover" (on by default). */
  start: boolean;
}

export interface FailoverDeps {
  hypervisor: LabHypervisor;
  repo: RelationshipRepo;
  events: EventLog;
  peers: PeerClient;
  replicas: ReplicaStore;
  manager: ReplicationManager;
  settings?: () => ReplicaServerSettings;
}

function refused(message: string, steps: Step[]): AgentError {
  return new AgentError(409, "PRECONDITION_FAILED", message, { steps });
}

export class PlannedFailover {
  constructor(private readonly deps: Required<FailoverDeps>) {}

  private event(severity: "info" | "warning" | "error", kind: string, rec: { id: string; vmId: string }, message: string, data?: Record<string, unknown>): void {
    this.deps.events.emit({ severity, kind, vmId: rec.vmId, relationshipId: rec.id, message, data });
  }

  /** Where this host takes replication back from the replica, in the relationship's mode. */
  private reverseEndpoint(p: PrimaryReplication): { port: number; authMode: "https" | "http" } | string {
    const s = this.deps.settings();
    const mode = p.record.authMode;
    if (!s.enabled) return "this host is not enabled as a Replica server (Hyper-V Settings > Replication Configuration)";
    if (!s[mode].enabled) return `this host's Replica server does not accept ${mode.toUpperCase()}, the relationship's authentication`;
    try {
      authorizePrimary(s, p.record.replicaServer);
    } catch (err) {
      return `this host's Replica server does not authorize '${p.record.replicaServer}': ${(err as Error).message}`;
    }
    return { port: s[mode].port, authMode: mode };
  }

  /** The preconditions, checked one by one, as the Planned Failover dialog lists them. */
  checks(vmId: string): Step[] {
    const p = this.deps.manager.primaryFor(vmId);
    const vm = this.deps.hypervisor.get(vmId);
    const r = p.record;
    const healthy = r.state === "Replicating" || r.state === "Prepared for planned failover";
    const reverse = this.reverseEndpoint(p);
    return [
      { step: "Check virtual machine is turned off", ok: vm.config.state === "Off", detail: vm.config.state === "Off" ? "Off" : `'${vm.config.name}' is ${vm.config.state}; shut it down first` },
      { step: "Check replication is healthy", ok: healthy, detail: healthy ? r.state : `replication is ${r.state}${r.reason ? `: ${r.reason}` : ""}` },
      {
        step: "Check configuration for allowing reverse replication",
        ok: typeof reverse !== "string",
        detail: typeof reverse === "string" ? reverse : `this host accepts replication from ${r.replicaServer} on ${reverse.authMode.toUpperCase()} port ${reverse.port}`,
      },
    ];
  }

  /** On the primary: checks, then sends every remaining change; the VM may not start until cancelled. */
  async prepare(vmId: string): Promise<{ steps: Step[]; record: PrimaryRecord }> {
    const steps = this.checks(vmId);
    const failed = steps.find((s) => !s.ok);
    if (failed) throw refused(`planned failover of ${vmId} cannot start: ${failed.step.toLowerCase()} failed (${failed.detail})`, steps);
    const p = this.deps.manager.primaryFor(vmId);
    if (p.record.state === "Prepared for planned failover") return { steps: [...steps, { step: "Send data that has not been replicated to Replica server", ok: true, detail: `already prepared at cycle ${p.record.lastAckedSeq}` }], record: p.record };
    p.preparing = true;
    const outcome = await p.replicateNow();
    if (!outcome?.ok) {
      p.preparing = false;
      steps.push({ step: "Send data that has not been replicated to Replica server", ok: false, detail: outcome?.error ?? "no cycle could run" });
      throw refused(`planned failover of '${p.record.vmName}' stopped: the last changes could not be sent (${outcome?.error})`, steps);
    }
    p.setState("Prepared for planned failover");
    steps.push({ step: "Send data that has not been replicated to Replica server", ok: true, detail: `cycle ${outcome.seq}: ${outcome.changedBytes} bytes` });
    this.event("info", "replication.prepared", p.record, `'${p.record.vmName}' is prepared for planned failover: all its changes up to cycle ${outcome.seq} are on ${p.record.replicaServer}; it may not start here until the failover is cancelled.`, { seq: outcome.seq });
    return { steps, record: p.record };
  }

  /** On the primary: back to normal replication (before the replica failed over). */
  cancel(vmId: string): PrimaryRecord {
    const p = this.deps.manager.primaryFor(vmId);
    if (p.record.state !== "Prepared for planned failover") throw conflict(`'${p.record.vmName}' is not prepared for planned failover (replication is ${p.record.state})`);
    p.preparing = false;
    // A handover cut short by a crash may have fenced the VM already: this host stays the primary.
    const vm = this.deps.hypervisor.get(vmId);
    if (vm.config.replicaOf) {
      const { replicaOf: _, ...config } = vm.config;
      vm.config = config;
      void vm.saveConfig();
    }
    p.setState("Replicating");
    p.start();
    return p.record;
  }

  /** On the primary, one call: prepare, then have the replica fail over (and reverse, and start). */
  async run(vmId: string, opts: FailoverOptions): Promise<Step[]> {
    const { steps, record } = await this.prepare(vmId);
    const target: PeerTarget = { server: record.replicaServer, port: record.replicaPort, mode: record.authMode };
    try {
      const remote = await this.deps.peers.json<{ steps: Step[] }>(target, "POST", `/replication/v1/relationships/${record.id}/planned-failover`, opts);
      return [...steps, ...remote.steps];
    } catch (err) {
      const detail = (err as Error).message;
      steps.push({ step: "Fail over on Replica server", ok: false, detail });
      // The handover may have happened before the Replica server failed: then only it can finish.
      const now = this.deps.repo.get(record.id);
      const next = now?.role === "replica" ? `This host already handed over: run Planned Failover on ${record.replicaServer} again to finish it.` : `'${record.vmName}' stays prepared here: retry, or cancel the failover.`;
      throw new AgentError(err instanceof PeerError && err.status < 500 ? 409 : 502, "FAILOVER_FAILED", `the Replica server did not fail '${record.vmName}' over: ${detail}. ${next}`, { steps });
    }
  }

  /** On the replica: the failover step. The primary must have handed over its last cycle. */
  async failOver(vmId: string, opts: FailoverOptions, from?: Peer): Promise<{ steps: Step[] }> {
    const rec = this.deps.replicas.replicaOfVm(vmId);
    if (from && from.name !== rec.primaryServer) throw new AgentError(403, "FORBIDDEN", `'${from.name}' is not the primary server of '${rec.vmName}'`);
    if (rec.failover || rec.state === "Failed over (waiting for completion)") throw conflict(`'${rec.vmName}' is failed over (unplanned); complete or cancel that failover first`);
    if (rec.state === "Failover complete") throw conflict(`the failover of '${rec.vmName}' is complete; use Reverse Replication`);
    const steps: Step[] = [];
    const prepared = rec.returnPath;
    const ready = prepared !== null && prepared !== undefined && rec.preparedSeq === rec.lastAppliedSeq && !rec.staged;
    steps.push({ step: "Check the primary's last changes are applied", ok: ready, detail: ready ? `cycle ${rec.lastAppliedSeq}` : "the primary has not been prepared for planned failover (or cycles arrived since); prepare it first, or use Failover for an unplanned failover" });
    if (rec.testFailover) steps.push({ step: "Check no test failover is running", ok: false, detail: `stop the test failover of '${rec.vmName}' first` });
    const failed = steps.find((s) => !s.ok);
    if (failed || !prepared) throw refused(`'${rec.vmName}' cannot fail over: ${failed?.detail}`, steps);

    // The primary confirms it is prepared at exactly this cycle, and hands over (or is fenced).
    const target: PeerTarget = { server: rec.primaryServer, port: prepared.port, mode: prepared.authMode };
    try {
      await this.deps.peers.json(target, "POST", `/replication/v1/relationships/${rec.id}/handover`, { seq: rec.lastAppliedSeq, reverse: opts.reverse });
    } catch (err) {
      steps.push({ step: "Hand over from the primary server", ok: false, detail: (err as Error).message });
      throw new AgentError(409, "FAILOVER_FAILED", `the primary server ${rec.primaryServer} did not hand '${rec.vmName}' over: ${(err as Error).message}; nothing was changed here`, { steps });
    }
    steps.push({ step: "Fail over on Replica server", ok: true, detail: `'${rec.vmName}' is now the primary virtual machine on this host` });
    failpoint("failover.after-handover");
    await this.deps.replicas.release(rec.id);
    const vm = this.deps.hypervisor.get(vmId);
    if (opts.reverse) {
      const primary = { ...reversedPrimary(rec, prepared, "Replicating", null), lastSyncAt: rec.lastSyncAt };
      // Both sides hold the same bytes at the switch point: track from here, no initial copy.
      await vm.startTracking(rec.disks.map((d) => d.index), false);
      this.deps.manager.adoptPrimary(primary, vm);
      steps.push({ step: "Reverse the replication direction", ok: true, detail: `replicating to ${rec.primaryServer} from cycle ${rec.lastAppliedSeq + 1}, no initial copy` });
    } else {
      steps.push({ step: "Reverse the replication direction", ok: true, detail: "not requested: run Reverse Replication later" });
    }
    this.event("info", "replica.failed-over", rec, `Planned failover of '${rec.vmName}' completed with no data loss: it is now the primary virtual machine on this host${opts.reverse ? `, replicating back to ${rec.primaryServer}` : ""}.`, { seq: rec.lastAppliedSeq, reverse: opts.reverse });
    if (opts.start) {
      await this.deps.hypervisor.power(vmId, "start");
      steps.push({ step: "Start the Replica virtual machine", ok: true, detail: "Running" });
    }
    return { steps };
  }

  /**
   * On the former primary, asked by its replica: hand over at cycle `seq`. With `reverse`,
   * its VM becomes the replica of the new primary; otherwise it is fenced (may not start).
   */
  async handover(id: string, seq: number, reverse: boolean, peer: Peer, unplanned = false): Promise<{ state: string }> {
    const rec = this.deps.repo.get(id);
    if (!rec) throw new AgentError(404, "NOT_FOUND", `no relationship ${id} on this host`);
    if (rec.role === "replica") {
      // Already handed over (a retried failover): the same answer again.
      if (rec.primaryServer === peer.name && (unplanned || rec.lastAppliedSeq === seq)) return { state: rec.state };
      throw conflict(`relationship ${id} is already the replica side here, from ${rec.primaryServer} at cycle ${rec.lastAppliedSeq}`);
    }
    if (rec.replicaServer !== peer.name) throw new AgentError(403, "FORBIDDEN", `'${peer.name}' is not the Replica server of '${rec.vmName}'`);
    const p = this.deps.manager.primaryFor(rec.vmId);
    const vm = this.deps.hypervisor.get(rec.vmId);
    if (unplanned) {
      // The replica failed over without us: whatever this VM wrote since is given up, and it
      // is turned off before it becomes the replica. A resynchronization follows.
      if (vm.config.state !== "Off") await this.deps.hypervisor.power(rec.vmId, "turn-off");
      return this.becomeReplica(rec, p.record.lastAckedSeq, peer, "Resynchronizing");
    }
    if (rec.state === "Failover complete" && !reverse) return { state: rec.state };
    if (rec.state !== "Prepared for planned failover" && rec.state !== "Failover complete") throw conflict(`'${rec.vmName}' is not prepared for planned failover here (replication is ${rec.state}); prepare it first`);
    if (p.record.lastAckedSeq !== seq) throw conflict(`'${rec.vmName}' was prepared at cycle ${p.record.lastAckedSeq}, not ${seq}: changes would be lost; prepare it again`);
    if (!reverse) {
      p.setState("Failover complete", `failed over to ${peer.name}; run Reverse Replication there to make this virtual machine its replica`);
      return { state: "Failover complete" };
    }
    return this.becomeReplica(rec, seq, peer, "Replicating");
  }

  /** This host's primary side of a relationship becomes the replica side, fenced first. */
  private async becomeReplica(rec: PrimaryRecord, seq: number, peer: Peer, state: "Replicating" | "Resynchronizing"): Promise<{ state: string }> {
    const vm = await this.deps.hypervisor.asReplicaImages(rec.vmId);
    const authorized = this.deps.replicas.gate.authorize(peer);
    // Fence first: from here on this VM never starts as a second primary.
    vm.config = { ...vm.config, replicaOf: { primaryServer: peer.name } };
    await vm.saveConfig();
    failpoint("failover.handover-fenced");
    await this.deps.manager.dropPrimary(rec.id);
    const replica: ReplicaRecord = {
      id: rec.id,
      role: "replica",
      vmId: rec.vmId,
      vmName: rec.vmName,
      primaryServer: peer.name,
      trustGroup: authorized.trustGroup,
      storageDir: vm.dir,
      state,
      frequencySeconds: rec.frequencySeconds,
      disks: rec.disks,
      createdAt: nowIso(),
      lastSyncAt: rec.lastSyncAt,
      lastAppliedSeq: seq,
      staged: null,
      recoveryHistory: rec.recoveryHistory,
      points: [],
      stats: emptyStats(),
      reason: null,
      // The new primary answers where this host sent its cycles: the split-brain guard of an
      // unplanned failover here can ask it before its first cycle says so.
      returnPath: { port: rec.replicaPort, authMode: rec.authMode },
    };
    this.deps.repo.save(replica);
    this.event("info", "replication.reversed", rec, `'${rec.vmName}' failed over to ${peer.name} and is now its replica here; replication runs the other way from cycle ${seq + 1}.`, { seq });
    return { state: replica.state };
  }
}

/**
 * The primary side a failover makes of a replica record: same relationship and sequence,
 * replicating back to the former primary at `target`.
 */
export function reversedPrimary(rec: ReplicaRecord, target: { port: number; authMode: "https" | "http" }, state: PrimaryRecord["state"], reason: string | null): PrimaryRecord {
  return {
    id: rec.id,
    role: "primary",
    vmId: rec.vmId,
    vmName: rec.vmName,
    replicaServer: rec.primaryServer,
    replicaPort: target.port,
    authMode: target.authMode,
    compression: true,
    frequencySeconds: rec.frequencySeconds,
    disks: rec.disks,
    state,
    createdAt: nowIso(),
    lastSyncAt: null,
    lastAckedSeq: rec.lastAppliedSeq,
    reconcile: true,
    recoveryHistory: rec.recoveryHistory,
    appConsistentFrequencyHours: null,
    lastPointAt: null,
    lastAppConsistentAt: null,
    stats: emptyStats(),
    reason,
  };
}
