"use client";

/**
 * View Replication Health, as in Hyper-V Manager: state, type, servers, health with its reasons,
 * the statistics since the last reset, and charts of the recent cycles. Refresh, Reset
 * Statistics (Operators), Save As (CSV, a download from the console) and View Events.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage } from "@/components/lib/errors";
import { formatBytes, formatDateTime } from "@/components/lib/format";
import { useTRPC, type RouterOutputs, type Vm } from "@/components/lib/trpc";
import { HealthCharts } from "./health-charts";

type Stats = RouterOutputs["health"]["statistics"];

const HEALTH_COLOR = { Normal: "text-ok", Warning: "text-warn", Critical: "text-crit" } as const;
const HEALTH_ICON = { Normal: "✔", Warning: "⚠", Critical: "✖" } as const;

/** Hyper-V shows latency as hh:mm:ss; sub-second cycles (★) keep their milliseconds. */
function formatLatency(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  return [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, "0")).join(":");
}

function Section({ title, rows }: { title: string; rows: [string, ReactNode][] }) {
  return (
    <fieldset className="mb-2 border border-border-light px-2 pb-1">
      <legend className="px-1">{title}</legend>
      <table className="w-full border-collapse">
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k} className="h-[19px] align-top">
              <td className="w-[230px] pr-4 whitespace-nowrap">{k}:</td>
              <td data-testid={`health-${k.toLowerCase().replace(/[^a-z]+/g, "-").replace(/-$/, "")}`}>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </fieldset>
  );
}

function statisticsRows(s: Stats): [string, ReactNode][] {
  const m = s.monitoring;
  // The first cycles of an interval can run ahead of the schedule: never "3 out of 2".
  const due = Math.max(m.expectedCycles, m.successfulCycles);
  const pct = due ? Math.round((100 * m.successfulCycles) / due) : 100;
  return [
    ["From time", formatDateTime(s.fromTime)],
    ["To time", formatDateTime(s.toTime)],
    ["Average size", formatBytes(s.averageSizeBytes)],
    ["Maximum size", formatBytes(s.maximumSizeBytes)],
    ["Average latency", formatLatency(s.averageLatencyMs)],
    ["Errors encountered", s.errorsEncountered],
    ["Successful replication cycles", `${m.successfulCycles} out of ${due} (${pct}%)`],
    ["Missed replication cycles", s.missedCycles],
    ...(s.mode === "Primary" ? ([["Size of data yet to be replicated", formatBytes(s.pendingBytes ?? 0)]] as [string, ReactNode][]) : []),
    ["Last synchronized at", formatDateTime(s.lastSynchronizedAt)],
    ...(s.mode === "Replica"
      ? ([
          ["Test failover status", s.testFailoverRunning ? "Test failover in progress" : "Not running"],
          ["Last test failover", formatDateTime(s.lastTestFailoverAt)],
        ] as [string, ReactNode][])
      : []),
  ];
}

export function ReplicationHealthDialog({ vm, canReset, onViewEvents, onClose }: { vm: Vm; canReset: boolean; onViewEvents(): void; onClose(): void }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const ref = { hostId: vm.hostId, vmId: vm.vmId };
  const stats = useQuery({ ...trpc.health.statistics.queryOptions(ref), staleTime: 0 });
  const cycles = useQuery({ ...trpc.health.cycles.queryOptions({ ...ref, limit: 120 }), staleTime: 0 });
  const reset = useMutation(
    trpc.health.reset.mutationOptions({
      onSuccess: (fresh) => {
        qc.setQueryData(trpc.health.statistics.queryKey(ref), fresh);
        void cycles.refetch();
      },
    }),
  );
  const refreshing = stats.isFetching || cycles.isFetching;
  const s = stats.data;
  const csvUrl = `/api/replication-statistics.csv?hostId=${encodeURIComponent(vm.hostId)}&vmId=${encodeURIComponent(vm.vmId)}`;

  return (
    <Dialog
      title={`Replication Health for '${vm.name}'`}
      onClose={onClose}
      testId="replication-health"
      className="w-[780px]"
      footer={
        <>
          <Button data-testid="health-refresh" disabled={refreshing} onClick={() => (void stats.refetch(), void cycles.refetch())}>
            {refreshing ? "Refreshing..." : "Refresh"}
          </Button>
          <Button data-testid="health-reset" disabled={!canReset || reset.isPending || !s} title={canReset ? undefined : "Resetting statistics needs the Operator role."} onClick={() => reset.mutate(ref)}>
            {reset.isPending ? "Resetting..." : "Reset Statistics"}
          </Button>
          <a href={csvUrl} download data-testid="health-save-as" className={cn("inline-flex h-[23px] min-w-[75px] items-center justify-center border border-[#adadad] bg-[#e1e1e1] px-3 hover:border-select-strong hover:bg-hover", !s && "pointer-events-none text-muted")}>
            Save As...
          </a>
          <Button data-testid="health-view-events" onClick={onViewEvents}>
            View Events...
          </Button>
          <span className="flex-1" />
          <Button variant="primary" data-testid="health-close" data-autofocus onClick={onClose}>
            Close
          </Button>
        </>
      }
    >
      {!s ? (
        <div className="min-h-[200px] text-muted" data-testid="health-loading">
          {stats.error ? <span className="text-crit">{errorMessage(stats.error)}</span> : "Loading..."}
        </div>
      ) : (
        <div className="space-y-1" data-testid="health-body">
          <Section
            title="Replication"
            rows={[
              ["Replication State", s.state],
              ["Replication Type", s.mode],
              ["Current Primary Server", s.primaryServer],
              ["Current Replica Server", s.replicaServer],
              [
                "Replication Health",
                <span key="h" className={cn("font-semibold", HEALTH_COLOR[s.health])} data-health={s.health}>
                  {HEALTH_ICON[s.health]} {s.health}
                </span>,
              ],
            ]}
          />
          {s.healthReasons.length ? (
            <ul className="mb-2 ml-[10px] list-disc border border-border-light bg-white py-1 pr-2 pl-6" data-testid="health-reasons">
              {s.healthReasons.map((r) => (
                <li key={r}>{r}</li>
              ))}
            </ul>
          ) : null}
          <Section title="Statistics" rows={statisticsRows(s)} />
          {s.lastError ? <div className="mb-2 text-crit" data-testid="health-last-error">Last error: {s.lastError}</div> : null}
          <HealthCharts cycles={cycles.data ?? []} />
          {reset.error ? (
            <div className="mt-1 text-crit" role="alert" data-testid="health-error">
              {errorMessage(reset.error)}
            </div>
          ) : null}
        </div>
      )}
    </Dialog>
  );
}
