/**
 * Planned Failover as a console job (also failback, the same steps from the other side):
 * prepare on the primary, fail over on the Replica server, reverse, start. The agents do
 * each step (docs/agent-api.md, "Planned failover"); every step first reads where things stand.
 */
import { AgentCallError } from "../fleet/agent-client.js";
import { failoverCalls as calls, type FailoverStep } from "../fleet/failover-calls.js";
import { StepError, type JobDef, type StepContext } from "./types.js";

const clients = (ctx: StepContext) => ({
  primary: ctx.fleet.link(ctx.input.primaryHostId).client,
  replica: ctx.fleet.link(ctx.input.replicaHostId).client,
});

/** The Replica server's VM is no longer a replica: the failover step already happened. */
async function failedOver(ctx: StepContext): Promise<boolean> {
  const vm = await calls.vm(clients(ctx).replica, ctx.input.vmId);
  return !vm.isReplica;
}

/** A refused failover names the checks that failed; the user needs those, not "409". */
function refused(err: unknown, advice: string): never {
  if (err instanceof AgentCallError && Array.isArray(err.details.steps)) {
    const failed = (err.details.steps as FailoverStep[]).filter((s) => !s.ok).map((s) => `${s.step}: ${s.detail}`);
    throw new StepError(failed.length ? failed.join("; ") : err.message, advice);
  }
  throw err;
}

const option = (ctx: { options: Record<string, unknown> }, name: "reverse" | "start") => ctx.options[name] !== false;

export const plannedFailover: Omit<JobDef, "kind" | "title"> = {
  steps: [
    {
      name: "Prepare the primary virtual machine for failover",
      async run(ctx) {
        const { primary } = clients(ctx);
        // Read on the primary alone: it knows whether it was prepared or has handed over already.
        const rel = (await calls.relationships(primary, ctx.input.vmId))[0];
        if (rel?.role === "replica" || rel?.state === "Failover complete") return `${ctx.input.replicaHost} has already failed over`;
        if (rel?.role !== "primary") throw new StepError(`${ctx.input.primaryHost} is no longer the primary server of '${ctx.vmName}'`, "Refresh the servers and start the failover again from the current primary; Cancel this job.");
        if (rel.state === "Prepared for planned failover") return `already prepared: the last changes up to cycle ${rel.lastAckedSeq} were sent`;
        // A Replica server that was down left the primary in Error, waiting for its next retry: catch up now.
        if (rel.state === "Error") {
          const cycle = await calls.replicateNow(primary, ctx.input.vmId);
          if (!cycle.ok) throw new StepError(`${ctx.input.primaryHost} cannot send to ${ctx.input.replicaHost}: ${cycle.error ?? "the cycle failed"}`, `When ${ctx.input.replicaHost} accepts replication again, Retry; or Cancel the job.`);
        }
        const res = await calls.prepare(primary, ctx.input.vmId).catch((err) => refused(err, `Correct what the check names (turn the virtual machine off on ${ctx.input.primaryHost}), then Retry; or Cancel the job.`));
        return res.steps.at(-1)?.detail ?? "prepared";
      },
    },
    {
      name: "Fail over on the Replica server",
      async run(ctx) {
        if (await failedOver(ctx)) return `'${ctx.vmName}' already runs from ${ctx.input.replicaHost}`;
        const res = await calls
          .plannedFailOver(clients(ctx).replica, ctx.input.vmId, { reverse: option(ctx.input, "reverse"), start: false })
          .catch((err) => refused(err, "Retry the job; Cancel it to keep the virtual machine on the primary server."));
        return res.steps.find((s) => s.step === "Fail over on Replica server")?.detail ?? "failed over";
      },
    },
    {
      name: "Reverse the replication direction",
      skip: (input) => (option(input, "reverse") ? null : "not requested"),
      async run(ctx) {
        const { primary, replica } = clients(ctx);
        const [oldSide, newSide] = await Promise.all([calls.relationships(primary, ctx.input.vmId), calls.relationships(replica, ctx.input.vmId)]);
        if (oldSide[0]?.role === "replica" && newSide[0]?.role === "primary") return `${ctx.input.replicaHost} now replicates to ${ctx.input.primaryHost} (${newSide[0].state}), with no initial copy`;
        throw new StepError(`the replication direction was not reversed (${ctx.input.primaryHost}: ${oldSide[0]?.role ?? "none"}, ${ctx.input.replicaHost}: ${newSide[0]?.role ?? "none"})`, "Use Reverse Replication... on the VM, then Cancel this job.");
      },
    },
    {
      name: "Start the Replica virtual machine",
      skip: (input) => (option(input, "start") ? null : "not requested"),
      async run(ctx) {
        const { replica } = clients(ctx);
        const vm = await calls.vm(replica, ctx.input.vmId);
        if (vm.state === "Running") return `already running on ${ctx.input.replicaHost}`;
        const started = await calls.power(replica, ctx.input.vmId, "start");
        return `${started.state} on ${ctx.input.replicaHost}`;
      },
    },
  ],
  async onCancel(ctx, stepIndex) {
    // Not failed over yet: a prepared primary goes back to replicating, and its VM may start again.
    if (stepIndex > 1 || (await failedOver(ctx))) return;
    const { primary } = clients(ctx);
    const rel = (await calls.relationships(primary, ctx.input.vmId))[0];
    if (rel?.state === "Prepared for planned failover") await calls.cancelPrepared(primary, ctx.input.vmId);
  },
};
