/**
 * The host agent: wires its modules together, starts them in order and stops them in the
 * reverse order. The console is never needed for replication to run.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import type { HostReplicationSettings, ReplicaServerSettings } from "../shared/agent-api.js";
import { TokenBucket } from "./replication/token-bucket.js";
import { ReplicaServerSettings as SettingsSchema } from "../shared/agent-api.js";
import { readTls, type AgentConfig, type TlsMaterial } from "./config.js";
import { AgentError } from "./errors.js";
import { LabHypervisor } from "./hypervisor/lab/lab-hypervisor.js";
import { QemuHypervisor } from "./hypervisor/qemu/qemu-hypervisor.js";
import { CodecPool } from "./replication/codec-pool.js";
import { ReplicationManager } from "./replication/manager.js";
import { ReplicaStore } from "./replication/replica-store.js";
import { getSetting, openDb, putSetting, type Db } from "./state/db.js";
import { EventLog } from "./state/events.js";
import { RelationshipRepo } from "./state/relationships.js";
import { createServer } from "./transport/http-common.js";
import { registerManagementApi } from "./transport/management-api.js";
import { PeerClient } from "./transport/peer-client.js";
import { registerReplicationApi } from "./transport/replication-api.js";

export const AGENT_VERSION = "0.1.0";
const SETTINGS_KEY = "replica-server";
const HOST_REPLICATION_KEY = "host-replication";

export function defaultReplicaSettings(dataDir: string): ReplicaServerSettings {
  return {
    enabled: false,
    http: { enabled: false, port: 9080 },
    https: { enabled: true, port: 9443 },
    authorization: { mode: "any", defaultStorageLocation: join(dataDir, "replicas"), trustGroup: "DEFAULT" },
  };
}

export class Agent {
  readonly log: Logger;
  private db: Db | undefined;
  private events: EventLog | undefined;
  private hypervisor: LabHypervisor | undefined;
  private pool: CodecPool | undefined;
  private peers: PeerClient | undefined;
  private manager: ReplicationManager | undefined;
  private management: FastifyInstance | undefined;
  private listeners: { http?: FastifyInstance; https?: FastifyInstance } = {};
  private replicationTls: TlsMaterial | undefined;
  private settings: ReplicaServerSettings | undefined;
  private hostReplication: HostReplicationSettings = { bandwidthLimitMiBps: null };
  private hostBucket: TokenBucket | undefined;

  constructor(
    readonly config: AgentConfig,
    log?: Logger,
  ) {
    this.log = log ?? pino({ level: config.logLevel, base: { host: config.hostName } });
  }

  async start(): Promise<{ managementUrl: string }> {
    const cfg = this.config;
    await mkdir(cfg.dataDir, { recursive: true });
    const managementTls = readTls(cfg.management.tls, "management.tls");
    this.replicationTls = readTls(cfg.replication.tls, "replication.tls");

    this.db = openDb(join(cfg.dataDir, "agent.db"));
    this.events = new EventLog(this.db, this.log);
    this.settings = getSetting<ReplicaServerSettings>(this.db, SETTINGS_KEY) ?? cfg.replicaServer ?? defaultReplicaSettings(cfg.dataDir);
    putSetting(this.db, SETTINGS_KEY, this.settings);
    this.setHostReplication(getSetting<HostReplicationSettings>(this.db, HOST_REPLICATION_KEY) ?? this.hostReplication);

    this.hypervisor = cfg.hypervisor === "qemu" ? new QemuHypervisor(cfg.dataDir, this.db, this.events) : new LabHypervisor(cfg.dataDir, this.db, this.events);
    await this.hypervisor.start();
    this.pool = new CodecPool();
    this.peers = new PeerClient({ hostName: cfg.hostName, tls: this.replicationTls, token: cfg.replication.token, resolve: cfg.resolve });
    const repo = new RelationshipRepo(this.db);
    const replicas = new ReplicaStore({ repo, events: this.events, hypervisor: this.hypervisor, pool: this.pool, settings: () => this.settings!, log: this.log });
    this.manager = new ReplicationManager(cfg.hostName, this.hypervisor, replicas, {
      repo,
      events: this.events,
      pool: this.pool,
      peers: this.peers,
      token: cfg.replication.token,
      hostBucket: () => this.hostBucket,
      fence: async (vmId) => {
        const vm = this.hypervisor!.find(vmId);
        if (vm && vm.config.state !== "Off") await this.hypervisor!.power(vmId, "turn-off");
      },
      returnPath: (mode) => {
        const s = this.settings!;
        return s.enabled && s[mode].enabled ? { port: s[mode].port, authMode: mode } : null;
      },
    }, () => ({ https: Boolean(this.replicationTls), http: Boolean(cfg.replication.token) }));
    await this.manager.start();
    await this.startReplicationListeners();

    // With a token as well, clients without a certificate may connect and show the token.
    const management = createServer(this.log, "management", managementTls && { ...managementTls, requestCert: true, rejectUnauthorized: !cfg.management.token });
    this.management = management;
    registerManagementApi(management, {
      hostName: cfg.hostName,
      version: AGENT_VERSION,
      startedAt: new Date().toISOString(),
      token: cfg.management.token,
      hypervisor: this.hypervisor,
      replication: this.manager,
      events: this.events,
      getReplicaSettings: () => this.settings!,
      setReplicaSettings: (s) => this.setReplicaSettings(s),
      getHostReplication: () => this.hostReplication,
      setHostReplication: (s) => this.setHostReplication(s),
      capabilities: () => ({ https: Boolean(this.replicationTls), http: Boolean(cfg.replication.token) }),
    });
    await management.listen({ host: cfg.listen, port: cfg.management.port });
    const managementUrl = `${managementTls ? "https" : "http"}://${cfg.listen}:${cfg.management.port}`;
    await writeFile(join(cfg.dataDir, "agent.pid"), String(process.pid));
    this.events.emit({ severity: "info", kind: "agent.started", message: `Host agent ${cfg.hostName} started (management ${managementUrl}).` });
    return { managementUrl };
  }

  /** New settings take effect only once their listeners are bound; otherwise nothing changes. */
  /** A bandwidth limit for all of this host's outgoing replication, applied from the next chunk. */
  private setHostReplication(s: HostReplicationSettings): HostReplicationSettings {
    const rate = s.bandwidthLimitMiBps ? s.bandwidthLimitMiBps * 1024 * 1024 : 0;
    if (!rate) this.hostBucket = undefined;
    else if (this.hostBucket) this.hostBucket.setRate(rate);
    else this.hostBucket = new TokenBucket(rate);
    this.hostReplication = s;
    putSetting(this.db!, HOST_REPLICATION_KEY, s);
    return s;
  }

  private async setReplicaSettings(next: ReplicaServerSettings): Promise<ReplicaServerSettings> {
    const s = SettingsSchema.parse(next);
    for (const t of ["http", "https"] as const) {
      if (s[t].enabled && s[t].port === this.config.management.port) {
        throw new AgentError(400, "VALIDATION", `body.${t}.port: port ${s[t].port} is this agent's management port; choose another`, {
          issues: [{ field: `body.${t}.port`, message: "is the management port" }],
        });
      }
    }
    const previous = this.settings!;
    await this.stopReplicationListeners();
    this.settings = s;
    try {
      await this.startReplicationListeners();
    } catch (err) {
      await this.stopReplicationListeners();
      this.settings = previous;
      await this.startReplicationListeners();
      const e = err as NodeJS.ErrnoException & { port?: number };
      const which = e.port === s.https.port ? "https" : "http";
      throw new AgentError(409, "PORT_IN_USE", `body.${which}.port: port ${s[which].port} cannot be used (${e.code ?? e.message}); the previous settings stay in force`, {
        issues: [{ field: `body.${which}.port`, message: "is in use" }],
      });
    }
    putSetting(this.db!, SETTINGS_KEY, s);
    this.events!.emit({ severity: "info", kind: "replica-server.settings", message: `Replica server settings changed: ${s.enabled ? "enabled" : "disabled"}, HTTP ${s.http.enabled ? s.http.port : "off"}, HTTPS ${s.https.enabled ? s.https.port : "off"}, authorization ${s.authorization.mode === "any" ? "from any authenticated server" : `${s.authorization.entries.length} entries`}.` });
    return s;
  }

  /** One listener per enabled transport; they answer refusals even while disabled as a Replica server. */
  private async startReplicationListeners(): Promise<void> {
    const s = this.settings!;
    const manager = this.manager!;
    const missing = [
      s.https.enabled && !this.replicationTls && "HTTPS is enabled but replication.tls (certificate, key, CA) is not configured",
      s.http.enabled && !this.config.replication.token && "HTTP is enabled but replication.token is not configured",
    ].filter(Boolean);
    for (const m of missing) {
      this.events!.emit({ severity: "warning", kind: "replica-server.listener-off", message: `Replica server: ${m}; that listener does not run.` });
    }
    if (s.https.enabled && this.replicationTls) {
      const app = createServer(this.log, "replication-https", { ...this.replicationTls, requestCert: true, rejectUnauthorized: false });
      registerReplicationApi(app, "https", manager, undefined);
      await app.listen({ host: this.config.listen, port: s.https.port });
      this.listeners.https = app;
    }
    if (s.http.enabled && this.config.replication.token) {
      const app = createServer(this.log, "replication-http");
      registerReplicationApi(app, "http", manager, this.config.replication.token);
      await app.listen({ host: this.config.listen, port: s.http.port });
      this.listeners.http = app;
    }
  }

  private async stopReplicationListeners(): Promise<void> {
    await this.listeners.http?.close();
    await this.listeners.https?.close();
    this.listeners = {};
  }

  /**
   * Ordered shutdown: stop taking requests, cut cycles in flight short (requests waiting on
   * them then finish), save VMs, close storage.
   */
  async stop(): Promise<void> {
    const closing = this.management?.close();
    await this.stopReplicationListeners();
    await this.manager?.stop();
    this.log.info("shutdown: replication stopped");
    // Requests that waited on a cycle have answered by now; their keep-alive connections
    // went idle after close() began, and nothing else would close them.
    await new Promise((r) => setImmediate(r));
    this.management?.server.closeIdleConnections();
    await closing;
    this.log.info("shutdown: management API closed");
    await this.hypervisor?.stop();
    this.log.info("shutdown: virtual machines saved");
    await this.pool?.close();
    this.peers?.close();
    this.events?.emit({ severity: "info", kind: "agent.stopped", message: `Host agent ${this.config.hostName} stopped.` });
    this.db?.close();
    await rm(join(this.config.dataDir, "agent.pid"), { force: true });
  }
}
