/**
 * Reverse Replication after an unplanned failover, as a console job: the host that failed over
 * becomes the primary and the old primary its replica (only differing blocks are sent), the
 * settings chosen in the wizard are applied, and the job ends when the two are in step again.
 */
import { failoverCalls as calls } from "../fleet/failover-calls.js";
import { StepError, type JobDef, type StepContext } from "./types.js";

/** How long the resynchronization step waits before it reports the job failed (the resync goes on). */
const RESYNC_WAIT_MS = 30 * 60_000;

const newPrimary = (ctx: StepContext) => ctx.fleet.link(ctx.input.replicaHostId).client;
const SETTINGS = ["frequencySeconds", "compression", "recoveryHistory", "appConsistentFrequencyHours", "bandwidthLimitMiBps"] as const;

function describeSetting(key: string, value: unknown): string {
  switch (key) {
    case "frequencySeconds":
      return `replication every ${Number(value) < 60 ? `${String(value)} seconds` : `${Number(value) / 60} minutes`}`;
    case "compression":
      return value ? "compression on" : "compression off";
    case "recoveryHistory":
      return value ? `${String(value)} additional hourly recovery points` : "only the latest recovery point";
    case "appConsistentFrequencyHours":
      return value ? `application-consistent points every ${String(value)} hours` : "no application-consistent points";
    default:
      return value === null ? "no bandwidth limit" : `bandwidth limit ${String(value)} MB/s`;
  }
}

export const reverseReplication: Omit<JobDef, "kind" | "title"> = {
  steps: [
    {
      name: "Reverse the replication direction",
      async run(ctx) {
        const rel = (await calls.relationships(newPrimary(ctx), ctx.input.vmId))[0];
        if (rel?.role === "primary") return `already reversed: ${ctx.input.replicaHost} replicates to ${rel.replicaServer}`;
        if (rel?.state !== "Failover complete") throw new StepError(`'${ctx.vmName}' on ${ctx.input.replicaHost} is ${rel?.state ?? "not replicated"}`, "Complete the failover first, then Retry; or Cancel the job.");
        const { replicaPort, authMode } = ctx.input.options as { replicaPort?: number; authMode?: "https" | "http" };
        await calls.reverse(newPrimary(ctx), ctx.input.vmId, { replicaPort, authMode });
        return `${ctx.input.primaryHost} is now the Replica server; only the blocks that differ are sent`;
      },
    },
    {
      name: "Apply the replication settings",
      skip: (input) => (SETTINGS.some((k) => input.options[k] !== undefined) ? null : "as before"),
      async run(ctx) {
        const rel = (await calls.relationships(newPrimary(ctx), ctx.input.vmId))[0];
        if (rel?.role !== "primary") throw new StepError(`${ctx.input.replicaHost} is not the primary of '${ctx.vmName}'`);
        // An agent that leaves a setting out means it is off (null).
        const wanted = Object.fromEntries(SETTINGS.filter((k) => ctx.input.options[k] !== undefined && ctx.input.options[k] !== (rel[k] ?? null)).map((k) => [k, ctx.input.options[k]]));
        if (Object.keys(wanted).length === 0) return "as before the failover";
        await calls.updateReplication(newPrimary(ctx), ctx.input.vmId, wanted);
        return `changed: ${Object.entries(wanted).map(([k, v]) => describeSetting(k, v)).join(", ")}`;
      },
    },
    {
      name: "Resynchronize the Replica server",
      async run(ctx) {
        const deadline = Date.now() + RESYNC_WAIT_MS;
        for (;;) {
          const rel = (await calls.relationships(newPrimary(ctx), ctx.input.vmId))[0];
          if (rel?.role === "primary" && rel.state === "Replicating") return `${ctx.input.primaryHost} holds the same bytes; replication goes on every ${rel.frequencySeconds} s`;
          if (rel?.role === "primary" && (rel.state === "Error" || rel.state === "Resynchronization required")) throw new StepError(`replication is in ${rel.state}: ${rel.reason ?? "no reason given"}`, "See View Replication Health; Retry the job once it replicates, or Cancel it.");
          if (Date.now() > deadline || ctx.signal.aborted) throw new StepError(`still ${rel?.state ?? "unknown"} after ${RESYNC_WAIT_MS / 60_000} minutes`, "The resynchronization goes on by itself; Retry the job to wait again, or Cancel it.");
          await new Promise((r) => setTimeout(r, 500));
        }
      },
    },
  ],
};
