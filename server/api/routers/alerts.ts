/**
 * ★ Health alerts: where they go (webhooks, mail), a test alert, and what was delivered.
 * Administrators only: targets carry addresses and SMTP credentials.
 */
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { deliverAlert } from "../../fleet/alert-delivery.js";
import { adminProcedure, router } from "../trpc.js";

const webhookUrl = z
  .string()
  .trim()
  .url("address must be a URL such as https://hooks.example.com/replica")
  .refine((u) => /^https?:\/\//.test(u), "address must be an http:// or https:// URL");
const recipients = z
  .string()
  .trim()
  .min(1, "address is required: one or more mail addresses, separated by commas")
  .refine((s) => s.split(",").every((a) => z.string().email().safeParse(a.trim()).success), "address must be mail addresses separated by commas, e.g. ops@example.com");
const smtpUrl = z
  .string()
  .trim()
  .url("smtpUrl must be a URL such as smtp://user:password@mail.example.com:587")
  .refine((u) => /^smtps?:\/\//.test(u), "smtpUrl must start with smtp:// or smtps://");
const name = z.string().trim().min(1, "name is required").max(80, "name must be at most 80 characters");

export const AlertTargetInput = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("webhook"), name, address: webhookUrl, enabled: z.boolean().default(true) }),
  z.object({ kind: z.literal("mail"), name, address: recipients, smtpUrl, enabled: z.boolean().default(true) }),
]);

const targetSelect = { id: true, kind: true, name: true, address: true, smtpUrl: true, enabled: true, createdAt: true } as const;
/** The SMTP password never goes back to the browser. */
const withoutPassword = <T extends { smtpUrl: string | null }>(t: T): T => {
  if (!t.smtpUrl) return t;
  const u = new URL(t.smtpUrl);
  if (u.password) u.password = "***";
  return { ...t, smtpUrl: u.toString() };
};

const TargetId = z.object({ id: z.string().min(1, "id is required") });

async function targetOrThrow(db: Parameters<typeof deliverAlert>[0], id: string) {
  const t = await db.alertTarget.findUnique({ where: { id } });
  if (!t) throw new TRPCError({ code: "NOT_FOUND", message: "no such alert target: it may have been deleted" });
  return t;
}

export const alertsRouter = router({
  targets: adminProcedure.query(async ({ ctx }) => (await ctx.db.alertTarget.findMany({ orderBy: { createdAt: "asc" }, select: targetSelect })).map(withoutPassword)),

  add: adminProcedure.input(AlertTargetInput).mutation(async ({ ctx, input }) => {
    const t = await ctx.db.alertTarget.create({ data: { kind: input.kind, name: input.name, address: input.address, smtpUrl: input.kind === "mail" ? input.smtpUrl : null, enabled: input.enabled }, select: targetSelect });
    return withoutPassword(t);
  }),

  setEnabled: adminProcedure.input(TargetId.extend({ enabled: z.boolean() })).mutation(async ({ ctx, input }) => {
    await targetOrThrow(ctx.db, input.id);
    return withoutPassword(await ctx.db.alertTarget.update({ where: { id: input.id }, data: { enabled: input.enabled }, select: targetSelect }));
  }),

  remove: adminProcedure.input(TargetId).mutation(async ({ ctx, input }) => {
    await targetOrThrow(ctx.db, input.id);
    await ctx.db.alertTarget.delete({ where: { id: input.id } });
    return { ok: true };
  }),

  /** Send test alert: a Critical alert marked as a test, recorded like any other. */
  test: adminProcedure.input(TargetId).mutation(async ({ ctx, input }) => {
    const target = await targetOrThrow(ctx.db, input.id);
    const d = await deliverAlert(ctx.db, target, {
      kind: "replication-health",
      health: "Critical",
      vmId: "00000000-0000-0000-0000-000000000000",
      vmName: "Test alert",
      hostName: "console",
      mode: "Primary",
      state: "Replicating",
      reasons: ["This is a test alert sent from the Alerts dialog."],
      primaryServer: "primary.example",
      replicaServer: "replica.example",
      at: new Date().toISOString(),
      test: true,
    });
    return { result: d.result, error: d.error };
  }),

  deliveries: adminProcedure.input(z.object({ limit: z.number().int().min(1, "limit must be 1 to 500").max(500, "limit must be 1 to 500").default(100) })).query(({ ctx, input }) =>
    ctx.db.alertDelivery.findMany({ orderBy: { id: "desc" }, take: input.limit, include: { target: { select: { name: true, kind: true } } } }),
  ),
});
