/** What every procedure sees: the database, the fleet, and the signed-in user (if any). */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Db } from "../console/db/client.js";
import type { SessionUser } from "../console/auth/roles.js";
import { readCookie, userOfSession } from "../console/auth/sessions.js";
import type { Fleet } from "../fleet/fleet.js";
import type { JobRunner } from "../jobs/runner.js";

export interface ConsoleServices {
  db: Db;
  fleet: Fleet;
  /** Console jobs: operations that span two hosts (server/jobs). */
  jobs: JobRunner;
  sessionHours: number;
}

export interface Context extends ConsoleServices {
  user: SessionUser | null;
  sessionId: string | null;
  /** Adds a Set-Cookie header to the answer (a no-op outside HTTP, e.g. in tests). */
  setCookie(cookie: string): void;
  secure: boolean;
}

export async function createHttpContext(services: ConsoleServices, req: IncomingMessage, res: ServerResponse): Promise<Context> {
  const session = await userOfSession(services.db, readCookie(req.headers.cookie));
  return {
    ...services,
    user: session?.user ?? null,
    sessionId: session?.sessionId ?? null,
    setCookie: (cookie) => res.appendHeader("set-cookie", cookie),
    secure: req.headers["x-forwarded-proto"] === "https" || "encrypted" in req.socket,
  };
}
