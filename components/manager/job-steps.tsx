"use client";

/** A console job's steps with their state and detail, as the Planned Failover dialog and the Jobs pane show them. */
import { cn } from "@/components/lib/cn";
import type { Job } from "@/components/lib/trpc";

const MARK = { pending: "○", running: "►", succeeded: "✔", failed: "✖", skipped: "–" } as const;
const COLOR = { pending: "text-muted", running: "text-link", succeeded: "text-ok", failed: "text-crit", skipped: "text-muted" } as const;
const LABEL = { pending: "Not started", running: "In progress", succeeded: "Completed", failed: "Failed", skipped: "Skipped" } as const;

export function JobSteps({ job }: { job: Job }) {
  return (
    <div data-testid="job-steps" data-status={job.status}>
      <table className="w-full table-fixed border-collapse">
        <tbody>
          {job.steps.map((s) => (
            <tr key={s.name} data-testid="job-step" data-status={s.status} className="align-top">
              <td className={cn("w-[18px] py-[2px]", COLOR[s.status])}>{MARK[s.status]}</td>
              <td className="w-[42%] py-[2px] pr-2">{s.name}</td>
              <td className={cn("w-[82px] py-[2px]", COLOR[s.status])}>{LABEL[s.status]}</td>
              <td className="py-[2px] break-words text-muted">{s.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {job.error ? (
        <div className="mt-2 border border-[#e0b4b4] bg-[#fdf0f0] px-2 py-1" role="alert" data-testid="job-error">
          {job.error}
        </div>
      ) : null}
    </div>
  );
}

/** "Step 2 of 4: Fail over on the Replica server", or the outcome. */
export function jobProgress(job: Job): string {
  const counted = job.steps.filter((s) => s.status !== "skipped");
  const done = counted.filter((s) => s.status === "succeeded").length;
  if (job.status === "succeeded") return "Completed";
  if (job.status === "failed") return `Failed: ${job.steps[job.stepIndex]?.name ?? ""}`;
  if (job.status === "cancelled") return "Cancelled";
  return `${done + 1} of ${counted.length}: ${job.steps[job.stepIndex]?.name ?? "starting"}`;
}

export const JOB_TITLE: Record<Job["kind"], string> = { "planned-failover": "Planned Failover", failback: "Failback", "reverse-replication": "Reverse Replication" };
