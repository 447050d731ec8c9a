"use client";

/** What the console's running jobs mean for each VM row: its Status column shows the job's step. */
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { JOBS_QUERY } from "./live";
import { useTRPC, type Vm } from "./trpc";
import { JOB_TITLE } from "@/components/manager/job-steps";
import { vmKey } from "@/components/manager/vm-list";

/** Status texts by VM row key, for the VMs (on both of their hosts) that have a job running or failed. */
export function useJobStatuses(vms: Vm[] | undefined): Record<string, string> {
  const trpc = useTRPC();
  const jobs = useQuery(trpc.jobs.list.queryOptions(JOBS_QUERY));
  return useMemo(() => {
    const open = (jobs.data ?? []).filter((j) => j.status === "queued" || j.status === "running" || j.status === "failed");
    const out: Record<string, string> = {};
    for (const v of vms ?? []) {
      const j = open.find((x) => x.vmId === v.vmId && (x.input.primaryHostId === v.hostId || x.input.replicaHostId === v.hostId));
      if (!j) continue;
      const counted = j.steps.filter((s) => s.status !== "skipped");
      const done = counted.filter((s) => s.status === "succeeded").length;
      out[vmKey(v)] = j.status === "failed" ? `${JOB_TITLE[j.kind]} failed` : `${JOB_TITLE[j.kind]} (${Math.min(done + 1, counted.length)}/${counted.length})`;
    }
    return out;
  }, [jobs.data, vms]);
}
