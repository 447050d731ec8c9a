"use client";

import { useState, type ReactNode } from "react";
import { cn } from "@/components/lib/cn";
import { formatBytes, formatDateTime, formatFrequency, formatMemoryMB, formatUptime } from "@/components/lib/format";
import { useNow } from "@/components/lib/live";
import type { Vm } from "@/components/lib/trpc";

const TABS = ["Summary", "Memory", "Networking", "Replication"] as const;
type Tab = (typeof TABS)[number];

function Rows({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <table className="border-collapse">
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k} className="h-[18px]">
            <td className="pr-6 align-top whitespace-nowrap text-muted">{k}:</td>
            <td data-testid={`detail-${k.toLowerCase().replace(/[^a-z]+/g, "-")}`}>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function VmDetails({ vm }: { vm: Vm | undefined }) {
  const [tab, setTab] = useState<Tab>("Summary");
  const now = useNow();
  if (!vm) return <div className="flex h-full items-center justify-center bg-pane text-muted">No virtual machine selected.</div>;
  const r = vm.replication;
  const body: Record<Tab, [string, ReactNode][]> = {
    Summary: [
      ["State", vm.state],
      ["Uptime", formatUptime(vm.upSince, now) || "-"],
      ["Virtual processors", vm.cpus],
      ["Startup memory", formatMemoryMB(vm.memoryMiB)],
      ["Hard drives", vm.disks.map((d) => `Disk ${d.index}: ${formatBytes(d.sizeBytes)}`).join(", ")],
      ["Workload", vm.workload.pattern === "idle" ? "Idle" : `${vm.workload.pattern}, ${vm.workload.rateMiBps} MB/s`],
      ["Created", formatDateTime(vm.createdAt)],
      ["Replica", vm.isReplica ? "Yes (this is a Replica virtual machine)" : "No"],
    ],
    Memory: [
      ["Startup memory", formatMemoryMB(vm.memoryMiB)],
      ["Assigned memory", formatMemoryMB(vm.assignedMemoryMiB) || "0 MB"],
      ["Dynamic memory", "Disabled"],
    ],
    Networking: [
      ["Adapter", "Network Adapter"],
      ["Status", vm.networkConnected ? (vm.state === "Running" ? "OK" : "Not running") : "Not connected"],
    ],
    Replication: r
      ? [
          ["Replication type", r.mode],
          ["Replication state", r.state],
          ["Replication health", <span key="h" className={r.health === "Critical" ? "text-crit" : r.health === "Warning" ? "text-warn" : "text-ok"}>{r.health}{r.reasons.length ? ` (${r.reasons.join(" ")})` : ""}</span>],
          ["Primary server", r.primaryServer],
          ["Replica server", r.replicaServer],
          ["Frequency", formatFrequency(r.frequencySeconds)],
          ["Last synchronized at", formatDateTime(r.lastSyncAt)],
        ]
      : [["Replication", "Replication is not enabled for this virtual machine."]],
  };
  return (
    <div className="flex h-full min-h-0 flex-col bg-pane" data-testid="vm-details">
      <div className="flex h-[22px] items-center border-b border-border-light bg-header px-2 font-semibold">{vm.name}</div>
      <div className="min-h-0 flex-1 overflow-auto p-2">
        <Rows rows={body[tab]} />
      </div>
      <div className="flex border-t border-border-light" role="tablist">
        {TABS.map((t) => (
          <button
            key={t}
            role="tab"
            aria-selected={t === tab}
            data-testid={`tab-${t}`}
            onClick={() => setTab(t)}
            className={cn("h-[22px] border-r border-border-light px-3", t === tab ? "-mt-px bg-pane" : "bg-chrome hover:bg-hover")}
          >
            {t}
          </button>
        ))}
      </div>
    </div>
  );
}
