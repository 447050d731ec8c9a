"use client";

/**
 * The Virtual Machines list: sortable columns, a name filter, and virtualized rows (only the
 * visible rows are in the DOM), so thousands of VMs stay smooth. Arrow keys move the selection.
 */
import { flexRender, getCoreRowModel, getFilteredRowModel, getSortedRowModel, useReactTable, type ColumnDef, type SortingState } from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useMemo, useRef, useState } from "react";
import { cn } from "@/components/lib/cn";
import { formatMemoryMB, formatUptime } from "@/components/lib/format";
import { useNow } from "@/components/lib/live";
import type { Vm } from "@/components/lib/trpc";
import { VmIcon } from "./icons";

const ROW = 20;
const HEALTH_COLOR = { Normal: "", Warning: "text-warn", Critical: "text-crit" } as const;

/** A row's key: a replica VM shares its id with its primary, so the host is part of it. */
export const vmKey = (v: { hostId: string; vmId: string }) => `${v.hostId}/${v.vmId}`;

export function VmList({ vms, selectedId, pending, servers, onSelect, onContextMenu, onKey }: {
  vms: Vm[];
  selectedId: string | null;
  pending: Record<string, string>;
  /** Host names by id: shows a Server column (the every-server view). */
  servers?: Map<string, string>;
  onSelect(key: string): void;
  onContextMenu(e: React.MouseEvent, vm: Vm): void;
  onKey(e: React.KeyboardEvent): void;
}) {
  const now = useNow();
  const [sorting, setSorting] = useState<SortingState>([{ id: "name", desc: false }]);
  const [filter, setFilter] = useState("");
  const columns = useMemo<ColumnDef<Vm>[]>(
    () => [
      {
        id: "name",
        header: "Name",
        accessorKey: "name",
        size: servers ? 180 : 220,
        cell: ({ row }) => (
          <span className="flex items-center gap-1">
            <VmIcon state={row.original.state} />
            <span className="truncate">{row.original.name}</span>
          </span>
        ),
      },
      ...(servers ? [{ id: "server", header: "Server", accessorFn: (v: Vm) => servers.get(v.hostId) ?? "", size: 130 } satisfies ColumnDef<Vm>] : []),
      { id: "state", header: "State", accessorKey: "state", size: 90 },
      // As in Hyper-V Manager: a running VM shows a percentage (0 % when idle), others nothing.
      { id: "cpu", header: "CPU Usage", accessorFn: (v) => v.cpuUsagePercent ?? -1, size: 80, cell: ({ row }) => (row.original.cpuUsagePercent === null ? "" : `${row.original.cpuUsagePercent} %`) },
      { id: "memory", header: "Assigned Memory", accessorKey: "assignedMemoryMiB", size: 115, cell: ({ getValue }) => formatMemoryMB(getValue<number>()) },
      { id: "uptime", header: "Uptime", accessorFn: (v) => (v.upSince ? -Date.parse(v.upSince) : Number.NEGATIVE_INFINITY), size: 90, cell: ({ row }) => formatUptime(row.original.upSince, now) },
      // The table caches accessor values until the VMs change: the cell reads the current status itself.
      { id: "status", header: "Status", accessorFn: (v) => pending[vmKey(v)] ?? "", size: 120, cell: ({ row }) => <span title={pending[vmKey(row.original)]}>{pending[vmKey(row.original)] ?? ""}</span> },
      {
        id: "health",
        header: "Replication Health",
        accessorFn: (v) => v.replication?.health ?? "Not Applicable",
        size: 130,
        cell: ({ row }) => {
          const h = row.original.replication?.health;
          return <span className={h ? HEALTH_COLOR[h] : "text-muted"}>{h ?? "Not Applicable"}</span>;
        },
      },
    ],
    [now, pending, servers],
  );
  const table = useReactTable({
    data: vms,
    columns,
    state: { sorting, globalFilter: filter },
    onSortingChange: setSorting,
    onGlobalFilterChange: setFilter,
    globalFilterFn: (row, _id, value: string) => row.original.name.toLowerCase().includes(value.toLowerCase()),
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
    getFilteredRowModel: getFilteredRowModel(),
    getRowId: vmKey,
  });
  const rows = table.getRowModel().rows;
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({ count: rows.length, getScrollElement: () => scroller.current, estimateSize: () => ROW, overscan: 12 });
  const items = virtual.getVirtualItems();
  const padTop = items[0]?.start ?? 0;
  const padBottom = virtual.getTotalSize() - (items.at(-1)?.end ?? 0);

  const keys = (e: React.KeyboardEvent) => {
    const i = rows.findIndex((r) => r.id === selectedId);
    const next = e.key === "ArrowDown" ? rows[Math.min(rows.length - 1, i + 1)] : e.key === "ArrowUp" ? rows[Math.max(0, i - 1)] : e.key === "Home" ? rows[0] : e.key === "End" ? rows.at(-1) : undefined;
    if (next) {
      e.preventDefault();
      onSelect(next.id);
      virtual.scrollToIndex(rows.indexOf(next));
      return;
    }
    onKey(e);
  };

  return (
    <div className="flex h-full min-h-0 flex-col bg-pane">
      <div className="flex h-[22px] items-center gap-2 border-b border-border-light bg-header px-2">
        <span className="font-semibold">Virtual Machines</span>
        <input
          aria-label="Filter virtual machines by name"
          data-testid="vm-filter"
          placeholder="Filter by name"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
          className="ml-auto h-[18px] w-[180px] border border-border-light px-1 outline-none focus:border-select-strong"
        />
        <span className="text-muted" data-testid="vm-count">
          {rows.length === vms.length ? `${vms.length} ${vms.length === 1 ? "item" : "items"}` : `${rows.length} of ${vms.length}`}
        </span>
      </div>
      <div ref={scroller} className="min-h-0 flex-1 overflow-auto outline-none" tabIndex={0} onKeyDown={keys} data-testid="vm-list">
        <table className="w-full table-fixed border-collapse" style={{ minWidth: table.getTotalSize() }} role="grid" aria-label="Virtual Machines">
          <thead className="sticky top-0 z-10 bg-white">
            {table.getHeaderGroups().map((g) => (
              <tr key={g.id}>
                {g.headers.map((h) => (
                  <th
                    key={h.id}
                    style={{ width: h.getSize() }}
                    className="h-[22px] cursor-default truncate border-r border-b border-border-light px-1 text-left font-normal whitespace-nowrap select-none hover:bg-hover"
                    onClick={h.column.getToggleSortingHandler()}
                    aria-sort={h.column.getIsSorted() === "asc" ? "ascending" : h.column.getIsSorted() === "desc" ? "descending" : "none"}
                    data-testid={`col-${h.id}`}
                  >
                    {flexRender(h.column.columnDef.header, h.getContext())}
                    <span className="ml-1 text-[9px] text-muted">{{ asc: "▲", desc: "▼" }[h.column.getIsSorted() as string] ?? ""}</span>
                  </th>
                ))}
              </tr>
            ))}
          </thead>
          <tbody>
            {padTop > 0 ? <tr style={{ height: padTop }} /> : null}
            {items.map((item) => {
              const row = rows[item.index]!;
              const selected = row.id === selectedId;
              return (
                <tr
                  key={row.id}
                  data-testid={`vm-row-${row.original.name}`}
                  data-state={row.original.state}
                  aria-selected={selected}
                  onMouseDown={() => onSelect(row.id)}
                  onContextMenu={(e) => {
                    onSelect(row.id);
                    onContextMenu(e, row.original);
                  }}
                  className={cn("cursor-default", selected ? "bg-select" : "hover:bg-hover")}
                  style={{ height: ROW }}
                >
                  {row.getVisibleCells().map((cell) => (
                    <td key={cell.id} className="truncate px-1 whitespace-nowrap" data-col={cell.column.id}>
                      {flexRender(cell.column.columnDef.cell, cell.getContext())}
                    </td>
                  ))}
                </tr>
              );
            })}
            {padBottom > 0 ? <tr style={{ height: padBottom }} /> : null}
          </tbody>
        </table>
        {vms.length === 0 ? <div className="p-3 text-muted">No virtual machines were found on this server.</div> : null}
      </div>
    </div>
  );
}
