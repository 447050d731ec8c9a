"use client";

/** The pane under the details: the selected server's Events, and the console's Jobs, as tabs. */
import { useEffect, useState } from "react";
import { cn } from "@/components/lib/cn";
import type { Vm } from "@/components/lib/trpc";
import type { Role } from "@/components/lib/vm-actions";
import { EventsPane } from "./events-pane";
import { JobsPane } from "./jobs-pane";

/** `onlyVmRequest`: each new value shows the Events tab with "Selected virtual machine only" on (View Events). */
export function BottomPane({ hostId, vm, role, onlyVmRequest = 0 }: { hostId: string | undefined; vm: Vm | undefined; role: Role | undefined; onlyVmRequest?: number }) {
  const [tab, setTab] = useState<"events" | "jobs">("events");
  useEffect(() => {
    if (onlyVmRequest) setTab("events");
  }, [onlyVmRequest]);
  const shown = hostId ? tab : "jobs";
  const tabButton = (id: "events" | "jobs", label: string) => (
    <button
      role="tab"
      aria-selected={shown === id}
      data-testid={`tab-${id}`}
      disabled={id === "events" && !hostId}
      onClick={() => setTab(id)}
      className={cn("h-[20px] border border-b-0 border-border-light px-3", shown === id ? "bg-pane font-semibold" : "bg-chrome text-muted hover:bg-hover")}
    >
      {label}
    </button>
  );
  return (
    <div className="flex h-full min-h-0 flex-col">
      <div role="tablist" className="flex h-[21px] items-end gap-[2px] border-b border-border-light bg-chrome px-1">
        {tabButton("events", "Events")}
        {tabButton("jobs", "Jobs")}
      </div>
      <div className="min-h-0 flex-1">{shown === "events" && hostId ? <EventsPane hostId={hostId} vm={vm} onlyVmRequest={onlyVmRequest} /> : <JobsPane role={role} />}</div>
    </div>
  );
}
