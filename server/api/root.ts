import { alertsRouter } from "./routers/alerts.js";
import { authRouter } from "./routers/auth.js";
import { dashboardRouter } from "./routers/dashboard.js";
import { eventsRouter } from "./routers/events.js";
import { failoverRouter } from "./routers/failover.js";
import { healthRouter } from "./routers/health.js";
import { hostsRouter } from "./routers/hosts.js";
import { jobsRouter } from "./routers/jobs.js";
import { replicaServerRouter } from "./routers/replica-server.js";
import { replicationRouter } from "./routers/replication.js";
import { usersRouter } from "./routers/users.js";
import { vmsRouter } from "./routers/vms.js";
import { createCallerFactory, router } from "./trpc.js";

export const appRouter = router({
  auth: authRouter,
  users: usersRouter,
  hosts: hostsRouter,
  vms: vmsRouter,
  events: eventsRouter,
  replicaServer: replicaServerRouter,
  replication: replicationRouter,
  failover: failoverRouter,
  jobs: jobsRouter,
  health: healthRouter,
  dashboard: dashboardRouter,
  alerts: alertsRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
