"use client";

/** A host's events, newest first, live; filtered by severity and, optionally, the selected VM. */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { cn } from "@/components/lib/cn";
import { useTRPC, type Vm } from "@/components/lib/trpc";

const SEVERITIES = ["error", "warning", "info"] as const;
const LABEL = { error: "Error", warning: "Warning", info: "Information" } as const;
const COLOR = { error: "text-crit", warning: "text-warn", info: "" } as const;

/** `onlyVmRequest`: each new value turns on "Selected virtual machine only" (View Events). */
export function EventsPane({ hostId, vm, onlyVmRequest = 0 }: { hostId: string; vm: Vm | undefined; onlyVmRequest?: number }) {
  const trpc = useTRPC();
  const [shown, setShown] = useState<Record<(typeof SEVERITIES)[number], boolean>>({ error: true, warning: true, info: true });
  const [onlyVm, setOnlyVm] = useState(false);
  useEffect(() => {
    if (onlyVmRequest) setOnlyVm(true);
  }, [onlyVmRequest]);
  const severity = SEVERITIES.filter((s) => shown[s]);
  const events = useQuery(trpc.events.list.queryOptions({ hostId, severity, vmId: onlyVm && vm ? vm.vmId : undefined, limit: 200 }));
  return (
    <div className="flex h-full min-h-0 flex-col bg-pane" data-testid="events-pane">
      <div className="flex h-[22px] items-center gap-3 border-b border-border-light bg-header px-2">
        <span className="font-semibold">Events</span>
        {SEVERITIES.map((s) => (
          <label key={s} className="flex items-center gap-1">
            <input type="checkbox" data-testid={`events-${s}`} checked={shown[s]} onChange={(e) => setShown({ ...shown, [s]: e.target.checked })} />
            {LABEL[s]}
          </label>
        ))}
        <label className="flex items-center gap-1">
          <input type="checkbox" data-testid="events-only-vm" disabled={!vm} checked={onlyVm} onChange={(e) => setOnlyVm(e.target.checked)} />
          Selected virtual machine only
        </label>
      </div>
      <div className="min-h-0 flex-1 overflow-auto">
        <table className="w-full table-fixed border-collapse">
          <thead className="sticky top-0 bg-white">
            <tr className="text-left">
              <th className="w-[90px] border-r border-b border-border-light px-1 font-normal">Level</th>
              <th className="w-[175px] border-r border-b border-border-light px-1 font-normal">Date and Time</th>
              <th className="border-b border-border-light px-1 font-normal">Message</th>
            </tr>
          </thead>
          <tbody>
            {(severity.length ? (events.data ?? []) : []).map((e) => (
              <tr key={e.id} className="h-[18px] hover:bg-hover" data-testid="event-row" data-severity={e.severity}>
                <td className={cn("px-1", COLOR[e.severity])}>{LABEL[e.severity]}</td>
                <td className="truncate px-1 whitespace-nowrap">{new Date(e.ts).toLocaleString()}</td>
                <td className="truncate px-1 whitespace-nowrap" title={e.message}>
                  {e.message}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
