"use client";

/**
 * Planned Failover, from the primary: the checks listed with pass or fail, the two options (both
 * on), then the console job's progress through prepare, fail over, reverse and start.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage } from "@/components/lib/errors";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { JobSteps } from "@/components/manager/job-steps";

const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export function PlannedFailoverDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const ref = { hostId: vm.hostId, vmId: vm.vmId };
  // Read afresh each time the dialog opens: what was true a minute ago may not be now.
  const checks = useQuery({ ...trpc.failover.plannedChecks.queryOptions(ref), gcTime: 0 });
  const [reverse, setReverse] = useState(true);
  const [start, setStart] = useState(true);
  const submit = useMutation(trpc.failover.planned.mutationOptions());
  const jobId = submit.data?.id;
  const job = useQuery({
    ...trpc.jobs.get.queryOptions({ id: jobId ?? "" }),
    enabled: !!jobId,
    refetchInterval: (q) => (q.state.data && FINAL.has(q.state.data.status) ? false : 1000),
  });
  const retry = useMutation(trpc.jobs.retry.mutationOptions());
  const current = job.data ?? submit.data;
  const allPassed = !!checks.data?.steps.every((s) => s.ok);
  return (
    <Dialog
      title="Planned Failover"
      onClose={onClose}
      testId="planned-failover-dialog"
      className="w-[640px]"
      footer={
        current ? (
          <>
            {current.status === "failed" ? (
              <Button data-testid="planned-failover-retry" disabled={retry.isPending} onClick={() => retry.mutate({ id: current.id })}>
                Retry
              </Button>
            ) : null}
            <Button variant="primary" data-testid="planned-failover-close" onClick={onClose}>
              {FINAL.has(current.status) ? "Close" : "Run in Background"}
            </Button>
          </>
        ) : (
          <>
            <Button data-testid="planned-failover-check" onClick={() => void checks.refetch()} disabled={checks.isFetching}>
              Check Again
            </Button>
            <Button variant="primary" data-testid="planned-failover-ok" disabled={!allPassed || submit.isPending} onClick={() => submit.mutate({ ...ref, reverse, start })}>
              Fail Over
            </Button>
            <Button onClick={onClose}>Cancel</Button>
          </>
        )
      }
    >
      <p className="mb-2">
        Fail over {vm.name} from {vm.replication?.primaryServer} to its Replica server {vm.replication?.replicaServer}. The changes not yet replicated are sent first: no data is lost.
      </p>
      {current ? (
        <div data-testid="planned-failover-progress">
          <div className="mb-1 font-semibold">
            {current.status === "succeeded" ? "Planned failover completed." : current.status === "failed" ? "Planned failover failed." : "Planned failover in progress..."}
          </div>
          <JobSteps job={current} />
        </div>
      ) : (
        <>
          <div className="mb-1">Before failing over, the primary checks:</div>
          <table className="mb-3 w-full border-collapse border border-border-light bg-white" data-testid="planned-checks">
            <tbody>
              {(checks.data?.steps ?? []).map((s) => (
                <tr key={s.step} data-testid="planned-check" data-ok={s.ok} className="align-top">
                  <td className={cn("w-[70px] px-1 whitespace-nowrap", s.ok ? "text-ok" : "text-crit")}>{s.ok ? "✔ Passed" : "✖ Failed"}</td>
                  <td className="w-[250px] px-1">{s.step}</td>
                  <td className="px-1 text-muted">{s.detail}</td>
                </tr>
              ))}
              {checks.isLoading ? (
                <tr>
                  <td className="px-1 text-muted">Checking...</td>
                </tr>
              ) : null}
            </tbody>
          </table>
          {checks.data && !allPassed ? <div className="mb-2 text-crit">Correct what failed, then Check Again.</div> : null}
          {checks.error ? <div className="mb-2 text-crit">{errorMessage(checks.error)}</div> : null}
          <label className="flex items-center gap-1">
            <input type="checkbox" data-testid="planned-failover-reverse" checked={reverse} onChange={(e) => setReverse(e.target.checked)} />
            Reverse the replication direction after failover
          </label>
          <label className="mt-1 flex items-center gap-1">
            <input type="checkbox" data-testid="planned-failover-start" checked={start} onChange={(e) => setStart(e.target.checked)} />
            Start the Replica virtual machine after failover
          </label>
          {submit.error ? (
            <div className="mt-2 text-crit" role="alert" data-testid="dialog-error">
              {errorMessage(submit.error)}
            </div>
          ) : null}
        </>
      )}
    </Dialog>
  );
}
