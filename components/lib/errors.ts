import { TRPCClientError } from "@trpc/client";

/** The server's messages are lower-case fragments; a dialog shows them as sentences. */
export function sentence(message: string): string {
  // A message that starts with a field's name (trustGroup, startTime) keeps it as it is.
  const s = /^[a-z]+[A-Z]/.test(message) ? message : message.charAt(0).toUpperCase() + message.slice(1);
  return /[.!?)]$/.test(s) ? s : `${s}.`;
}

/** Field messages from a tRPC error (zod input errors and the agents' field issues alike), as sentences. */
export function fieldErrors(err: unknown): Record<string, string[]> {
  if (!(err instanceof TRPCClientError)) return {};
  const raw = (err.data as { fieldErrors?: Record<string, string[]> } | undefined)?.fieldErrors ?? {};
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v.map(sentence)]));
}

export function errorMessage(err: unknown): string {
  if (err instanceof TRPCClientError) {
    const fields = Object.values(fieldErrors(err)).flat();
    return fields.length && err.data?.code === "BAD_REQUEST" ? fields.join(" ") : sentence(err.message);
  }
  return sentence(err instanceof Error ? err.message : String(err));
}
