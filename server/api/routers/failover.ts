/**
 * Failovers from the VM's Replication submenu: Planned Failover (a console job), Test Failover
 * and Stop Test Failover, Failover (unplanned) with its data-loss estimate, Cancel and Complete
 * Failover, Reverse Replication (a job, prefilled from the original settings).
 */
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { AgentCallError } from "../../fleet/agent-client.js";
import { failoverCalls as calls, type FailoverStep } from "../../fleet/failover-calls.js";
import { FleetError } from "../../fleet/fleet.js";
import { requireOther, vmPair, type VmPair } from "../../fleet/vm-pair.js";
import { AuthMode, BandwidthLimit, ReplicationFrequency } from "../../shared/replication.js";
import { Port } from "../../shared/agent-api.js";
import type { JobKind } from "../../jobs/types.js";
import type { Context } from "../context.js";
import { FieldError } from "../errors.js";
import { submitJob } from "./jobs.js";
import { operatorProcedure, protectedProcedure, router } from "../trpc.js";

const VmRef = z.object({
  hostId: z.string().min(1, "hostId is required"),
  vmId: z.string().uuid("vmId must be a VM id as listed"),
});
const PointId = z.union([z.literal("latest"), z.string().uuid("pointId must be 'latest' or a recovery point id as listed")]);

function requireRole(pair: VmPair, role: "primary" | "replica", what: string): void {
  if (pair.rel.role === role) return;
  const where = role === "primary" ? "on its primary server" : "on its Replica server";
  throw new FieldError("CONFLICT", `${what} is done ${where}; ${pair.here.name} holds the ${pair.rel.role} of '${pair.vm.name}'`, { vmId: [`choose '${pair.vm.name}' ${where}`] });
}

/** The agent's refusal with the checks it made, one per line, so the dialog can list them. */
function refusal(err: unknown): never {
  if (err instanceof AgentCallError && Array.isArray(err.details.steps)) {
    const steps = err.details.steps as FailoverStep[];
    throw new TRPCError({ code: "PRECONDITION_FAILED", message: [err.message, ...steps.map((s) => `${s.ok ? "Passed" : "Failed"}: ${s.step}: ${s.detail}`)].join("\n") });
  }
  throw err;
}

async function pairFor(ctx: Context, input: z.infer<typeof VmRef>, role: "primary" | "replica", what: string): Promise<VmPair> {
  const pair = await vmPair(ctx.db, input.hostId, input.vmId);
  requireRole(pair, role, what);
  return pair;
}

const secondsBetween = (later: string | Date | null, earlier: string | null) => (later && earlier ? Math.max(0, (new Date(later).getTime() - new Date(earlier).getTime()) / 1000) : null);

export const failoverRouter = router({
  /** A replica's recovery points, newest first, each with the data a failover to it gives up. */
  recoveryPoints: protectedProcedure.input(VmRef).query(async ({ ctx, input }) => {
    const pair = await pairFor(ctx, input, "replica", "Choosing a recovery point");
    const points = await calls.recoveryPoints(ctx.fleet.link(input.hostId).client, input.vmId);
    const lastReplicatedAt = points.find((p) => p.id === "latest")?.at ?? pair.rel.lastSyncAt;
    // What the console last knew of the primary: a VM seen running then wrote after the last cycle too.
    const primaryVm = pair.otherVm;
    const primaryRunningUntil = primaryVm && (primaryVm.state === "Running" || primaryVm.state === "Paused") ? (pair.other?.status === "connected" ? new Date() : pair.other?.lastSeenAt ?? null) : null;
    return {
      lastReplicatedAt,
      primary: { host: pair.otherName, status: pair.other?.status ?? "not connected", lastSeenAt: pair.other?.lastSeenAt?.toISOString() ?? null, vmState: primaryVm?.state ?? null },
      points: points.map((p) => ({
        ...p,
        secondsBeforeLastReplicated: secondsBetween(lastReplicatedAt, p.at) ?? 0,
        secondsBeforePrimaryLastSeen: secondsBetween(primaryRunningUntil, p.at),
      })),
    };
  }),

  /** The checks the primary makes before a planned failover, one by one. */
  plannedChecks: protectedProcedure.input(VmRef).query(async ({ ctx, input }) => {
    const pair = await pairFor(ctx, input, "primary", "Planned Failover");
    const { steps } = await calls.plannedChecks(ctx.fleet.link(input.hostId).client, input.vmId);
    return { steps, replicaServer: pair.otherName, replicaConnected: pair.other?.status === "connected" };
  }),

  /** Planned Failover as a job: prepare, fail over, reverse, start. */
  planned: operatorProcedure.input(VmRef.extend({ reverse: z.boolean().default(true), start: z.boolean().default(true) })).mutation(async ({ ctx, input }) => {
    const pair = await pairFor(ctx, input, "primary", "Planned Failover");
    const replica = requireOther(pair);
    // Failing back: the last planned failover of this VM went the other way.
    const last = await ctx.db.job.findFirst({ where: { vmId: input.vmId, kind: { in: ["planned-failover", "failback"] }, status: "succeeded" }, orderBy: { createdAt: "desc" } });
    const kind: JobKind = last && (last.input as { replicaHostId?: string }).replicaHostId === input.hostId ? "failback" : "planned-failover";
    return submitJob(ctx, kind, pair.vm.name, {
      vmId: input.vmId,
      primaryHostId: input.hostId,
      replicaHostId: replica.id,
      primaryHost: pair.here.name,
      replicaHost: replica.name,
      options: { reverse: input.reverse, start: input.start },
    });
  }),

  testFailover: operatorProcedure
    .input(VmRef.extend({ pointId: PointId.default("latest"), network: z.string().trim().min(1, "give the test network a name (1 to 64 characters), or leave the network adapters disconnected").max(64, "the test network name has at most 64 characters").nullable().default(null) }))
    .mutation(async ({ ctx, input }) => {
      await pairFor(ctx, input, "replica", "Test Failover");
      const vm = await ctx.fleet.withVm(input.hostId, (c) => calls.testFailover(c, input.vmId, { pointId: input.pointId, network: input.network }));
      await ctx.fleet.link(input.hostId).resync();
      return { testVmId: vm.id, name: vm.name };
    }),

  stopTestFailover: operatorProcedure.input(VmRef).mutation(async ({ ctx, input }) => {
    const pair = await pairFor(ctx, input, "replica", "Stop Test Failover");
    if (pair.rel.role !== "replica" || !pair.rel.testFailover) throw new FleetError("CONFLICT", `no test failover of '${pair.vm.name}' is running`, "vmId");
    await calls.stopTestFailover(ctx.fleet.link(input.hostId).client, input.vmId);
    await ctx.fleet.link(input.hostId).resync();
    return { ok: true };
  }),

  /** Failover (unplanned), on the Replica server, to a chosen point. */
  failover: operatorProcedure.input(VmRef.extend({ pointId: PointId, start: z.boolean().default(true) })).mutation(async ({ ctx, input }) => {
    await pairFor(ctx, input, "replica", "Failover");
    const res = await calls.failOver(ctx.fleet.link(input.hostId).client, input.vmId, { pointId: input.pointId, start: input.start }).catch(refusal);
    await ctx.fleet.link(input.hostId).resync();
    return res;
  }),

  cancelFailover: operatorProcedure.input(VmRef).mutation(async ({ ctx, input }) => {
    await pairFor(ctx, input, "replica", "Cancel Failover");
    await calls.cancelFailover(ctx.fleet.link(input.hostId).client, input.vmId);
    await ctx.fleet.link(input.hostId).resync();
    return { ok: true };
  }),

  completeFailover: operatorProcedure.input(VmRef).mutation(async ({ ctx, input }) => {
    await pairFor(ctx, input, "replica", "Complete Failover");
    await calls.completeFailover(ctx.fleet.link(input.hostId).client, input.vmId);
    await ctx.fleet.link(input.hostId).resync();
    return { ok: true };
  }),

  /** The Reverse Replication wizard's starting values: the original relationship's settings. */
  reverseDefaults: protectedProcedure.input(VmRef).query(async ({ ctx, input }) => {
    const pair = await pairFor(ctx, input, "replica", "Reverse Replication");
    const original = pair.otherRel?.role === "primary" ? pair.otherRel : null;
    // Where the old primary accepts replication now, when it answers.
    const server = pair.other?.status === "connected" ? await ctx.fleet.link(pair.other.id).client.replicaServer().catch(() => null) : null;
    const authMode = original?.authMode ?? (server?.https.enabled === false ? "http" : "https");
    return {
      replicaServer: pair.otherName,
      replicaConnected: pair.other?.status === "connected",
      replicaServerEnabled: server?.enabled ?? null,
      authModes: server ? (["https", "http"] as const).filter((m) => server[m].enabled) : [],
      authMode,
      replicaPort: server ? server[authMode].port : null,
      frequencySeconds: original?.frequencySeconds ?? pair.rel.frequencySeconds,
      compression: original?.compression ?? true,
      recoveryHistory: original?.recoveryHistory ?? pair.rel.recoveryHistory ?? 0,
      appConsistentFrequencyHours: original?.appConsistentFrequencyHours ?? null,
      bandwidthLimitMiBps: original?.bandwidthLimitMiBps ?? null,
    };
  }),

  /** Reverse Replication as a job: reverse, apply the settings, wait until resynchronized. */
  reverse: operatorProcedure
    .input(
      VmRef.extend({
        replicaPort: Port.optional(),
        authMode: AuthMode.optional(),
        frequencySeconds: ReplicationFrequency.optional(),
        compression: z.boolean().optional(),
        recoveryHistory: z.number().int().min(0, "recoveryHistory: 0 to 24 hourly points").max(24, "recoveryHistory: 0 to 24 hourly points").optional(),
        appConsistentFrequencyHours: z.number().int().min(1, "application-consistent points every 1 to 12 hours").max(12, "application-consistent points every 1 to 12 hours").nullable().optional(),
        bandwidthLimitMiBps: BandwidthLimit.optional(),
        /** The wizard's Replica server: it can only be the old primary. */
        replicaServer: z.string().trim().toLowerCase().min(1, "give the Replica server's name").optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const pair = await pairFor(ctx, input, "replica", "Reverse Replication");
      if (pair.rel.state !== "Failover complete") throw new FleetError("CONFLICT", `'${pair.vm.name}' is ${pair.rel.state}: Reverse Replication follows Complete Failover`, "vmId");
      if (input.replicaServer && input.replicaServer !== pair.otherName) {
        throw new FleetError("BAD_REQUEST", `Reverse Replication goes back to the former primary server ${pair.otherName}; to replicate to another server, remove replication and enable it again`, "replicaServer");
      }
      const oldPrimary = requireOther(pair);
      const { hostId, vmId, replicaServer: _server, ...options } = input;
      return submitJob(ctx, "reverse-replication", pair.vm.name, {
        vmId,
        primaryHostId: oldPrimary.id,
        replicaHostId: hostId,
        primaryHost: oldPrimary.name,
        replicaHost: pair.here.name,
        options,
      });
    }),
});
