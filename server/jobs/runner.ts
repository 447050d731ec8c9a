/**
 * Runs console jobs step by step. Each step's outcome is saved before the next one starts, so
 * a console that stops (or is killed) in the middle resumes the job at start-up from the step
 * that had not finished; steps check the agents first, so running one again repeats nothing.
 */
import type { Db } from "../console/db/client.js";
import { AgentCallError } from "../fleet/agent-client.js";
import type { Fleet } from "../fleet/fleet.js";
import { FleetError } from "../fleet/fleet.js";
import { JOB_DEFS } from "./definitions.js";
import { jobView, StepError, type JobInput, type JobKind, type JobStep, type JobView, type StepContext } from "./types.js";

export interface JobRunnerOptions {
  /** Test hook, awaited before each step starts. */
  beforeStep?(job: JobView, step: string): Promise<void> | void;
  /** Pauses before retrying a step whose host could not be reached (ms, doubled each time). */
  retryDelayMs?: number;
}

const UNFINISHED = ["queued", "running"];
/** Attempts of a step whose agent is unreachable, before the job fails (a console just started may not be connected yet). */
const ATTEMPTS = 4;

export class JobError extends Error {
  constructor(
    readonly code: "NOT_FOUND" | "CONFLICT",
    message: string,
  ) {
    super(message);
  }
}

export class JobRunner {
  private readonly active = new Map<string, Promise<void>>();
  private abort = new AbortController();

  constructor(
    private readonly db: Db,
    private readonly fleet: Fleet,
    private readonly notify: (job: JobView) => void,
    private readonly opts: JobRunnerOptions = {},
  ) {}

  /** Resumes every job that was queued or running when the console stopped. */
  async start(): Promise<void> {
    this.abort = new AbortController();
    const rows = await this.db.job.findMany({ where: { status: { in: UNFINISHED } }, orderBy: { createdAt: "asc" }, select: { id: true } });
    for (const r of rows) this.kick(r.id);
  }

  /** Lets the running steps end (a waiting step gives up) and runs no further step. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.active.values()]);
  }

  /** Waits until the job is no longer being run here (tests). */
  async settled(id: string): Promise<JobView> {
    await this.active.get(id);
    return this.get(id);
  }

  async submit(kind: JobKind, vmName: string, input: JobInput, createdBy: string): Promise<JobView> {
    const open = await this.db.job.findFirst({ where: { vmId: input.vmId, status: { in: [...UNFINISHED, "failed"] } } });
    if (open) {
      const what = open.status === "failed" ? "failed: Retry or Cancel it in the Jobs pane first" : "still running";
      throw new JobError("CONFLICT", `a ${JOB_DEFS[open.kind as JobKind].title} job of '${open.vmName}' is ${what}`);
    }
    const def = JOB_DEFS[kind];
    const steps: JobStep[] = def.steps.map((s) => {
      const skipped = s.skip?.(input) ?? null;
      return { name: s.name, status: skipped ? "skipped" : "pending", detail: skipped, startedAt: null, finishedAt: null };
    });
    const row = await this.db.job.create({ data: { kind, vmId: input.vmId, vmName, input: input as object, steps: steps as object[], createdBy } });
    const view = jobView(row);
    this.notify(view);
    this.kick(row.id);
    return view;
  }

  async get(id: string): Promise<JobView> {
    const row = await this.db.job.findUnique({ where: { id } });
    if (!row) throw new JobError("NOT_FOUND", "no such job: it may have been deleted");
    return jobView(row);
  }

  async list(filter: { vmId?: string; limit: number }): Promise<JobView[]> {
    const rows = await this.db.job.findMany({ where: filter.vmId ? { vmId: filter.vmId } : {}, orderBy: { createdAt: "desc" }, take: filter.limit });
    return rows.map(jobView);
  }

  /** Runs a failed job again from the step that failed. */
  async retry(id: string): Promise<JobView> {
    const job = await this.get(id);
    if (job.status !== "failed") throw new JobError("CONFLICT", `the job is ${job.status}; only a failed job can be retried`);
    const steps = job.steps.map((s, i) => (i === job.stepIndex ? { ...s, status: "pending" as const, detail: null } : s));
    const view = await this.save(id, { status: "queued", error: null, steps, finishedAt: null });
    this.kick(id);
    return view;
  }

  /** Gives up a failed (or not yet started) job, undoing what can be undone. */
  async cancel(id: string): Promise<JobView> {
    const job = await this.get(id);
    if (job.status === "running" || this.active.has(id)) throw new JobError("CONFLICT", `the job is running "${job.steps[job.stepIndex]?.name}"; cancel it once that step has failed`);
    if (job.status !== "failed" && job.status !== "queued") throw new JobError("CONFLICT", `the job is ${job.status} already`);
    await JOB_DEFS[job.kind].onCancel?.(this.context(job), job.stepIndex);
    return this.save(id, { status: "cancelled", finishedAt: new Date() });
  }

  private kick(id: string): void {
    if (this.active.has(id)) return;
    const run = this.loop(id)
      .catch((err) => console.error(`console: job ${id}`, err))
      .finally(() => this.active.delete(id));
    this.active.set(id, run);
  }

  private context(job: JobView): StepContext {
    return { fleet: this.fleet, input: job.input, vmName: job.vmName, signal: this.abort.signal };
  }

  private async save(id: string, data: { status?: string; steps?: JobStep[]; stepIndex?: number; error?: string | null; finishedAt?: Date | null }): Promise<JobView> {
    const row = await this.db.job.update({ where: { id }, data: { ...data, steps: data.steps as object[] | undefined } });
    const view = jobView(row);
    this.notify(view);
    return view;
  }

  private async loop(id: string): Promise<void> {
    const signal = this.abort.signal;
    for (;;) {
      if (signal.aborted) return;
      const job = await this.get(id);
      if (!UNFINISHED.includes(job.status)) return;
      const def = JOB_DEFS[job.kind];
      const i = job.stepIndex;
      if (i >= def.steps.length) {
        await this.save(id, { status: "succeeded", finishedAt: new Date() });
        return;
      }
      const step = job.steps[i]!;
      if (step.status === "skipped") {
        await this.save(id, { stepIndex: i + 1, status: "running" });
        continue;
      }
      await this.opts.beforeStep?.(job, step.name);
      if (signal.aborted) return;
      const started = new Date().toISOString();
      const withStep = (s: Partial<JobStep>) => job.steps.map((x, n) => (n === i ? { ...x, ...s } : x));
      await this.save(id, { status: "running", steps: withStep({ status: "running", startedAt: started, detail: null }) });
      try {
        const detail = await this.attempt(() => def.steps[i]!.run(this.context(job)), signal);
        await this.save(id, { stepIndex: i + 1, steps: withStep({ status: "succeeded", startedAt: started, finishedAt: new Date().toISOString(), detail }) });
      } catch (err) {
        // Stopping mid-step: the step stays "running" and is run again (it checks first) at the next start.
        if (signal.aborted) return;
        const { message, advice } = explain(err);
        await this.save(id, {
          status: "failed",
          error: `${step.name} failed: ${message}. ${advice}`,
          finishedAt: new Date(),
          steps: withStep({ status: "failed", startedAt: started, finishedAt: new Date().toISOString(), detail: message }),
        });
        return;
      }
    }
  }

  /** Runs a step, again after a pause while its agent cannot be reached. */
  private async attempt(run: () => Promise<string>, signal: AbortSignal): Promise<string> {
    let delay = this.opts.retryDelayMs ?? 1000;
    for (let n = 1; ; n++) {
      try {
        return await run();
      } catch (err) {
        if (n >= ATTEMPTS || !transient(err) || signal.aborted) throw err;
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
  }
}

function transient(err: unknown): boolean {
  return err instanceof AgentCallError && err.status === 0;
}

function explain(err: unknown): { message: string; advice: string } {
  if (err instanceof StepError) return { message: err.message, advice: err.advice };
  if (err instanceof AgentCallError && err.status === 0) return { message: err.message, advice: "When the host answers again, Retry the job; or Cancel it." };
  if (err instanceof AgentCallError || err instanceof FleetError) return { message: err.message, advice: "Correct the cause, then Retry the job, or Cancel it." };
  console.error("console: job step failed unexpectedly", err);
  return { message: (err as Error).message ?? String(err), advice: "The console's log has the details; Retry the job, or Cancel it." };
}

/**
 * A crash point for tests: RM_JOB_FAILPOINT="<step name>" kills the console (SIGKILL) just
 * before that step starts, after the steps before it were saved. Unset in production.
 */
export function jobFailpoint(step: string | undefined): JobRunnerOptions["beforeStep"] {
  if (!step) return undefined;
  return (_job, name) => {
    if (name === step) process.kill(process.pid, "SIGKILL");
  };
}
