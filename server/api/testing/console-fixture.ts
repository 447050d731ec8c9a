/**
 * Test fixture for the console's routers: a real database (a new SQLite file, or a new
 * PostgreSQL database when RM_TEST_PG_URL is set), migrated like production, two real agent
 * processes, a Fleet following them, and callers signed in as each role.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { startPair, type Pair } from "../../agent/testing/harness.js";
import { hashPassword } from "../../console/auth/password.js";
import type { Role, SessionUser } from "../../console/auth/roles.js";
import { createDb, type Db } from "../../console/db/client.js";
import { migrateDeploy } from "../../console/db/migrate.js";
import { Alerter } from "../../fleet/alerts.js";
import { Fleet } from "../../fleet/fleet.js";
import type { ConsoleTls } from "../../fleet/transport.js";
import type { FleetNotifier } from "../../fleet/views.js";
import { JobRunner, type JobRunnerOptions } from "../../jobs/runner.js";
import type { JobView } from "../../jobs/types.js";
import type { Context } from "../context.js";
import { createCaller } from "../root.js";

export type Notice = { type: keyof FleetNotifier; payload: unknown[] };

export interface ConsoleFixture {
  pair: Pair;
  db: Db;
  fleet: Fleet;
  /** The job runner the callers use; `restartJobs` replaces it as a console restart would (same options unless given). */
  jobs: JobRunner;
  jobNotices: JobView[];
  restartJobs(opts?: JobRunnerOptions): Promise<JobRunner>;
  /** Health alerts, watching the fleet's VM updates as in the console. */
  alerter: Alerter;
  notices: Notice[];
  users: Record<Role, SessionUser>;
  /** A caller signed in as the given role (or anonymous); cookies it sets land in `cookies`. */
  as(role: Role | null, cookies?: string[]): ReturnType<typeof createCaller>;
  provider: "sqlite" | "postgresql";
  cleanup(): Promise<void>;
}

async function newDatabaseUrl(dir: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = process.env.RM_TEST_PG_URL;
  if (!admin) return { url: `file:${join(dir, "console.db")}`, drop: async () => {} };
  const name = `rm_test_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function startConsoleFixture(opts: { consoleTls?: ConsoleTls; jobs?: JobRunnerOptions; hypervisor?: "lab" | "qemu" } = {}): Promise<ConsoleFixture> {
  const pair = await startPair({ hypervisor: opts.hypervisor });
  try {
    return await withPair(pair, opts.consoleTls ?? null, opts.jobs ?? {});
  } catch (err) {
    await pair.cleanup();
    throw err;
  }
}

async function withPair(pair: Pair, consoleTls: ConsoleTls | null, jobOptions: JobRunnerOptions): Promise<ConsoleFixture> {
  const database = await newDatabaseUrl(pair.dir);
  await migrateDeploy(database.url);
  const db = createDb(database.url);
  const notices: Notice[] = [];
  const record = (type: keyof FleetNotifier) => (...payload: unknown[]) => void notices.push({ type, payload });
  const alerter = new Alerter(db);
  const fleet = new Fleet(db, alerter.watching({
    hostChanged: record("hostChanged"),
    hostRemoved: record("hostRemoved"),
    vmChanged: record("vmChanged"),
    vmRemoved: record("vmRemoved"),
    vmMetrics: record("vmMetrics"),
    events: record("events"),
  }), consoleTls);
  await fleet.start();
  const jobNotices: JobView[] = [];
  let jobs = new JobRunner(db, fleet, (j) => void jobNotices.push(j), { retryDelayMs: 200, ...jobOptions });
  await jobs.start();
  const users = {} as Record<Role, SessionUser>;
  const passwordHash = await hashPassword("correct horse battery");
  for (const role of ["Administrator", "Operator", "Viewer"] as const) {
    const u = await db.user.create({ data: { name: role.toLowerCase(), role, passwordHash } });
    users[role] = { id: u.id, name: u.name, role };
  }
  return {
    pair,
    db,
    fleet,
    get jobs() {
      return jobs;
    },
    jobNotices,
    async restartJobs(opts = {}) {
      await jobs.stop();
      jobs = new JobRunner(db, fleet, (j) => void jobNotices.push(j), { retryDelayMs: 200, ...jobOptions, ...opts });
      await jobs.start();
      return jobs;
    },
    alerter,
    notices,
    users,
    provider: database.url.startsWith("file:") ? "sqlite" : "postgresql",
    as(role, cookies = []) {
      const ctx: Context = { db, fleet, jobs, sessionHours: 1, user: role ? users[role] : null, sessionId: null, setCookie: (c) => void cookies.push(c), secure: false };
      return createCaller(ctx);
    },
    async cleanup() {
      await jobs.stop();
      await fleet.stop();
      await db.$disconnect();
      await database.drop();
      await pair.cleanup();
      await rm(pair.dir, { recursive: true, force: true });
    },
  };
}
