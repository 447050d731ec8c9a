/**
 * The console's link to one agent: its event stream (resumed from the last id taken), a full
 * re-sync of the host's VMs on every (re)connection and after a gap in event ids, and the
 * cache in the database. Events are taken in batches: one transaction per batch, then one
 * notification per changed VM.
 */
import type { Db, Prisma } from "../console/db/client.js";
import { AgentCallError, AgentClient } from "./agent-client.js";
import { platformOf } from "./agent-schemas.js";
import type { AgentEvent, AgentVm } from "./agent-schemas.js";
import { AgentEventStream, describe } from "./event-stream.js";
import type { AgentAuth } from "./transport.js";
import type { VmMetricsStore } from "./metrics.js";
import { vmRow, vmView } from "./vm-model.js";
import { eventView, hostView, type FleetNotifier, type HostStatus } from "./views.js";

/** How many past events a newly added host brings into the events pane. */
const BACKFILL_EVENTS = 500;
/** Events kept per host, as many as an agent keeps itself. */
export const KEEP_EVENTS = 20_000;
const BATCH_MS = 40;
/** How often agents send the CPU usage of their running VMs. */
const METRICS_SECONDS = 2;

export interface HostRecord {
  id: string;
  name: string;
  address: string;
  lastEventId: number;
}

export class HostLink {
  readonly client: AgentClient;
  private stream: AgentEventStream | undefined;
  private pending: AgentEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Batches and re-syncs run one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private lastTaken: number;
  private lastReceived: number;
  private stopped = false;
  status: HostStatus = "connecting";
  private reason: string | null = null;

  constructor(
    private readonly host: HostRecord,
    private readonly auth: AgentAuth,
    private readonly db: Db,
    private readonly notify: FleetNotifier,
    private readonly metrics: VmMetricsStore,
  ) {
    this.client = new AgentClient(host.address, auth);
    this.lastTaken = host.lastEventId;
    this.lastReceived = host.lastEventId;
  }

  get id(): string {
    return this.host.id;
  }

  start(): void {
    this.openStream(this.host.lastEventId > 0 ? this.host.lastEventId : -1);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.stop();
    clearTimeout(this.timer);
    await this.chain;
  }

  /** Re-reads every VM of the host and replaces the cache; used on (re)connect and by Refresh. */
  resync(): Promise<void> {
    return this.enqueue(() => this.doResync());
  }

  /** Puts a VM as just answered by the agent into the cache (after a power action, a create). */
  applyVm(vm: AgentVm): Promise<void> {
    return this.enqueue(async () => {
      const row = this.row(vm);
      const saved = await this.db.vm.upsert({ where: { hostId_vmId: { hostId: this.host.id, vmId: vm.id } }, create: row, update: row });
      this.notify.vmChanged(this.view(saved));
    });
  }

  removeVm(vmId: string): Promise<void> {
    return this.enqueue(async () => {
      await this.db.vm.deleteMany({ where: { hostId: this.host.id, vmId } });
      this.metrics.set(this.host.id, vmId, null);
      this.notify.vmRemoved(this.host.id, vmId);
    });
  }

  /** -1: a new host; start from its recent history rather than replaying the whole log. */
  private openStream(from: number): void {
    this.stream?.stop();
    this.stream = new AgentEventStream({
      url: this.host.address,
      auth: this.auth,
      lastEventId: Math.max(0, from),
      onEvent: (e) => this.take(e),
      metrics: {
        everySeconds: METRICS_SECONDS,
        onMetrics: (m) => {
          const changes = this.metrics.replaceHost(this.host.id, m.vms);
          if (changes.length) this.notify.vmMetrics(this.host.id, changes);
        },
      },
      onStatus: (s, error) => {
        if (s === "connected") void this.resync().catch(() => {});
        else void this.setStatus("unreachable", error ?? "disconnected").catch((err) => console.error(`console: status of ${this.host.name}: ${describe(err)}`));
      },
    });
    if (from < 0) {
      void this.client
        .host()
        .then((h) => {
          if (this.stream && this.stream.lastEventId === 0) this.stream.lastEventId = Math.max(0, h.lastEventId - BACKFILL_EVENTS);
        })
        .catch(() => {})
        .finally(() => !this.stopped && this.stream?.start());
    } else this.stream.start();
  }

  /** The cache row of a VM as the agent answered it; its CPU usage goes to the metrics. */
  private row(vm: AgentVm) {
    this.metrics.set(this.host.id, vm.id, vm.cpuUsagePercent);
    return vmRow(this.host.id, this.host.name, vm);
  }

  private view(row: Parameters<typeof vmView>[0]) {
    return vmView(row, this.metrics.cpuUsage(row.hostId, row.vmId));
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.chain.then(job);
    this.chain = run.catch(() => {});
    return run;
  }

  private take(e: AgentEvent): void {
    if (this.lastReceived > 0 && e.id > this.lastReceived + 1) {
      // Ids are consecutive per host: a jump means events were pruned before we saw them.
      void this.resync().catch(() => {});
    }
    this.lastReceived = e.id;
    this.pending.push(e);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.enqueue(() => this.flush()).catch((err) => console.error(`console: events of ${this.host.name}: ${describe(err)}`));
    }, BATCH_MS);
  }

  private async flush(): Promise<void> {
    const events = this.pending.splice(0).filter((e) => e.id > this.lastTaken);
    if (events.length === 0) return;
    const vmIds = [...new Set(events.map((e) => e.vmId).filter((v): v is string => v !== null))];
    // A VM that cannot be read now (the agent went away mid-batch) is left to the re-sync on
    // reconnection; the events are stored all the same, so the history has no hole.
    const settled = await Promise.allSettled(vmIds.map(async (id) => [id, await this.vmOrGone(id)] as const));
    const fetched = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const last = events[events.length - 1]!.id;
    const rows = fetched.flatMap(([, vm]) => (vm ? [this.row(vm)] : []));
    const gone = fetched.filter(([, vm]) => vm === null).map(([id]) => id);
    await this.db.$transaction([
      this.db.event.createMany({
        data: events.map((e) => ({ hostId: this.host.id, agentEventId: e.id, ts: new Date(e.ts), severity: e.severity, kind: e.kind, vmId: e.vmId, message: e.message, data: (e.data ?? undefined) as Prisma.InputJsonObject | undefined })),
      }),
      ...rows.map((row) => this.db.vm.upsert({ where: { hostId_vmId: { hostId: row.hostId, vmId: row.vmId } }, create: row, update: row })),
      this.db.vm.deleteMany({ where: { hostId: this.host.id, vmId: { in: gone } } }),
      this.db.host.update({ where: { id: this.host.id }, data: { lastEventId: last, lastSeenAt: new Date() } }),
      this.db.event.deleteMany({ where: { hostId: this.host.id, agentEventId: { lte: last - KEEP_EVENTS } } }),
    ]);
    this.lastTaken = last;
    const stored = await this.db.event.findMany({ where: { hostId: this.host.id, agentEventId: { in: events.map((e) => e.id) } }, orderBy: { agentEventId: "asc" } });
    this.notify.events(this.host.id, stored.map(eventView));
    await this.announce(rows.map((r) => r.vmId), gone);
  }

  private async announce(changed: string[], gone: string[]): Promise<void> {
    if (changed.length) {
      for (const row of await this.db.vm.findMany({ where: { hostId: this.host.id, vmId: { in: changed } } })) this.notify.vmChanged(this.view(row));
    }
    for (const id of gone) this.notify.vmRemoved(this.host.id, id);
  }

  private async vmOrGone(vmId: string): Promise<AgentVm | null> {
    try {
      return await this.client.vm(vmId);
    } catch (err) {
      if (err instanceof AgentCallError && err.status === 404) return null;
      throw err;
    }
  }

  private async doResync(): Promise<void> {
    if (this.stopped) return;
    let vms: AgentVm[];
    try {
      const info = await this.client.host();
      if (this.stream && info.lastEventId < this.stream.lastEventId) {
        // The agent's log restarted below what we have taken (a new data folder): follow it
        // afresh; its old ids are reused, so the events kept from before go.
        await this.db.event.deleteMany({ where: { hostId: this.host.id } });
        this.lastTaken = this.lastReceived = 0;
        this.openStream(-1);
      }
      vms = await this.client.vms();
      await this.db.host.update({ where: { id: this.host.id }, data: { agentVersion: info.version, ...platformOf(info) } });
    } catch (err) {
      await this.setStatus("unreachable", err instanceof AgentCallError ? err.message : describe(err));
      throw err;
    }
    const rows = vms.map((vm) => this.row(vm));
    const before = await this.db.vm.findMany({ where: { hostId: this.host.id }, select: { vmId: true } });
    const gone = before.map((v) => v.vmId).filter((id) => !vms.some((vm) => vm.id === id));
    await this.db.$transaction([
      ...rows.map((row) => this.db.vm.upsert({ where: { hostId_vmId: { hostId: row.hostId, vmId: row.vmId } }, create: row, update: row })),
      this.db.vm.deleteMany({ where: { hostId: this.host.id, vmId: { in: gone } } }),
    ]);
    await this.announce(rows.map((r) => r.vmId), gone);
    await this.setStatus("connected", null);
  }

  private async setStatus(status: HostStatus, reason: string | null): Promise<void> {
    if (this.stopped) return;
    const changed = status !== this.status || reason !== this.reason;
    if (!changed && status !== "connected") return;
    this.status = status;
    this.reason = reason;
    const host = await this.db.host.update({
      where: { id: this.host.id },
      data: { status, statusReason: reason, ...(status === "connected" ? { lastSeenAt: new Date() } : {}) },
    });
    if (changed) this.notify.hostChanged(hostView(host));
  }
}
