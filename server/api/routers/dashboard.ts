/**
 * The wall dashboard's read-only links: Administrators create them by name (the token is shown
 * once, as a URL path with its key), list and revoke them. The dashboard's data itself goes over
 * socket.io (server/realtime/wall.ts).
 */
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { createDashboardLink } from "../../console/auth/dashboard-links.js";
import { adminProcedure, router } from "../trpc.js";

const linkSelect = { id: true, name: true, createdBy: true, createdAt: true, revokedAt: true } as const;

export const dashboardRouter = router({
  links: adminProcedure.query(async ({ ctx }) => {
    const rows = await ctx.db.dashboardLink.findMany({ orderBy: { createdAt: "desc" }, select: linkSelect });
    // The id is the token's hash: enough to revoke, useless to open the dashboard.
    return rows;
  }),

  createLink: adminProcedure
    .input(z.object({ name: z.string().trim().min(1, "name is required: say where the screen hangs, e.g. NOC wall").max(80, "name must be at most 80 characters") }))
    .mutation(async ({ ctx, input }) => {
      const { id, token } = await createDashboardLink(ctx.db, input.name, ctx.user.name);
      return { id, name: input.name, path: `/dashboard?key=${token}` };
    }),

  revokeLink: adminProcedure.input(z.object({ id: z.string().regex(/^[0-9a-f]{64}$/, "id must be a link id as listed") })).mutation(async ({ ctx, input }) => {
    const link = await ctx.db.dashboardLink.findUnique({ where: { id: input.id } });
    if (!link) throw new TRPCError({ code: "NOT_FOUND", message: "no such dashboard link: it may have been deleted" });
    if (link.revokedAt) return { id: link.id, revokedAt: link.revokedAt };
    const saved = await ctx.db.dashboardLink.update({ where: { id: input.id }, data: { revokedAt: new Date() }, select: linkSelect });
    return { id: saved.id, revokedAt: saved.revokedAt };
  }),
});
