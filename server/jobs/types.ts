/**
 * Console jobs: operations that span two hosts, persisted step by step in the Job table so
 * that they survive a console restart and can be retried (server/jobs/runner.ts).
 */
import type { Fleet } from "../fleet/fleet.js";

export type JobKind = "planned-failover" | "failback" | "reverse-replication";
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export type StepStatus = "pending" | "running" | "succeeded" | "failed" | "skipped";

export interface JobStep {
  name: string;
  status: StepStatus;
  detail: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Where a job acts: the VM (same id on both hosts) and the two hosts, by console host id. */
export interface JobInput {
  vmId: string;
  /** Planned failover: the current primary; reverse replication: the old primary. */
  primaryHostId: string;
  /** Planned failover: the Replica server; reverse replication: the host that failed over. */
  replicaHostId: string;
  primaryHost: string;
  replicaHost: string;
  options: Record<string, unknown>;
}

export interface JobView {
  id: string;
  kind: JobKind;
  vmId: string;
  vmName: string;
  input: JobInput;
  status: JobStatus;
  steps: JobStep[];
  stepIndex: number;
  error: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface StepContext {
  fleet: Fleet;
  input: JobInput;
  vmName: string;
  /** Aborted when the runner stops (console shutdown): a waiting step gives up and resumes later. */
  signal: AbortSignal;
}

/**
 * One step. `run` first reads the agents' state to see whether its effect already happened
 * (a console killed after the agent acted and before the step was saved runs it again), and
 * answers the detail shown beside the step. Throwing fails the job at this step.
 */
export interface StepDef {
  name: string;
  /** A step the user opted out of (e.g. "Start the Replica virtual machine" unchecked). */
  skip?(input: JobInput): string | null;
  run(ctx: StepContext): Promise<string>;
}

export interface JobDef {
  kind: JobKind;
  title: string;
  steps: StepDef[];
  /** Called when the user cancels a failed job: undo what can be undone (e.g. a prepared primary). */
  onCancel?(ctx: StepContext, stepIndex: number): Promise<void>;
}

/** A step's failure: what went wrong, and what the user can do about it. */
export class StepError extends Error {
  constructor(
    message: string,
    readonly advice = "Correct the cause, then Retry the job, or Cancel it.",
  ) {
    super(message);
  }
}

export function jobView(row: {
  id: string;
  kind: string;
  vmId: string;
  vmName: string;
  input: unknown;
  status: string;
  steps: unknown;
  stepIndex: number;
  error: string | null;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}): JobView {
  return {
    id: row.id,
    kind: row.kind as JobKind,
    vmId: row.vmId,
    vmName: row.vmName,
    input: row.input as JobInput,
    status: row.status as JobStatus,
    steps: row.steps as JobStep[],
    stepIndex: row.stepIndex,
    error: row.error,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    finishedAt: row.finishedAt?.toISOString() ?? null,
  };
}
