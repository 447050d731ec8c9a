/**
 * The tRPC builders. Use only the exported procedures: every one converts errors, audits
 * mutations (who, what, when, result), and the protected ones check the role on the server.
 */
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { ZodError } from "zod";
import { hasRole, type Role } from "../console/auth/roles.js";
import type { Context } from "./context.js";
import { targetOf } from "./audit.js";
import { FieldError, fieldsOf, toTrpcError } from "./errors.js";

const t = initTRPC.context<Context>().create({
  transformer: superjson,
  errorFormatter({ shape, error }) {
    const fieldErrors = error.cause instanceof ZodError ? fieldsOf(error.cause) : error instanceof FieldError ? error.fieldErrors : null;
    return { ...shape, data: { ...shape.data, stack: undefined, fieldErrors } };
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

// smtpUrl: an SMTP URL carries its password (alerts.add).
const SECRET = /password|token|smtpUrl/i;
function redact(input: unknown): unknown {
  if (!input || typeof input !== "object") return input ?? null;
  return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, SECRET.test(k) ? "***" : v]));
}

/** A refusal as one line: input errors by field rather than zod's JSON. */
function failureOf(error: TRPCError): string {
  if (error.cause instanceof ZodError) return Object.entries(fieldsOf(error.cause)).map(([f, m]) => `${f}: ${m.join("; ")}`).join("; ");
  return error.message;
}

const converted = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.code === "INTERNAL_SERVER_ERROR" && result.error.cause) throw toTrpcError(result.error.cause);
  return result;
});

const audited = t.middleware(async ({ ctx, path, type, getRawInput, next }) => {
  if (type !== "mutation") return next();
  const input = await getRawInput().catch(() => null);
  // Named before the change: a deleted VM has no name afterwards.
  const target = await targetOf(ctx.db, input);
  const result = await next();
  // A sign-in is recorded under the name it claimed; any other anonymous call as anonymous.
  const claimed = path === "auth.login" && input && typeof input === "object" ? (input as { name?: unknown }).name : undefined;
  const who = ctx.user?.name ?? (typeof claimed === "string" ? claimed : "anonymous");
  await ctx.db.auditEntry.create({
    data: {
      userId: ctx.user?.id ?? null,
      userName: who,
      action: path,
      target,
      input: (redact(input) ?? undefined) as object | undefined,
      result: result.ok ? "success" : "failure",
      error: result.ok ? null : failureOf(result.error),
    },
  });
  return result;
});

const base = t.procedure.use(audited).use(converted);

function requireRole(role: Role) {
  return t.middleware(({ ctx, next }) => {
    if (!ctx.user) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
    if (!hasRole(ctx.user.role, role)) {
      throw new TRPCError({ code: "FORBIDDEN", message: `this needs the ${role} role; ${ctx.user.name} is ${ctx.user.role}` });
    }
    return next({ ctx: { user: ctx.user, sessionId: ctx.sessionId } });
  });
}

/** Anyone, signed in or not (sign-in itself). */
export const publicProcedure = base;
/** Any signed-in user: Viewer and up. */
export const protectedProcedure = base.use(requireRole("Viewer"));
/** Power actions, pause/resume, failovers. */
export const operatorProcedure = base.use(requireRole("Operator"));
/** Hosts, settings, users, creating and deleting VMs. */
export const adminProcedure = base.use(requireRole("Administrator"));
