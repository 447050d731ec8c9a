/** Console jobs (planned failover, failback, reverse replication): list, follow, retry, cancel. */
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { JobError } from "../../jobs/runner.js";
import type { JobInput, JobKind } from "../../jobs/types.js";
import type { Context } from "../context.js";
import { operatorProcedure, protectedProcedure, router } from "../trpc.js";

const JobRef = z.object({ id: z.string().trim().min(1, "id is required: a job id as listed") });

async function jobCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof JobError) throw new TRPCError({ code: err.code, message: err.message });
    throw err;
  }
}

/** Starts a job for the signed-in user (the failover router's planned failover and reverse). */
export function submitJob(ctx: Context, kind: JobKind, vmName: string, input: JobInput) {
  return jobCall(() => ctx.jobs.submit(kind, vmName, input, ctx.user?.name ?? "anonymous"));
}

export const jobsRouter = router({
  /** Newest first; with vmId, that VM's jobs (on either of its hosts). */
  list: protectedProcedure
    .input(z.object({ vmId: z.string().uuid("vmId must be a VM id as listed").optional(), limit: z.number().int().min(1, "limit: 1 to 500").max(500, "limit: 1 to 500").default(100) }))
    .query(({ ctx, input }) => ctx.jobs.list(input)),

  get: protectedProcedure.input(JobRef).query(({ ctx, input }) => jobCall(() => ctx.jobs.get(input.id))),

  /** Runs a failed job again from the step that failed. */
  retry: operatorProcedure.input(JobRef).mutation(({ ctx, input }) => jobCall(() => ctx.jobs.retry(input.id))),

  /** Gives up a failed job (a prepared primary goes back to replicating). */
  cancel: operatorProcedure.input(JobRef).mutation(({ ctx, input }) => jobCall(() => ctx.jobs.cancel(input.id))),
});
