"use client";

/**
 * New Virtual Machine Wizard, after Hyper-V's: pages on the left, validated on Finish by the
 * server; a field error brings its page back with the message beside the field.
 */
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC } from "@/components/lib/trpc";
import { PAGES, WizardPage, type Draft } from "./new-vm-pages";

const FIELD_PAGE: Record<string, (typeof PAGES)[number]> = { name: "Specify Name", memoryMiB: "Assign Memory", cpus: "Configure Processor", disks: "Connect Virtual Hard Disk", workload: "Guest Workload" };

export function NewVmWizard({ hostId, hostName, onClose, onCreated }: { hostId: string; hostName: string; onClose(): void; onCreated(vmId: string): void }) {
  const trpc = useTRPC();
  const [page, setPage] = useState<(typeof PAGES)[number]>(PAGES[0]);
  const [draft, setDraft] = useState<Draft>({ name: "New Virtual Machine", memoryMiB: 1024, cpus: 1, disks: [127], pattern: "idle", rateMiBps: 1 });
  const create = useMutation(
    trpc.vms.create.mutationOptions({
      onSuccess: (vm) => onCreated(vm.vmId),
      onError: (err) => {
        const first = Object.keys(fieldErrors(err))[0]?.split(".")[0];
        if (first && FIELD_PAGE[first]) setPage(FIELD_PAGE[first]);
      },
    }),
  );
  const errors = fieldErrors(create.error);
  const i = PAGES.indexOf(page);
  const finish = () =>
    create.mutate({ hostId, name: draft.name, cpus: draft.cpus, memoryMiB: draft.memoryMiB, disks: draft.disks.map((sizeGiB) => ({ sizeGiB })), workload: { pattern: draft.pattern, rateMiBps: draft.rateMiBps } });
  return (
    <Dialog
      title="New Virtual Machine Wizard"
      onClose={onClose}
      testId="new-vm-wizard"
      className="w-[680px]"
      footer={
        <>
          <Button disabled={i === 0} onClick={() => setPage(PAGES[i - 1]!)} data-testid="wizard-previous">
            &lt; Previous
          </Button>
          <Button disabled={i === PAGES.length - 1} onClick={() => setPage(PAGES[i + 1]!)} data-testid="wizard-next">
            Next &gt;
          </Button>
          <Button variant="primary" disabled={create.isPending} onClick={finish} data-testid="wizard-finish">
            {create.isPending ? "Creating..." : "Finish"}
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </>
      }
    >
      <div className="flex min-h-[300px] gap-3">
        <nav className="w-[200px] shrink-0 border-r border-border-light pr-2">
          {PAGES.map((p) => (
            <button key={p} onClick={() => setPage(p)} data-testid={`wizard-page-${p}`} className={cn("block w-full px-2 py-[3px] text-left", p === page ? "bg-select font-semibold" : "text-link hover:underline")}>
              {p}
            </button>
          ))}
        </nav>
        <div className="flex-1">
          <h2 className="mb-3 text-[15px]">{page}</h2>
          <WizardPage page={page} draft={draft} setDraft={setDraft} errors={errors} hostName={hostName} />
          {create.error && !Object.keys(errors).length ? (
            <div className="mt-3 text-crit" role="alert" data-testid="wizard-error">
              {errorMessage(create.error)}
            </div>
          ) : null}
        </div>
      </div>
    </Dialog>
  );
}
