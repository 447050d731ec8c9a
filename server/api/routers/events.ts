import { z } from "zod";
import { EventSeverity } from "../../shared/replication.js";
import { eventView } from "../../fleet/views.js";
import { alertEvents } from "../../fleet/alert-events.js";
import { adminProcedure, protectedProcedure, router } from "../trpc.js";

export const eventsRouter = router({
  /** A host's events, newest first. */
  list: protectedProcedure
    .input(
      z.object({
        hostId: z.string().min(1, "hostId is required"),
        severity: z.array(EventSeverity).optional(),
        vmId: z.string().uuid("vmId must be a VM id as listed").optional(),
        limit: z.number().int().min(1).max(1000).default(200),
      }),
    )
    .query(async ({ ctx, input }) => {
      const host = await ctx.fleet.hostOrThrow(input.hostId);
      const rows = await ctx.db.event.findMany({
        where: { hostId: input.hostId, ...(input.severity ? { severity: { in: input.severity } } : {}), ...(input.vmId ? { vmId: input.vmId } : {}) },
        orderBy: { agentEventId: "desc" },
        take: input.limit,
      });
      // The console's own lines (alerts delivered or failed) among the agent's, by time.
      const alerts = await alertEvents(ctx.db, host, input);
      return [...rows.map(eventView), ...alerts].sort((a, b) => b.ts.localeCompare(a.ts)).slice(0, input.limit);
    }),

  audit: adminProcedure.input(z.object({ limit: z.number().int().min(1).max(1000).default(200) })).query(({ ctx, input }) =>
    ctx.db.auditEntry.findMany({ orderBy: { id: "desc" }, take: input.limit }),
  ),
});
