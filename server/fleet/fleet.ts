/**
 * The hosts the console manages: the registry in the database and one HostLink per host.
 * Errors meant for the user are FleetError (with the field they concern) or AgentCallError.
 */
import { Prisma, type Db } from "../console/db/client.js";
import { AgentCallError, AgentClient } from "./agent-client.js";
import { platformOf } from "./agent-schemas.js";
import type { AgentRelationship, AgentVm } from "./agent-schemas.js";
import { replicationHealth } from "./health.js";
import { HostLink } from "./host-link.js";
import type { AgentAuth, ConsoleTls } from "./transport.js";
import { VmMetricsStore } from "./metrics.js";
import { hostView, type FleetNotifier, type HostView } from "./views.js";
import { vmView, type VmView } from "./vm-model.js";

export class FleetError extends Error {
  constructor(
    readonly code: "NOT_FOUND" | "CONFLICT" | "BAD_REQUEST",
    message: string,
    /** The input field the error is about, for forms. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/** How often health is judged again without news from the agents ("no sync for an hour"). */
const HEALTH_RECHECK_MS = 60_000;

export class Fleet {
  private readonly links = new Map<string, HostLink>();
  private recheck: NodeJS.Timeout | undefined;
  private readonly metrics = new VmMetricsStore();

  constructor(
    private readonly db: Db,
    private readonly notify: FleetNotifier,
    /** The console's client certificate for agents that use mutual TLS, if configured. */
    private readonly tls: ConsoleTls | null = null,
  ) {}

  private authOf(host: { auth: string; token: string | null }): AgentAuth {
    if (host.auth === "certificate") {
      if (!this.tls) throw new FleetError("BAD_REQUEST", "the console has no client certificate: start it with RM_AGENT_TLS_CERT, RM_AGENT_TLS_KEY and RM_AGENT_TLS_CA", "auth");
      return { kind: "certificate", tls: this.tls };
    }
    return { kind: "token", token: host.token ?? "" };
  }

  async start(): Promise<void> {
    const hosts = await this.db.host.findMany();
    for (const h of hosts) this.startLink(h);
    this.recheck = setInterval(() => void this.recheckHealth().catch((err) => console.error("console: health recheck", err)), HEALTH_RECHECK_MS);
    this.recheck.unref();
  }

  /**
   * Judges every relationship's health again as of `now`: time alone turns a silent one
   * Warning (no sync for an hour), also when its agent is unreachable and sends nothing.
   */
  async recheckHealth(now = Date.now()): Promise<number> {
    const rows = await this.db.vm.findMany({ where: { relationship: { not: Prisma.DbNull } } });
    let changed = 0;
    for (const row of rows) {
      const verdict = replicationHealth(row.relationship as unknown as AgentRelationship, now);
      if (verdict.health === row.replicationHealth && JSON.stringify(verdict.reasons) === JSON.stringify(row.healthReasons)) continue;
      const saved = await this.db.vm.update({
        where: { hostId_vmId: { hostId: row.hostId, vmId: row.vmId } },
        data: { replicationHealth: verdict.health, healthReasons: verdict.reasons },
      });
      this.notify.vmChanged(this.view(saved));
      changed++;
    }
    return changed;
  }

  async stop(): Promise<void> {
    clearInterval(this.recheck);
    await Promise.all([...this.links.values()].map((l) => l.stop()));
    this.links.clear();
  }

  /** Enrols an agent: checks that it answers and accepts the token or certificate, then follows it. */
  async addHost(input: { address: string } & ({ auth: "token"; token: string } | { auth: "certificate" })): Promise<HostView> {
    const address = input.address.replace(/\/+$/, "");
    const token = input.auth === "token" ? input.token : null;
    if (input.auth === "certificate" && !address.startsWith("https://")) throw new FleetError("BAD_REQUEST", "certificate authentication needs an https:// address", "address");
    const existing = await this.db.host.findFirst({ where: { address } });
    if (existing) throw new FleetError("CONFLICT", `${existing.name} is already connected at ${address}`, "address");
    let info;
    try {
      info = await new AgentClient(address, this.authOf({ auth: input.auth, token })).host();
    } catch (err) {
      if (err instanceof FleetError) throw err;
      if (err instanceof AgentCallError && err.status === 401) throw new FleetError("BAD_REQUEST", "the agent refused this management token", "token");
      if (err instanceof AgentCallError && err.status === 0) throw new FleetError("BAD_REQUEST", err.message, "address");
      throw new FleetError("BAD_REQUEST", `no Replica Manager agent answers at ${address}: ${(err as Error).message}`, "address");
    }
    if (await this.db.host.findUnique({ where: { name: info.hostName } })) {
      throw new FleetError("CONFLICT", `a host named ${info.hostName} is already connected`, "address");
    }
    const host = await this.db.host.create({ data: { name: info.hostName, address, auth: input.auth, token, agentVersion: info.version, ...platformOf(info) } });
    this.startLink(host);
    const view = hostView(host);
    this.notify.hostChanged(view);
    return view;
  }

  async removeHost(id: string): Promise<HostView> {
    const host = await this.hostOrThrow(id);
    await this.links.get(id)?.stop();
    this.links.delete(id);
    this.metrics.forgetHost(id);
    await this.db.host.delete({ where: { id } });
    this.notify.hostRemoved(id);
    return hostView(host);
  }

  async hosts(): Promise<HostView[]> {
    return (await this.db.host.findMany({ orderBy: { name: "asc" } })).map(hostView);
  }

  async hostOrThrow(id: string) {
    const host = await this.db.host.findUnique({ where: { id } });
    if (!host) throw new FleetError("NOT_FOUND", "no such host: it may have been removed", "hostId");
    return host;
  }

  /** A cached VM row as the browser sees it, with the figures kept in memory (CPU usage). */
  view(row: Parameters<typeof vmView>[0]): VmView {
    return vmView(row, this.metrics.cpuUsage(row.hostId, row.vmId));
  }

  link(hostId: string): HostLink {
    const link = this.links.get(hostId);
    if (!link) throw new FleetError("NOT_FOUND", "no such host: it may have been removed", "hostId");
    return link;
  }

  /** Calls the host's agent; the answered VM goes into the cache and out to the browsers at once. */
  async withVm(hostId: string, call: (client: AgentClient) => Promise<AgentVm>): Promise<AgentVm> {
    const link = this.link(hostId);
    const vm = await call(link.client);
    await link.applyVm(vm);
    return vm;
  }

  private startLink(host: { id: string; name: string; address: string; auth: string; token: string | null; lastEventId: number }): void {
    const link = new HostLink(host, this.authOf(host), this.db, this.notify, this.metrics);
    this.links.set(host.id, link);
    link.start();
  }
}
