import { TRPCClientError } from "@trpc/client";

/** Field messages from a tRPC error (zod input errors and the agents' field issues alike). */
export function fieldErrors(err: unknown): Record<string, string[]> {
  if (err instanceof TRPCClientError) return ((err.data as { fieldErrors?: Record<string, string[]> } | undefined)?.fieldErrors ?? {}) as Record<string, string[]>;
  return {};
}

export function errorMessage(err: unknown): string {
  if (err instanceof TRPCClientError) {
    const fields = Object.values(fieldErrors(err)).flat();
    return fields.length && err.data?.code === "BAD_REQUEST" ? fields.join("; ") : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
