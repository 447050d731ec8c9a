/** Errors the agent answers with: an HTTP status, a stable code, and a message that says what to do. */
export class AgentError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "AgentError";
  }
}

export const notFound = (message: string) => new AgentError(404, "NOT_FOUND", message);
export const conflict = (message: string, details?: Record<string, unknown>) => new AgentError(409, "CONFLICT", message, details);
export const badRequest = (message: string, details?: Record<string, unknown>) => new AgentError(400, "BAD_REQUEST", message, details);
export const forbidden = (message: string) => new AgentError(403, "FORBIDDEN", message);
export const unavailable = (message: string) => new AgentError(503, "UNAVAILABLE", message);
