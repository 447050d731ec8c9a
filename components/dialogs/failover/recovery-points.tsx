"use client";

/** A replica's recovery points to choose from, newest first, as Hyper-V lists them, with what each gives up. */
import { cn } from "@/components/lib/cn";
import { formatBytes, formatDateTime } from "@/components/lib/format";
import type { RouterOutputs } from "@/components/lib/trpc";

export type RecoveryPoints = RouterOutputs["failover"]["recoveryPoints"];
type Point = RecoveryPoints["points"][number];

const KIND = { latest: "Latest Recovery Point", standard: "Standard", "application-consistent": "Application-consistent" } as const;

export function pointLabel(p: Point): string {
  return p.kind === "latest" ? `Latest Recovery Point (${formatDateTime(p.at)})` : `${KIND[p.kind]} - ${formatDateTime(p.at)}`;
}

/** "5 min 3 s" */
export function formatSeconds(s: number): string {
  const t = Math.round(s);
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} min ${t % 60} s`;
  return `${Math.floor(t / 3600)} h ${Math.floor((t % 3600) / 60)} min`;
}

export function RecoveryPointList({ points, value, onChange, showLoss }: { points: Point[]; value: string; onChange(id: string): void; showLoss?: boolean }) {
  return (
    <div className="max-h-[180px] overflow-auto border border-[#7a7a7a] bg-white" role="radiogroup" aria-label="Recovery point">
      <table className="w-full border-collapse">
        <thead className="sticky top-0 bg-header">
          <tr className="text-left">
            <th className="w-[22px]" />
            <th className="px-1 font-normal">Recovery point</th>
            <th className="w-[80px] px-1 font-normal">Size</th>
            {showLoss ? <th className="w-[120px] px-1 font-normal">Older than latest</th> : null}
          </tr>
        </thead>
        <tbody>
          {points.map((p) => (
            <tr key={p.id} data-testid="recovery-point" data-point-id={p.id} data-kind={p.kind} onClick={() => onChange(p.id)} className={cn("h-[20px] cursor-default", value === p.id ? "bg-select" : "hover:bg-hover")}>
              <td className="text-center">
                <input type="radio" name="recovery-point" checked={value === p.id} onChange={() => onChange(p.id)} aria-label={pointLabel(p)} />
              </td>
              <td className="px-1">{pointLabel(p)}</td>
              <td className="px-1">{p.kind === "latest" ? "" : formatBytes(p.sizeBytes)}</td>
              {showLoss ? <td className="px-1">{p.kind === "latest" ? "" : formatSeconds(p.secondsBeforeLastReplicated)}</td> : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
