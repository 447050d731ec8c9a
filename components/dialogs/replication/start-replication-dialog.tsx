"use client";

/**
 * Start Replication, as in Hyper-V: the initial copy of a primary that is Ready for initial
 * replication is sent over the network now, or scheduled for a date and time up to 7 days
 * ahead (the agent keeps the schedule); a schedule can also be cancelled.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { cn } from "@/components/lib/cn";
import { fieldErrors } from "@/components/lib/errors";
import { formatDateTime } from "@/components/lib/format";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { localToIso } from "./enable-wizard-model";
import { wizardInput } from "./enable-wizard-fields";
import { ActionDialog, ref } from "./simple-dialogs";

type When = "now" | "later" | "unschedule";

/** An ISO time as a datetime-local input's value, in the browser's time zone. */
function isoToLocal(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const OK_LABEL: Record<When, [string, string]> = {
  now: ["Start Replication", "Starting..."],
  later: ["Schedule", "Scheduling..."],
  unschedule: ["Cancel Schedule", "Cancelling..."],
};

export function StartReplicationDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  // The schedule shown must be the agent's own, not one cached before the last change.
  const settings = useQuery({ ...trpc.replication.settings.queryOptions(ref(vm)), refetchOnMount: "always" });
  const start = useMutation(
    trpc.replication.startInitial.mutationOptions({
      onSuccess: async () => {
        await queryClient.invalidateQueries({ queryKey: trpc.replication.settings.queryKey(ref(vm)) });
        onClose();
      },
    }),
  );
  const [when, setWhen] = useState<When>("now");
  const [at, setAt] = useState<string | null>(null);
  const scheduled = settings.isFetching ? null : (settings.data?.initialStartAt ?? null);
  const atValue = at ?? (scheduled ? isoToLocal(scheduled) : "");
  const errors = fieldErrors(start.error);
  const choose = (w: When) => (setWhen(w), start.reset());
  const ok = () => {
    if (when === "now") return start.mutate(ref(vm));
    start.mutate({ ...ref(vm), initialStartAt: when === "unschedule" ? null : (localToIso(atValue) ?? atValue) });
  };
  const [okLabel, busyLabel] = OK_LABEL[when];
  return (
    <ActionDialog title="Start Replication" testId="start-replication-dialog" okLabel={okLabel} busyLabel={busyLabel} pending={start.isPending} error={start.error} onOk={ok} onClose={onClose}>
      <p className="mb-2">The initial copy of &apos;{vm.name}&apos; has not been sent to {vm.replication?.replicaServer} yet. It is sent over the network; its progress appears in the Replication State and the events.</p>
      <p className="mb-2" data-testid="start-schedule-state">
        {!settings.data || settings.isFetching ? "..." : scheduled ? <>It is scheduled to start on <b>{formatDateTime(scheduled)}</b>.</> : "It is not scheduled: it waits to be started."}
      </p>
      <fieldset className="border border-border-light p-2">
        <legend className="px-1">Schedule Initial Replication</legend>
        <label className="mb-1 flex items-center gap-2">
          <input type="radio" checked={when === "now"} data-testid="start-now" onChange={() => choose("now")} />
          Start replication immediately
        </label>
        <label className="mb-1 flex items-center gap-2">
          <input type="radio" checked={when === "later"} data-testid="start-later" onChange={() => choose("later")} />
          Start replication on (up to 7 days ahead):
        </label>
        <div className="mb-1 ml-6">
          <input type="datetime-local" data-testid="start-at" disabled={when !== "later"} className={cn(wizardInput, "w-[220px]")} value={atValue} onChange={(e) => (setAt(e.target.value), start.reset())} aria-invalid={!!errors.initialStartAt} />
          {errors.initialStartAt ? <div className="mt-[2px] text-crit" role="alert" data-testid="error-initialStartAt">{errors.initialStartAt.join(" ")}</div> : null}
        </div>
        {scheduled ? (
          <label className="flex items-center gap-2">
            <input type="radio" checked={when === "unschedule"} data-testid="start-unschedule" onChange={() => choose("unschedule")} />
            Cancel the scheduled start (the initial copy then waits to be started)
          </label>
        ) : null}
      </fieldset>
    </ActionDialog>
  );
}
