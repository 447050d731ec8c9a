"use client";

import type { Host } from "@/components/lib/trpc";
import { cn } from "@/components/lib/cn";
import { ALL_HOSTS } from "@/components/lib/live";
import { ManagerIcon, ServerIcon } from "./icons";
import { platformLabel } from "@/components/vm-console/open";

export function HostTree({ hosts, selectedId, onSelect, onContextMenu }: { hosts: Host[]; selectedId: string | null; onSelect(id: string): void; onContextMenu(e: React.MouseEvent, host: Host | undefined): void }) {
  const move = (e: React.KeyboardEvent) => {
    const ids = [ALL_HOSTS, ...hosts.map((h) => h.id)];
    const i = ids.indexOf(selectedId ?? "");
    const next = e.key === "ArrowDown" ? ids[i + 1] : e.key === "ArrowUp" ? ids[i - 1] : undefined;
    if (next) {
      e.preventDefault();
      onSelect(next);
    }
  };
  return (
    <div className="h-full overflow-auto bg-pane py-1 outline-none" role="tree" aria-label="Servers" tabIndex={0} onKeyDown={move} data-testid="host-tree">
      <div
        role="treeitem"
        aria-selected={selectedId === ALL_HOSTS}
        data-testid="host-all"
        title="Every server's virtual machines"
        onClick={() => onSelect(ALL_HOSTS)}
        onContextMenu={(e) => {
          onSelect(ALL_HOSTS);
          onContextMenu(e, undefined);
        }}
        className={cn("flex h-[20px] cursor-default items-center gap-1 border border-transparent px-1", selectedId === ALL_HOSTS && "border-select-border bg-select")}
      >
        <ManagerIcon />
        <span>Hyper-V Manager</span>
      </div>
      {hosts.map((h) => (
        <div
          key={h.id}
          role="treeitem"
          aria-selected={h.id === selectedId}
          data-testid={`host-${h.name}`}
          data-status={h.status}
          title={h.status === "unreachable" ? `Cannot connect: ${h.statusReason ?? "unknown reason"}` : `${h.name} (${h.address})${h.hypervisor ? `\n${platformLabel(h)}` : ""}`}
          onClick={() => onSelect(h.id)}
          onContextMenu={(e) => {
            onSelect(h.id);
            onContextMenu(e, h);
          }}
          className={cn("ml-4 flex h-[20px] cursor-default items-center gap-1 border border-transparent px-1", h.id === selectedId && "border-select-border bg-select")}
        >
          <ServerIcon status={h.status} />
          <span className="truncate">{h.name}</span>
          {h.status === "unreachable" ? <span className="sr-only">(unreachable)</span> : null}
        </div>
      ))}
    </div>
  );
}
