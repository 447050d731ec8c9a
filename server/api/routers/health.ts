/**
 * View Replication Health: the agent's statistics for one side of a relationship, Reset
 * Statistics (Operators), and the cycle history for the charts. Save As (CSV) is a plain HTTP
 * download (server/api/statistics-csv.ts), since a browser saves files from URLs.
 */
import { z } from "zod";
import { operatorProcedure, protectedProcedure, router } from "../trpc.js";

export const VmRef = z.object({
  hostId: z.string().min(1, "hostId is required"),
  vmId: z.string().uuid("vmId must be a VM id as listed"),
});

export const healthRouter = router({
  statistics: protectedProcedure.input(VmRef).query(async ({ ctx, input }) => {
    const link = ctx.fleet.link(input.hostId);
    return link.client.statistics(input.vmId);
  }),

  reset: operatorProcedure.input(VmRef).mutation(async ({ ctx, input }) => {
    const link = ctx.fleet.link(input.hostId);
    return link.client.resetStatistics(input.vmId);
  }),

  /** Recent cycles, oldest first, with their latency: what the charts draw. */
  cycles: protectedProcedure
    .input(VmRef.extend({ limit: z.number().int().min(1, "limit must be 1 to 5000").max(5000, "limit must be 1 to 5000").default(500) }))
    .query(async ({ ctx, input }) => {
      const cycles = await ctx.fleet.link(input.hostId).client.cycles(input.vmId, input.limit);
      return cycles.reverse().map((c) => ({
        seq: c.seq,
        status: c.status,
        ok: c.status === "acknowledged" || c.status === "applied",
        at: c.finishedAt ?? c.startedAt,
        sizeBytes: c.wireBytes,
        changedBytes: c.changedBytes,
        latencyMs: c.finishedAt ? Date.parse(c.finishedAt) - Date.parse(c.startedAt) : null,
        error: c.error,
      }));
    }),
});
