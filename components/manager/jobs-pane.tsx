"use client";

/**
 * Console jobs (planned failover, failback, reverse replication), newest first and live: each
 * with its progress; the selected job's steps below, and Retry or Cancel when it failed.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { cn } from "@/components/lib/cn";
import { errorMessage } from "@/components/lib/errors";
import { formatDateTime } from "@/components/lib/format";
import { JOBS_QUERY } from "@/components/lib/live";
import { useTRPC } from "@/components/lib/trpc";
import { mayOperate, type Role } from "@/components/lib/vm-actions";
import { JOB_TITLE, JobSteps, jobProgress } from "./job-steps";

/** The time for today's jobs, the date for older ones (the full time is the cell's tooltip). */
function startedAt(iso: string): string {
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleDateString();
}

const STATUS_COLOR = { queued: "", running: "text-link", succeeded: "text-ok", failed: "text-crit", cancelled: "text-muted" } as const;

export function JobsPane({ role }: { role: Role | undefined }) {
  const trpc = useTRPC();
  const jobs = useQuery(trpc.jobs.list.queryOptions(JOBS_QUERY));
  const [selected, setSelected] = useState<string | null>(null);
  const job = jobs.data?.find((j) => j.id === selected) ?? jobs.data?.[0];
  const retry = useMutation(trpc.jobs.retry.mutationOptions());
  const cancel = useMutation(trpc.jobs.cancel.mutationOptions());
  const failure = retry.error ?? cancel.error;
  return (
    <div className="flex h-full min-h-0 bg-pane" data-testid="jobs-pane">
      <div className="min-h-0 w-[50%] overflow-auto border-r border-border-light">
        <table className="w-full table-fixed border-collapse">
          <thead className="sticky top-0 bg-white">
            <tr className="text-left">
              <th className="w-[112px] border-r border-b border-border-light px-1 font-normal whitespace-nowrap">Job</th>
              <th className="w-[100px] border-r border-b border-border-light px-1 font-normal whitespace-nowrap">Virtual Machine</th>
              <th className="border-r border-b border-border-light px-1 font-normal whitespace-nowrap">Progress</th>
              <th className="w-[92px] border-b border-border-light px-1 font-normal whitespace-nowrap">Started</th>
            </tr>
          </thead>
          <tbody>
            {(jobs.data ?? []).map((j) => (
              <tr
                key={j.id}
                data-testid="job-row"
                data-kind={j.kind}
                data-status={j.status}
                onClick={() => setSelected(j.id)}
                className={cn("h-[18px] cursor-default", j.id === job?.id ? "bg-select" : "hover:bg-hover")}
              >
                <td className="truncate px-1">{JOB_TITLE[j.kind]}</td>
                <td className="truncate px-1">{j.vmName}</td>
                <td className={cn("truncate px-1", STATUS_COLOR[j.status])} title={j.error ?? undefined}>
                  {jobProgress(j)}
                </td>
                <td className="truncate px-1 whitespace-nowrap" title={formatDateTime(j.createdAt)}>
                  {startedAt(j.createdAt)}
                </td>
              </tr>
            ))}
            {jobs.data?.length === 0 ? (
              <tr>
                <td colSpan={4} className="px-1 text-muted">
                  No jobs. Planned failovers and reverse replications run here, step by step.
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
      <div className="min-h-0 flex-1 overflow-auto p-2" data-testid="job-detail">
        {job ? (
          <>
            <div className="mb-1 flex items-start gap-2">
              <div className="min-w-0 flex-1">
                <div className="font-semibold">
                  {JOB_TITLE[job.kind]} of {job.vmName}
                </div>
                <div className="text-muted">
                  {job.input.primaryHost} → {job.input.replicaHost}, by {job.createdBy}
                  {job.finishedAt ? `; ended ${formatDateTime(job.finishedAt)}` : ""}
                </div>
              </div>
              {job.status === "failed" ? (
                <span className="flex shrink-0 gap-2">
                  <Button data-testid="job-retry" disabled={!mayOperate(role) || retry.isPending} onClick={() => retry.mutate({ id: job.id })}>
                    Retry
                  </Button>
                  <Button data-testid="job-cancel" className="whitespace-nowrap" disabled={!mayOperate(role) || cancel.isPending} onClick={() => cancel.mutate({ id: job.id })}>
                    Cancel Job
                  </Button>
                </span>
              ) : null}
            </div>
            <JobSteps job={job} />
            {failure ? <div className="mt-1 text-crit">{errorMessage(failure)}</div> : null}
          </>
        ) : null}
      </div>
    </div>
  );
}
