/**
 * The console in one process and on one port: Next.js (the UI), tRPC at /api/trpc and
 * socket.io, with the fleet following every agent. Migrations run before anything listens.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import next from "next";
import { ROOT } from "../agent/agent-process.js";
import { trpcHandler, TRPC_PATH } from "../api/http.js";
import { serveStatisticsCsv, STATISTICS_CSV_PATH } from "../api/statistics-csv.js";
import { vmConsoleProxy, VM_CONSOLE_PATH } from "../api/vm-console.js";
import { Alerter } from "../fleet/alerts.js";
import { dashboardKeyOf, dashboardLinkOf } from "./auth/dashboard-links.js";
import { Fleet } from "../fleet/fleet.js";
import { loadConsoleTls } from "../fleet/transport.js";
import { JobRunner, jobFailpoint } from "../jobs/runner.js";
import { attachRealtime, jobNotifier, realtimeNotifier, type RealtimeServer } from "../realtime/socket.js";
import { ensureAdministrator } from "./auth/first-run.js";
import { readCookie, userOfSession } from "./auth/sessions.js";
import { createDb, type Db } from "./db/client.js";
import { migrateDeploy } from "./db/migrate.js";
import type { ConsoleEnv } from "./env.js";
import { buildUi, uiBuildIsStale } from "./next-build.js";

export interface ConsoleOptions {
  env: ConsoleEnv;
  /** Next's development server (hot reload) instead of the production build. */
  dev?: boolean;
}

export interface RunningConsole {
  url: string;
  db: Db;
  fleet: Fleet;
  /** Set on the first start of a new database only. */
  firstRunAdmin: { name: string; password: string } | null;
  appliedMigrations: string[];
  close(): Promise<void>;
}

/** Pages anyone may load; everything else sends a visitor without a session to /login. */
const OPEN = /^\/(login|_next\/|favicon|socket\.io)/;

export async function startConsole(opts: ConsoleOptions): Promise<RunningConsole> {
  const { env } = opts;
  const dev = opts.dev ?? false;
  const appliedMigrations = await migrateDeploy(env.DATABASE_URL);
  const db = createDb(env.DATABASE_URL);
  const firstRunAdmin = await ensureAdministrator(db);
  if (!dev && uiBuildIsStale()) buildUi();

  const app = next({ dev, dir: ROOT, hostname: "localhost", port: env.PORT });
  await app.prepare();
  const handleNext = app.getRequestHandler();

  let io: RealtimeServer | undefined;
  const tls = loadConsoleTls({ cert: env.RM_AGENT_TLS_CERT, key: env.RM_AGENT_TLS_KEY, ca: env.RM_AGENT_TLS_CA });
  const alerter = new Alerter(db);
  const fleet = new Fleet(db, alerter.watching(realtimeNotifier(() => io)), tls);
  const jobs = new JobRunner(db, fleet, jobNotifier(() => io), { beforeStep: jobFailpoint(process.env.RM_JOB_FAILPOINT) });
  const trpc = trpcHandler({ db, fleet, jobs, sessionHours: env.RM_SESSION_HOURS });

  /** Runs `signedIn` or `anonymous` by the request's session cookie. */
  const bySession = (req: IncomingMessage, res: ServerResponse, signedIn: () => void, anonymous: () => void): void =>
    void userOfSession(db, readCookie(req.headers.cookie)).then(
      (s) => (s ? signedIn() : anonymous()),
      (err) => {
        console.error("console: session check failed", err);
        res.writeHead(500).end("internal error");
      },
    );
  const redirect = (res: ServerResponse, location: string) => () => void res.writeHead(302, { location }).end();

  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/";
    const page = url.split("?")[0]!;
    const toNext = () => void handleNext(req, res);
    if (url.startsWith(`${TRPC_PATH}/`)) return trpc(req, res);
    if (req.method !== "GET") return toNext();
    if (page === STATISTICS_CSV_PATH) return void serveStatisticsCsv({ db, fleet }, req, res);
    // The wall dashboard opens without a session when its read-only link's key is valid.
    if (page === "/dashboard" && dashboardKeyOf(url)) {
      return void dashboardLinkOf(db, dashboardKeyOf(url)).then((id) => (id ? toNext() : void res.writeHead(403, { "content-type": "text/plain; charset=utf-8" }).end("This dashboard link is not valid or was revoked. Ask an Administrator for a new one.")), () => res.writeHead(500).end("internal error"));
    }
    // Signed in already: the sign-in page sends on to the manager.
    if (page === "/login") return bySession(req, res, redirect(res, "/"), toNext);
    if (!OPEN.test(url) && !/\.\w+$/.test(page)) return bySession(req, res, toNext, redirect(res, "/login"));
    toNext();
  });
  io = attachRealtime(http, db);
  const vmConsole = vmConsoleProxy({ db, fleet });
  http.on("upgrade", (req: IncomingMessage, socket, head: Buffer) => {
    if (req.url?.split("?")[0] === VM_CONSOLE_PATH) vmConsole.handle(req, socket, head);
  });
  await new Promise<void>((ok, fail) => {
    http.once("error", fail);
    http.listen(env.PORT, env.HOST, () => ok());
  });
  await fleet.start();
  await jobs.start();
  const port = (http.address() as AddressInfo).port;

  return {
    url: `http://localhost:${port}`,
    db,
    fleet,
    firstRunAdmin,
    appliedMigrations,
    async close() {
      await jobs.stop();
      await fleet.stop();
      vmConsole.close();
      const closed = new Promise<void>((ok) => io!.close(() => ok()));
      http.closeAllConnections();
      await closed;
      await app.close();
      await db.$disconnect();
    },
  };
}
