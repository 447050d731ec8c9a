/** Who may use the management API: a trusted client certificate (mutual TLS) or the bearer token. */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { AgentError } from "../errors.js";

/** Throws 401 unless the request may use the management API (no token configured: anyone may). */
export function checkManagementAuth(req: IncomingMessage, token: string | undefined): void {
  if (!token) return;
  // With TLS configured, a trusted client certificate is enough; otherwise the token.
  if ((req.socket as { authorized?: boolean }).authorized) return;
  const want = Buffer.from(`Bearer ${token}`);
  const got = Buffer.from(req.headers.authorization ?? "");
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new AgentError(401, "UNAUTHENTICATED", "missing or wrong management token: send 'Authorization: Bearer <management.token>'");
  }
}
