"use client";

/** One replicated VM on the wall: health colour, lag since the last sync, host pair, reason. */
import { cn } from "@/components/lib/cn";
import type { WallTile as Tile } from "@/server/fleet/wall-model";

const STYLE = {
  Critical: "bg-[#c42b1c] text-white border-[#ff6b5b]",
  Warning: "bg-[#f2b600] text-black border-[#ffd75e]",
  Normal: "bg-[#1f2a22] text-white border-[#2f8f3a]",
} as const;

/** "8 s", "4 min 05 s", "2 h 10 min", "3 d 4 h": time since the last sync. */
export function formatLag(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

const short = (host: string) => host.split(".")[0] ?? host;

export function WallTile({ tile, now, compact }: { tile: Tile; now: number; compact: boolean }) {
  const lag = tile.lastSyncAt ? formatLag(now - Date.parse(tile.lastSyncAt)) : "never";
  return (
    <div
      className={cn("flex min-w-0 flex-col rounded-md border-l-[10px] px-4 py-3", STYLE[tile.health], compact ? "gap-0" : "gap-1")}
      data-testid="wall-tile"
      data-vm={tile.name}
      data-health={tile.health}
    >
      <div className="flex items-baseline justify-between gap-3">
        <span className={cn("truncate font-bold", compact ? "text-[30px]" : "text-[44px]")}>{tile.name}</span>
        <span className={cn("shrink-0 font-semibold uppercase", compact ? "text-[20px]" : "text-[28px]")} data-testid="wall-tile-health">
          {tile.health}
        </span>
      </div>
      <div className={cn("flex items-baseline justify-between gap-3", compact ? "text-[22px]" : "text-[30px]")}>
        <span className="truncate opacity-90" title={`${tile.primaryServer} → ${tile.replicaServer}`}>
          {short(tile.primaryServer)} → {short(tile.replicaServer)}
        </span>
        <span className="shrink-0 tabular-nums" data-testid="wall-tile-lag">
          last sync {lag}{tile.lastSyncAt ? " ago" : ""}
        </span>
      </div>
      {tile.health !== "Normal" || tile.unreachable.length ? (
        <div className={cn("line-clamp-2 leading-tight", compact ? "text-[20px]" : "text-[26px]")} data-testid="wall-tile-reason">
          {[...tile.unreachable.map((h) => `Cannot reach ${h}.`), ...tile.reasons.slice(0, 1)].join(" ")}
        </div>
      ) : null}
    </div>
  );
}
