"use client";

/**
 * Reverse Replication wizard, after a completed failover: prefilled from the original settings;
 * Finish starts a console job (reverse, apply the settings, resynchronize) whose progress it shows.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { JobSteps } from "@/components/manager/job-steps";
import { checkReversePage, REVERSE_PAGES, ReverseWizardPage, type ReverseDraft, type ReversePage } from "./reverse-pages";

const FIELD_PAGE: Record<string, ReversePage> = { replicaPort: "Specify Connection Parameters", authMode: "Specify Connection Parameters", frequencySeconds: "Configure Replication Frequency", recoveryHistory: "Configure Additional Recovery Points" };

export function ReverseReplicationWizard({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const ref = { hostId: vm.hostId, vmId: vm.vmId };
  const defaults = useQuery(trpc.failover.reverseDefaults.queryOptions(ref));
  const [page, setPage] = useState<ReversePage>(REVERSE_PAGES[0]);
  const [draft, setDraft] = useState<ReverseDraft | null>(null);
  const [pageErrors, setPageErrors] = useState<Record<string, string[]>>({});
  useEffect(() => {
    const d = defaults.data;
    if (d && !draft) setDraft({ replicaPort: d.replicaPort ? String(d.replicaPort) : "", authMode: d.authMode, compression: d.compression, frequencySeconds: d.frequencySeconds, recoveryHistory: d.recoveryHistory });
  }, [defaults.data, draft]);
  const submit = useMutation(
    trpc.failover.reverse.mutationOptions({
      onError: (err) => {
        const first = Object.keys(fieldErrors(err))[0];
        if (first && FIELD_PAGE[first]) setPage(FIELD_PAGE[first]);
      },
    }),
  );
  const jobId = submit.data?.id;
  const job = useQuery({ ...trpc.jobs.get.queryOptions({ id: jobId ?? "" }), enabled: !!jobId, refetchInterval: (q) => (q.state.data?.finishedAt ? false : 1000) });
  const current = job.data ?? submit.data;
  const errors = { ...fieldErrors(submit.error), ...pageErrors };
  const i = REVERSE_PAGES.indexOf(page);
  const go = (to: ReversePage) => {
    // Forward moves check the page being left; going back never does.
    const found = draft && REVERSE_PAGES.indexOf(to) > i ? checkReversePage(page, draft) : {};
    setPageErrors(found);
    if (!Object.keys(found).length) setPage(to);
  };
  const finish = () => {
    if (!draft) return;
    for (const p of REVERSE_PAGES) {
      const found = checkReversePage(p, draft);
      if (Object.keys(found).length) return (setPageErrors(found), setPage(p));
    }
    submit.mutate({ ...ref, replicaPort: Number(draft.replicaPort), authMode: draft.authMode, compression: draft.compression, frequencySeconds: draft.frequencySeconds, recoveryHistory: draft.recoveryHistory });
  };
  return (
    <Dialog
      title={`Reverse Replication Wizard for ${vm.name}`}
      onClose={onClose}
      testId="reverse-wizard"
      className="w-[700px]"
      footer={
        current ? (
          <Button variant="primary" data-testid="reverse-close" onClick={onClose}>
            {current.finishedAt ? "Close" : "Run in Background"}
          </Button>
        ) : (
          <>
            <Button disabled={i === 0} onClick={() => go(REVERSE_PAGES[i - 1]!)} data-testid="wizard-previous">
              &lt; Previous
            </Button>
            <Button disabled={i === REVERSE_PAGES.length - 1 || !draft} onClick={() => go(REVERSE_PAGES[i + 1]!)} data-testid="wizard-next">
              Next &gt;
            </Button>
            <Button variant="primary" disabled={!draft || submit.isPending} onClick={finish} data-testid="wizard-finish">
              Finish
            </Button>
            <Button onClick={onClose}>Cancel</Button>
          </>
        )
      }
    >
      {current ? (
        <div data-testid="reverse-progress">
          <div className="mb-1 font-semibold">{current.status === "succeeded" ? "Reverse replication is set up." : current.status === "failed" ? "Reverse replication failed." : "Reversing replication..."}</div>
          <JobSteps job={current} />
        </div>
      ) : (
        <div className="flex min-h-[280px] gap-3">
          <nav className="w-[220px] shrink-0 border-r border-border-light pr-2">
            {REVERSE_PAGES.map((p) => (
              <button key={p} onClick={() => go(p)} data-testid={`wizard-page-${p}`} className={cn("block w-full px-2 py-[3px] text-left", p === page ? "bg-select font-semibold" : "text-link hover:underline")}>
                {p}
              </button>
            ))}
          </nav>
          <div className="flex-1">
            <h2 className="mb-3 text-[15px]">{page}</h2>
            {defaults.data && draft ? (
              <ReverseWizardPage page={page} vmName={vm.name} here={vm.replication?.replicaServer ?? ""} defaults={defaults.data} draft={draft} setDraft={setDraft} errors={errors} />
            ) : (
              <div className="text-muted">{defaults.error ? errorMessage(defaults.error) : "Reading the original replication settings..."}</div>
            )}
            {submit.error && !Object.keys(fieldErrors(submit.error)).length ? (
              <div className="mt-3 text-crit" role="alert" data-testid="wizard-error">
                {errorMessage(submit.error)}
              </div>
            ) : null}
          </div>
        </div>
      )}
    </Dialog>
  );
}
