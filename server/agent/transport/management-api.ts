/** The management API (/api/v1): what the console, the CLI and the tests call. */
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import {
  CreateVmBody,
  DiskReadQuery,
  DiskWriteQuery,
  EnableReplicationBody,
  EventsQuery,
  PowerAction,
  FailoverOptionsBody,
  HostReplicationSettings,
  ImportInitialReplicaBody,
  ReplicaServerSettings,
  ResynchronizeBody,
  TestConnectionBody,
  type VmMetrics,
  ReverseReplicationBody,
  TestFailoverBody,
  UnplannedFailoverBody,
  UpdateReplicationBody,
  VmId,
  WorkloadSpec,
} from "../../shared/agent-api.js";
import type { LabHypervisor } from "../hypervisor/lab/lab-hypervisor.js";
import { QemuHypervisor } from "../hypervisor/qemu/qemu-hypervisor.js";
import type { LabVm } from "../hypervisor/lab/lab-vm.js";
import type { ReplicationManager } from "../replication/manager.js";
import type { EventLog } from "../state/events.js";
import { AgentError } from "../errors.js";
import { TrackedDisk } from "../tracking/tracked-disk.js";
import { hashFile } from "../util/direct-file.js";
import { parse } from "./http-common.js";
import { registerRecoveryApi } from "./recovery-api.js";
import { checkManagementAuth } from "./management-auth.js";
import { attachVmConsole } from "./vm-console.js";

export interface ManagementContext {
  hostName: string;
  version: string;
  startedAt: string;
  token?: string;
  hypervisor: LabHypervisor;
  replication: ReplicationManager;
  events: EventLog;
  getReplicaSettings(): ReplicaServerSettings;
  setReplicaSettings(s: ReplicaServerSettings): Promise<ReplicaServerSettings>;
  getHostReplication(): HostReplicationSettings;
  setHostReplication(s: HostReplicationSettings): HostReplicationSettings;
  capabilities(): { https: boolean; http: boolean };
}

const VmParams = z.object({ vmId: VmId });
const DiskParams = z.object({ vmId: VmId, disk: z.coerce.number().int().min(0).max(3, "disk must be 0-3") });
const MiB = 1024 * 1024;

function vmView(vm: LabVm, ctx: ManagementContext) {
  const c = vm.config;
  const running = c.state === "Running" || c.state === "Paused";
  return {
    id: c.id,
    name: c.name,
    state: c.state,
    cpus: c.cpus,
    memoryMiB: c.memoryMiB,
    assignedMemoryMiB: running ? c.memoryMiB : 0,
    cpuUsagePercent: c.state === "Running" ? vm.cpuUsagePercent() : null,
    uptimeSeconds: running ? Math.floor((Date.now() - Date.parse(c.stateChangedAt)) / 1000) : 0,
    disks: c.disks.map((d) => ({ index: d.index, sizeBytes: d.sizeBytes })),
    workload: c.workload,
    networkConnected: c.networkConnected,
    isReplica: Boolean(c.replicaOf),
    testOf: c.testOf ?? null,
    networkName: c.networkName ?? null,
    createdAt: c.createdAt,
    replication: ctx.replication.forVm(c.id),
  };
}

/** Which hypervisor runs this host's VMs, and (QEMU) whether KVM or emulation. */
function hypervisorInfo(h: LabHypervisor): { hypervisor: "lab" | "qemu"; accelerator?: "kvm" | "tcg" } {
  return h instanceof QemuHypervisor ? { hypervisor: "qemu", accelerator: h.accelerator } : { hypervisor: "lab" };
}

export function registerManagementApi(app: FastifyInstance, ctx: ManagementContext): void {
  app.addContentTypeParser("application/octet-stream", { parseAs: "buffer", bodyLimit: 64 * MiB }, (_req, body, done) => done(null, body));

  if (ctx.token) app.addHook("onRequest", async (req) => checkManagementAuth(req.raw, ctx.token));
  attachVmConsole(app, ctx);

  app.get("/api/v1/host", async () => ({
    hostName: ctx.hostName,
    version: ctx.version,
    ...hypervisorInfo(ctx.hypervisor),
    startedAt: ctx.startedAt,
    replicaServer: ctx.getReplicaSettings(),
    capabilities: ctx.capabilities(),
    vmCount: ctx.hypervisor.list().length,
    lastEventId: ctx.events.lastId(),
  }));

  app.get("/api/v1/vms", async () => ctx.hypervisor.list().map((vm) => vmView(vm, ctx)));

  app.post("/api/v1/vms", async (req, reply) => {
    const body = parse(CreateVmBody, req.body, "body");
    const vm = await ctx.hypervisor.create(body);
    return reply.status(201).send(vmView(vm, ctx));
  });

  app.get("/api/v1/vms/:vmId", async (req) => vmView(ctx.hypervisor.get(parse(VmParams, req.params, "params").vmId), ctx));

  app.delete("/api/v1/vms/:vmId", async (req, reply) => {
    const { vmId } = parse(VmParams, req.params, "params");
    await ctx.hypervisor.delete(vmId, (id) => ctx.replication.isReplicated(id));
    return reply.status(204).send();
  });

  app.post("/api/v1/vms/:vmId/power", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const { action } = parse(z.object({ action: PowerAction }), req.body, "body");
    await ctx.hypervisor.power(vmId, action);
    return vmView(ctx.hypervisor.get(vmId), ctx);
  });

  app.put("/api/v1/vms/:vmId/workload", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    await ctx.hypervisor.setWorkload(vmId, parse(WorkloadSpec, req.body, "body"));
    return vmView(ctx.hypervisor.get(vmId), ctx);
  });

  app.put("/api/v1/vms/:vmId/disks/:disk/data", async (req) => {
    const { vmId, disk } = parse(DiskParams, req.params, "params");
    const { offset } = parse(DiskWriteQuery, req.query, "query");
    if (!Buffer.isBuffer(req.body) || req.body.length === 0) {
      throw new AgentError(400, "VALIDATION", "body: send the bytes to write as application/octet-stream (1 byte to 64 MiB)");
    }
    const vm = ctx.hypervisor.get(vmId);
    if (vm.config.replicaOf) throw new AgentError(409, "CONFLICT", `'${vm.config.name}' is a Replica virtual machine; its disks change only by replication`);
    const size = vm.disk(disk).sizeBytes;
    if (offset + req.body.length > size) {
      throw new AgentError(400, "VALIDATION", `query.offset: ${offset} + ${req.body.length} bytes runs past the end of disk ${disk} (${size} bytes)`, {
        issues: [{ field: "query.offset", message: `runs past the end of disk ${disk}` }],
      });
    }
    await vm.guestWrite(disk, offset, req.body);
    return { written: req.body.length, offset };
  });

  app.get("/api/v1/vms/:vmId/disks/:disk/data", async (req, reply) => {
    const { vmId, disk } = parse(DiskParams, req.params, "params");
    const { offset, length } = parse(DiskReadQuery, req.query, "query");
    const vm = ctx.hypervisor.get(vmId);
    const size = vm.disk(disk).sizeBytes;
    if (offset + length > size) {
      throw new AgentError(400, "VALIDATION", `query.length: offset ${offset} + length ${length} runs past the end of disk ${disk} (${size} bytes)`, {
        issues: [{ field: "query.length", message: `runs past the end of disk ${disk}` }],
      });
    }
    const data = await vm.queue.run(() => vm.disk(disk).read(offset, length));
    return reply.type("application/octet-stream").send(data);
  });

  app.get("/api/v1/vms/:vmId/disks/:disk/hash", async (req) => {
    const { vmId, disk } = parse(DiskParams, req.params, "params");
    const vm = ctx.hypervisor.get(vmId);
    const d = vm.disk(disk);
    // Guest writes wait while hashing, so the hash is of one point in time.
    const sha256 = await ctx.replication.replicas.exclusive(vmId, () =>
      vm.queue.run(async () => {
        // Lab disk images are read past the page cache, as replicated data is written.
        if (d instanceof TrackedDisk) return hashFile(d.path, d.sizeBytes);
        const h = createHash("sha256");
        for (let off = 0; off < d.sizeBytes; off += 4 * MiB) h.update(await d.read(off, Math.min(4 * MiB, d.sizeBytes - off)));
        return h.digest("hex");
      }),
    );
    return { vmId, disk, sizeBytes: d.sizeBytes, sha256 };
  });

  registerRecoveryApi(app, ctx.replication.replicas, ctx.events);

  app.get("/api/v1/replication-settings", async () => ctx.getHostReplication());
  app.put("/api/v1/replication-settings", async (req) => ctx.setHostReplication(parse(HostReplicationSettings, req.body, "body")));

  app.get("/api/v1/replica-server", async () => ctx.getReplicaSettings());
  app.put("/api/v1/replica-server", async (req) => ctx.setReplicaSettings(parse(ReplicaServerSettings, req.body, "body")));

  app.get("/api/v1/replication", async () => ctx.replication.all());
  app.post("/api/v1/replication/test-connection", async (req) => ctx.replication.testConnection(parse(TestConnectionBody, req.body, "body")));
  app.get("/api/v1/vms/:vmId/replication", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    ctx.hypervisor.get(vmId);
    return ctx.replication.forVm(vmId);
  });
  app.post("/api/v1/vms/:vmId/replication", async (req, reply) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const rec = await ctx.replication.enable(vmId, parse(EnableReplicationBody, req.body, "body"));
    return reply.status(201).send(rec);
  });
  app.patch("/api/v1/vms/:vmId/replication", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    return ctx.replication.update(vmId, parse(UpdateReplicationBody, req.body, "body"));
  });
  app.delete("/api/v1/vms/:vmId/replication", async (req, reply) => {
    const { vmId } = parse(VmParams, req.params, "params");
    await ctx.replication.remove(vmId);
    return reply.status(204).send();
  });
  app.get("/api/v1/vms/:vmId/replication/planned-failover", async (req) => ({ steps: ctx.replication.planned.checks(parse(VmParams, req.params, "params").vmId) }));
  app.post("/api/v1/vms/:vmId/replication/planned-failover/prepare", async (req) => ctx.replication.planned.prepare(parse(VmParams, req.params, "params").vmId));
  app.post("/api/v1/vms/:vmId/replication/planned-failover/cancel", async (req) => ctx.replication.planned.cancel(parse(VmParams, req.params, "params").vmId));
  app.post("/api/v1/vms/:vmId/replication/planned-failover", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const opts = parse(FailoverOptionsBody, req.body ?? {}, "body");
    // On the primary: the whole failover in one call; on the Replica server: its step.
    const role = ctx.replication.forVm(vmId)[0]?.role;
    if (role === "primary") return { steps: await ctx.replication.planned.run(vmId, opts) };
    return ctx.replication.planned.failOver(vmId, opts);
  });

  app.post("/api/v1/vms/:vmId/replication/import", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    return ctx.replication.replicas.importInitial(vmId, parse(ImportInitialReplicaBody, req.body, "body").folder);
  });
  app.get("/api/v1/vms/:vmId/replication/history-estimate", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const { recoveryHistory } = parse(z.object({ recoveryHistory: z.coerce.number().int().min(0, "recoveryHistory must be 0-24").max(24, "recoveryHistory must be 0-24") }), req.query, "query");
    return ctx.replication.historyEstimate(vmId, recoveryHistory);
  });
  app.get("/api/v1/vms/:vmId/replication/statistics", async (req) => ctx.replication.statistics(parse(VmParams, req.params, "params").vmId));
  app.post("/api/v1/vms/:vmId/replication/statistics/reset", async (req) => ctx.replication.resetStatistics(parse(VmParams, req.params, "params").vmId));
  app.get("/api/v1/vms/:vmId/replication/statistics.csv", async (req, reply) => {
    const s = ctx.replication.statistics(parse(VmParams, req.params, "params").vmId);
    const row: Record<string, unknown> = { ...s, healthReasons: s.healthReasons.join(" | "), monitoringFrom: s.monitoring.from, monitoringTo: s.monitoring.to, monitoring: undefined };
    const keys = Object.keys(row).filter((k) => row[k] !== undefined);
    const cell = (v: unknown) => {
      const text = v === null ? "" : String(v);
      return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
    };
    return reply
      .type("text/csv; charset=utf-8")
      .header("content-disposition", `attachment; filename="${s.vmName.replace(/[^A-Za-z0-9._-]/g, "_")}-replication-statistics.csv"`)
      .send(`${keys.join(",")}\n${keys.map((k) => cell(row[k])).join(",")}\n`);
  });
  app.get("/api/v1/vms/:vmId/replication/cycles", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const { limit } = parse(z.object({ limit: z.coerce.number().int().min(1, "limit must be 1-5000").max(5000, "limit must be 1-5000").default(500) }), req.query, "query");
    return ctx.replication.cycles(vmId, limit);
  });

  app.post("/api/v1/vms/:vmId/replication/failover", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const { pointId, start } = parse(UnplannedFailoverBody, req.body ?? {}, "body");
    return ctx.replication.unplanned.failOver(vmId, pointId, start);
  });
  app.post("/api/v1/vms/:vmId/replication/failover/cancel", async (req) => ctx.replication.unplanned.cancel(parse(VmParams, req.params, "params").vmId));
  app.post("/api/v1/vms/:vmId/replication/failover/complete", async (req) => ctx.replication.unplanned.complete(parse(VmParams, req.params, "params").vmId));
  app.post("/api/v1/vms/:vmId/replication/reverse", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const body = parse(ReverseReplicationBody, req.body ?? {}, "body");
    return ctx.replication.unplanned.reverse(vmId, { port: body.replicaPort, authMode: body.authMode });
  });

  app.post("/api/v1/vms/:vmId/replication/resynchronize", async (req) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const { at } = parse(ResynchronizeBody, req.body ?? {}, "body");
    return ctx.replication.resynchronize(vmId, at);
  });

  app.post("/api/v1/vms/:vmId/replication/test-failover", async (req, reply) => {
    const { vmId } = parse(VmParams, req.params, "params");
    const body = parse(TestFailoverBody, req.body ?? {}, "body");
    const vm = await ctx.replication.tests.begin(vmId, body.pointId, body.network);
    return reply.code(201).send(vmView(vm, ctx));
  });
  app.delete("/api/v1/vms/:vmId/replication/test-failover", async (req, reply) => {
    await ctx.replication.tests.end(parse(VmParams, req.params, "params").vmId);
    return reply.code(204).send();
  });

  app.post("/api/v1/vms/:vmId/replication/pause", async (req) => ctx.replication.pause(parse(VmParams, req.params, "params").vmId));
  app.post("/api/v1/vms/:vmId/replication/resume", async (req) => ctx.replication.resume(parse(VmParams, req.params, "params").vmId));
  app.post("/api/v1/vms/:vmId/replication/replicate-now", async (req) =>
    ctx.replication.replicateNow(parse(VmParams, req.params, "params").vmId),
  );

  app.get("/api/v1/events", async (req) => {
    const q = parse(EventsQuery, req.query, "query");
    return ctx.events.list(q.after, q.limit, q.vmId);
  });

  const streams = new Set<FastifyReply["raw"]>();
  // Open event streams would hold an ordered shutdown hostage: end them first.
  app.addHook("preClose", async () => {
    for (const res of streams) res.end();
  });
  const metrics = (): VmMetrics => ({
    ts: new Date().toISOString(),
    vms: ctx.hypervisor
      .list()
      .filter((vm) => vm.config.state === "Running")
      .map((vm) => ({ id: vm.id, cpuUsagePercent: vm.cpuUsagePercent() })),
  });
  app.get("/api/v1/events/stream", (req, reply) => streamEvents(req.headers["last-event-id"], req.query, reply, ctx.events, streams, metrics));
}

/** Server-sent events: the backlog after Last-Event-ID (or ?after=), then live events. */
function streamEvents(lastId: string | string[] | undefined, query: unknown, reply: FastifyReply, events: EventLog, streams: Set<FastifyReply["raw"]>, metrics: () => VmMetrics): void {
  const q = parse(EventsQuery, query, "query");
  let after = typeof lastId === "string" && /^\d+$/.test(lastId) ? Number(lastId) : q.after;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.write(": replica-manager agent event stream\n\n");
  const send = (e: { id: number; vmId: string | null }) => {
    if (e.id <= after || (q.vmId && e.vmId !== q.vmId)) return;
    after = e.id;
    res.write(`id: ${e.id}\nevent: agent-event\ndata: ${JSON.stringify(e)}\n\n`);
  };
  const live: { id: number; vmId: string | null }[] = [];
  let backfilling = true;
  const unsubscribe = events.subscribe((e) => (backfilling ? live.push(e) : send(e)));
  for (let batch = events.list(after, 1000, q.vmId); batch.length; batch = events.list(after, 1000, q.vmId)) batch.forEach(send);
  live.forEach(send);
  backfilling = false;
  const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
  // No id: a snapshot that a reconnecting reader does not need replayed.
  const tick = q.metricsSeconds ? setInterval(() => res.write(`event: metrics\ndata: ${JSON.stringify(metrics())}\n\n`), q.metricsSeconds * 1000) : undefined;
  streams.add(res);
  res.on("close", () => {
    clearInterval(ping);
    clearInterval(tick);
    unsubscribe();
    streams.delete(res);
  });
}
