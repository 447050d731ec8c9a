/**
 * The VM's Replication submenu, server side: the Enable Replication wizard (check the Replica
 * server, estimates, enable), Test Replication Connection, Start Replication (now or at a
 * time), Replication Settings, Pause/Resume,
 * Resynchronize, Import Initial Replica and Remove Replication, each driving the agents' API.
 */
import { TRPCError } from "@trpc/server";
import { authorizePrimary } from "../../agent/transport/authorization.js";
import { AgentCallError } from "../../fleet/agent-client.js";
import type { HostLink } from "../../fleet/host-link.js";
import { PrimarySettings, replicationCalls, type ConnectionTest } from "../../fleet/replication-calls.js";
import { FieldError, toTrpcError } from "../errors.js";
import { adminProcedure, operatorProcedure, protectedProcedure, router } from "../trpc.js";
import type { Context } from "../context.js";
import { CheckReplicaServerInput, EnableInput, EstimateInput, ImportInput, ResynchronizeInput, SettingsInput, StartInitialInput, TestConnectionInput, VmRef } from "./replication.schema.js";

/**
 * Some agent refusals name their field only in the message ("authMode: this host has no
 * replication certificate; ..."): give them the field, so the form shows them beside it.
 */
function converted(err: unknown): TRPCError {
  if (err instanceof AgentCallError && err.issues.length === 0 && err.status === 400) {
    const m = /^(?:body\.)?([a-zA-Z][\w.]*): (.+)$/s.exec(err.message);
    if (m) return toTrpcError(new AgentCallError(m[2]!, err.status, err.code, [{ field: m[1]!, message: m[2]! }]));
  }
  return toTrpcError(err);
}

async function agentCall<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw converted(err);
  }
}

/** The VM as the agent now has it goes into the cache and out to the browsers at once. */
async function refreshVm(link: HostLink, vmId: string): Promise<void> {
  await link.applyVm(await link.client.vm(vmId)).catch(() => undefined);
}

function calls(ctx: Context, hostId: string) {
  const link = ctx.fleet.link(hostId);
  return { link, agent: replicationCalls(link.client) };
}

/** An enrolled host by its name or FQDN, or by its first label when that is unambiguous. */
async function hostByName(ctx: Context, name: string) {
  const exact = await ctx.db.host.findUnique({ where: { name } });
  if (exact) return exact;
  const short = (await ctx.db.host.findMany()).filter((h) => h.name.split(".")[0] === name);
  return short.length === 1 ? short[0]! : null;
}

const fieldError = (code: TRPCError["code"], field: string, message: string) => new FieldError(code, message, { [field]: [message] });

/** A failed Test Replication Connection, as an error on the field to change. */
function connectionFailure(test: ConnectionTest): FieldError | undefined {
  return test.failure ? fieldError("PRECONDITION_FAILED", test.failure.field, test.failure.message) : undefined;
}

export const replicationRouter = router({
  /**
   * Specify Replica Server: the named server must be connected to this console and enabled as
   * a Replica server; answers what it accepts (ports, authentication) to prefill the wizard.
   */
  checkReplicaServer: protectedProcedure.input(CheckReplicaServerInput).query(async ({ ctx, input }) => {
    const primary = await ctx.fleet.hostOrThrow(input.hostId);
    const target = await hostByName(ctx, input.replicaServer);
    if (target?.id === primary.id) throw fieldError("BAD_REQUEST", "replicaServer", `the server ${primary.name} is the primary server of this virtual machine; choose another server as its Replica server`);
    if (!target) throw fieldError("NOT_FOUND", "replicaServer", `the server ${input.replicaServer} is not connected to this console; connect to it first (Action > Connect to Server...) or check the name`);
    let replica, rs, own;
    try {
      const client = ctx.fleet.link(target.id).client;
      [replica, rs, own] = await Promise.all([client.host(), client.replicaServer(), ctx.fleet.link(primary.id).client.host()]);
    } catch (err) {
      const message = err instanceof AgentCallError ? err.message : String(err);
      throw fieldError("SERVICE_UNAVAILABLE", "replicaServer", `cannot check ${target.name}: ${message}`);
    }
    if (!rs.enabled) throw fieldError("PRECONDITION_FAILED", "replicaServer", `the server ${target.name} is not enabled as a Replica server; enable it in Hyper-V Settings > Replication Configuration on ${target.name}`);
    // The Replica server's own rule, applied to this primary before the wizard goes on.
    let storage;
    try {
      storage = authorizePrimary(rs, own.hostName);
    } catch (err) {
      throw fieldError("PRECONDITION_FAILED", "replicaServer", `the Replica server ${target.name} refuses this primary server: ${(err as Error).message}`);
    }
    const mode = (kind: "https" | "http") => ({ enabled: rs[kind].enabled, port: rs[kind].port, usable: rs[kind].enabled && replica.capabilities[kind] && own.capabilities[kind] });
    const https = mode("https");
    const http = mode("http");
    if (!https.usable && !http.usable) {
      throw fieldError("PRECONDITION_FAILED", "replicaServer", `the Replica server ${target.name} accepts ${[https.enabled && "HTTPS", http.enabled && "HTTP"].filter(Boolean).join(" and ") || "no authentication type"}, which ${primary.name} cannot use: give both hosts a replication certificate (HTTPS) or the same replication token (HTTP)`);
    }
    const authMode = https.usable ? "https" : "http";
    return { hostId: target.id, name: replica.hostName, https, http, authorization: rs.authorization.mode, storageLocation: storage.storageLocation, trustGroup: storage.trustGroup, authMode, port: authMode === "https" ? https.port : http.port } as const;
  }),

  /** The size of the initial copy (the chosen disks) and the storage the recovery history needs. */
  estimate: protectedProcedure.input(EstimateInput).query(async ({ ctx, input }) => {
    const row = await ctx.db.vm.findUnique({ where: { hostId_vmId: { hostId: input.hostId, vmId: input.vmId } } });
    if (!row) throw fieldError("NOT_FOUND", "vmId", "no such virtual machine on this host");
    const all = row.disks as { index: number; sizeBytes: number }[];
    const disks = input.disks ? all.filter((d) => input.disks!.includes(d.index)) : all;
    const history = await agentCall(() => calls(ctx, input.hostId).agent.historyEstimate(input.vmId, input.recoveryHistory));
    return { disks, initialCopyBytes: disks.reduce((n, d) => n + d.sizeBytes, 0), history };
  }),

  enable: adminProcedure.input(EnableInput).mutation(async ({ ctx, input }) => {
    const { hostId, vmId, ...body } = input;
    const primary = await ctx.fleet.hostOrThrow(hostId);
    if (body.replicaServer === primary.name) throw fieldError("BAD_REQUEST", "replicaServer", `the server ${primary.name} is the primary server of this virtual machine; choose another server as its Replica server`);
    const { link, agent } = calls(ctx, hostId);
    // The primary tries the connection first: a network or trust problem lands on its field.
    const test = await agentCall(() => agent.testConnection({ replicaServer: body.replicaServer, replicaPort: body.replicaPort, authMode: body.authMode }));
    const failed = connectionFailure(test);
    if (failed) throw failed;
    const record = await agentCall(() => agent.enable(vmId, body));
    await refreshVm(link, vmId);
    return { state: record.state, replicaServer: body.replicaServer };
  }),

  /**
   * Test Replication Connection from the primary (the VM's host) with the Connection Parameters:
   * every check the agent made, and the first failure with the field to change.
   */
  testConnection: operatorProcedure.input(TestConnectionInput).mutation(async ({ ctx, input }) => {
    const { hostId, ...body } = input;
    const primary = await ctx.fleet.hostOrThrow(hostId);
    if (body.replicaServer === primary.name) throw fieldError("BAD_REQUEST", "replicaServer", `the server ${primary.name} is the primary server; test the connection to its Replica server`);
    return agentCall(() => calls(ctx, hostId).agent.testConnection(body));
  }),

  /** Start Replication: the initial copy of a relationship enabled without starting it, now or at a time (null: no schedule). */
  startInitial: operatorProcedure.input(StartInitialInput).mutation(async ({ ctx, input }) => {
    const { link, agent } = calls(ctx, input.hostId);
    if (input.initialStartAt !== undefined) {
      const rec = await agentCall(() => agent.update(input.vmId, { initialStartAt: input.initialStartAt }));
      await refreshVm(link, input.vmId);
      return { ok: true, initialStartAt: rec.initialStartAt };
    }
    const rels = await agentCall(() => agent.relationships(input.vmId));
    const state = rels.find((r) => r.role === "primary")?.state;
    if (state !== "Ready for initial replication") throw new TRPCError({ code: "CONFLICT", message: `replication is ${state ?? "not enabled"} on this server; Start Replication is for a primary that is Ready for initial replication` });
    // The agent answers when the whole copy is done; its progress comes as events meanwhile.
    const copy = agent.replicateNow(input.vmId).catch((err) => console.error("console: initial replication", err));
    for (let i = 0; i < 50; i++) {
      const vm = await link.client.vm(input.vmId);
      if (vm.replication[0]?.state !== "Ready for initial replication") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    void copy.then(() => refreshVm(link, input.vmId));
    await refreshVm(link, input.vmId);
    return { ok: true, initialStartAt: null };
  }),

  /** Replication Settings: the primary's settings as they are now. */
  settings: protectedProcedure.input(VmRef).query(async ({ ctx, input }) => {
    const rels = await agentCall(() => calls(ctx, input.hostId).agent.relationships(input.vmId));
    const primary = rels.find((r) => r.role === "primary");
    if (!primary) throw new TRPCError({ code: "CONFLICT", message: "replication settings are changed on the primary server of this virtual machine" });
    return PrimarySettings.parse(primary);
  }),

  updateSettings: adminProcedure.input(SettingsInput).mutation(async ({ ctx, input }) => {
    const { hostId, vmId, ...patch } = input;
    const { link, agent } = calls(ctx, hostId);
    const saved = await agentCall(() => agent.update(vmId, patch));
    await refreshVm(link, vmId);
    return saved;
  }),

  pause: operatorProcedure.input(VmRef).mutation(async ({ ctx, input }) => {
    const { link, agent } = calls(ctx, input.hostId);
    const rec = await agentCall(() => agent.pause(input.vmId));
    await refreshVm(link, input.vmId);
    return { state: rec.state };
  }),

  resume: operatorProcedure.input(VmRef).mutation(async ({ ctx, input }) => {
    const { link, agent } = calls(ctx, input.hostId);
    const rec = await agentCall(() => agent.resume(input.vmId));
    await refreshVm(link, input.vmId);
    return { state: rec.state };
  }),

  resynchronize: operatorProcedure.input(ResynchronizeInput).mutation(async ({ ctx, input }) => {
    const { link, agent } = calls(ctx, input.hostId);
    const rec = await agentCall(() => agent.resynchronize(input.vmId, input.at));
    await refreshVm(link, input.vmId);
    return { state: rec.state, resyncAt: rec.role === "primary" ? (rec.resyncAt ?? null) : null };
  }),

  /** Import Initial Replica, on the Replica server, from the folder the primary exported to. */
  importInitial: adminProcedure.input(ImportInput).mutation(async ({ ctx, input }) => {
    const { link, agent } = calls(ctx, input.hostId);
    const rec = await agentCall(() => agent.importInitial(input.vmId, input.folder));
    await refreshVm(link, input.vmId);
    return { state: rec.state };
  }),

  /** Remove Replication on this side only; on the Replica server the replica VM stays, as an ordinary VM. */
  remove: adminProcedure.input(VmRef).mutation(async ({ ctx, input }) => {
    const { link, agent } = calls(ctx, input.hostId);
    await agentCall(() => agent.remove(input.vmId));
    await refreshVm(link, input.vmId);
    return { ok: true };
  }),
});
