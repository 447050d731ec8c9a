/**
 * Save As (CSV) in View Replication Health: the agent's statistics.csv passed on to a signed-in
 * browser as a download. A plain GET (a browser saves files from URLs, not from tRPC answers).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { readCookie, userOfSession } from "../console/auth/sessions.js";
import type { ConsoleServices } from "./context.js";
import { toTrpcError } from "./errors.js";
import { VmRef } from "./routers/health.js";

export const STATISTICS_CSV_PATH = "/api/replication-statistics.csv";

const STATUS: Record<string, number> = { BAD_REQUEST: 400, NOT_FOUND: 404, CONFLICT: 409, SERVICE_UNAVAILABLE: 503, BAD_GATEWAY: 502, PRECONDITION_FAILED: 502 };

export async function serveStatisticsCsv(services: Pick<ConsoleServices, "db" | "fleet">, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const text = (status: number, message: string) => void res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(message);
  if (!(await userOfSession(services.db, readCookie(req.headers.cookie)))) return text(401, "sign in first");
  const params = new URL(req.url ?? "/", "http://x").searchParams;
  const input = VmRef.safeParse({ hostId: params.get("hostId") ?? "", vmId: params.get("vmId") ?? "" });
  if (!input.success) return text(400, input.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  try {
    const { csv, filename } = await services.fleet.link(input.data.hostId).client.statisticsCsv(input.data.vmId);
    res.writeHead(200, { "content-type": "text/csv; charset=utf-8", "content-disposition": `attachment; filename="${filename}"`, "cache-control": "no-store" }).end(csv);
  } catch (err) {
    const e = toTrpcError(err);
    text(STATUS[e.code] ?? 500, e.message);
  }
}
