/**
 * One converter from what the fleet and the agents throw to honest tRPC errors. Field issues
 * travel as `fieldErrors` so forms can put each message beside its field.
 */
import { TRPCError } from "@trpc/server";
import type { ZodError } from "zod";
import type { TRPC_ERROR_CODE_KEY } from "@trpc/server/unstable-core-do-not-import";
import { AgentCallError } from "../fleet/agent-client.js";
import { FleetError } from "../fleet/fleet.js";

export class FieldError extends TRPCError {
  constructor(
    code: TRPC_ERROR_CODE_KEY,
    message: string,
    readonly fieldErrors: Record<string, string[]>,
  ) {
    super({ code, message });
  }
}

/** Messages by full field path ("settings.authorization.entries.0.trustGroup"), for forms. */
export function fieldsOf(err: ZodError): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const issue of err.issues) (out[issue.path.join(".")] ??= []).push(issue.message);
  return out;
}

const BY_STATUS: Record<number, TRPC_ERROR_CODE_KEY> = {
  0: "SERVICE_UNAVAILABLE",
  400: "BAD_REQUEST",
  401: "PRECONDITION_FAILED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  422: "UNPROCESSABLE_CONTENT",
  502: "BAD_GATEWAY",
};

/**
 * Agent field paths are `body.x.y`; the console's inputs use the same names without `body.`
 * (the Replica server settings travel under `settings`).
 */
function fieldOf(agentField: string, prefix: string): string {
  return prefix + agentField.replace(/^(body|query|params)\./, "");
}

export function toTrpcError(err: unknown, fieldPrefix = ""): TRPCError {
  if (err instanceof TRPCError) return err;
  if (err instanceof FleetError) {
    return err.field ? new FieldError(err.code, err.message, { [err.field]: [err.message] }) : new TRPCError({ code: err.code, message: err.message });
  }
  if (err instanceof AgentCallError) {
    const code = BY_STATUS[err.status] ?? "BAD_GATEWAY";
    const message = err.status === 401 ? `the agent refused the console's credentials: ${err.message}` : err.message;
    if (err.issues.length === 0) return new TRPCError({ code, message });
    const fields: Record<string, string[]> = {};
    for (const i of err.issues) (fields[fieldOf(i.field, fieldPrefix)] ??= []).push(i.message);
    return new FieldError(code, message, fields);
  }
  console.error("console: unexpected error", err);
  return new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "internal error; the console's log has the details" });
}
