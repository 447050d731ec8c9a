"use client";

/**
 * The wall dashboard (/dashboard): a kiosk view for a 1080p screen across the room. Counts of
 * Normal / Warning / Critical, then a tile per replicated VM, worst first, live over socket.io.
 * When the console cannot be heard the whole wall says so and greys out.
 */
import { cn } from "@/components/lib/cn";
import { useNow } from "@/components/lib/live";
import { isStale, useWallFeed } from "./use-wall-feed";
import { WallTile } from "./wall-tile";

const COUNT_STYLE = {
  Critical: "bg-[#c42b1c] text-white",
  Warning: "bg-[#f2b600] text-black",
  Normal: "bg-[#2f8f3a] text-white",
} as const;

const MAX_TILES = 28;

export function WallDashboard({ dashboardKey }: { dashboardKey: string | null }) {
  const feed = useWallFeed(dashboardKey);
  const now = useNow();
  const stale = isStale(feed, now);
  const consoleNow = now + feed.clockOffsetMs;
  const s = feed.snapshot;
  const count = s?.tiles.length ?? 0;
  // Few VMs get big tiles; many get more, smaller ones.
  const compact = count > 12;
  const columns = count <= 4 ? "grid-cols-2" : compact ? "grid-cols-4" : "grid-cols-3";
  // What fits on a 1080p screen; the rest (the healthiest, as tiles go worst first) is counted.
  const shown = s?.tiles.slice(0, MAX_TILES) ?? [];
  const hidden = s ? s.tiles.length - shown.length : 0;
  const lastHeard = feed.lastHeardAt ? new Date(feed.lastHeardAt).toLocaleTimeString() : null;

  return (
    <div className="flex h-screen flex-col gap-4 overflow-hidden bg-[#111417] p-6 text-white" data-testid="wall" data-stale={stale}>
      <header className="flex items-center justify-between">
        <h1 className="text-[36px] font-semibold">Replication Health</h1>
        <div className="flex items-center gap-6 text-[28px]">
          <span className="tabular-nums opacity-80">{new Date(now).toLocaleTimeString()}</span>
          <span className={cn("flex items-center gap-2 font-semibold", stale ? "text-[#ff6b5b]" : "text-[#5fd16d]")} data-testid="wall-live">
            <span className={cn("inline-block h-4 w-4 rounded-full", stale ? "bg-[#ff6b5b]" : "animate-pulse bg-[#5fd16d]")} />
            {stale ? "NOT LIVE" : "Live"}
          </span>
        </div>
      </header>

      {stale ? (
        <div className="rounded-md border-2 border-[#ff6b5b] bg-[#3a1512] px-5 py-3 text-[30px] font-semibold" role="alert" data-testid="wall-stale">
          {feed.refused
            ? `${feed.refused.charAt(0).toUpperCase()}${feed.refused.slice(1)}. Ask an Administrator for a new dashboard link.`
            : `Data is stale: no news from the console${lastHeard ? ` since ${lastHeard}` : ""}. Reconnecting...`}
        </div>
      ) : null}

      <section className={cn("grid grid-cols-3 gap-4", stale && "opacity-40")}>
        {(["Critical", "Warning", "Normal"] as const).map((h) => (
          <div key={h} className={cn("flex items-center justify-between rounded-md px-6 py-2", s && s.counts[h] === 0 && h !== "Normal" ? "bg-[#23282d] text-[#8b949e]" : COUNT_STYLE[h])} data-testid={`wall-count-${h}`}>
            <span className="text-[40px] font-semibold">{h}</span>
            <span className="text-[110px] leading-none font-bold tabular-nums" data-testid={`wall-count-${h}-value`}>
              {s ? s.counts[h] : "–"}
            </span>
          </div>
        ))}
      </section>

      <section className={cn("grid min-h-0 flex-1 content-start gap-3 overflow-hidden", columns, stale && "opacity-40 grayscale")} data-testid="wall-tiles">
        {shown.map((t) => <WallTile key={t.vmId} tile={t} now={consoleNow} compact={compact} />)}
        {hidden > 0 ? (
          <div className="col-span-full text-[26px] text-[#8b949e]" data-testid="wall-more">
            and {hidden} more virtual machines ({s!.tiles.slice(MAX_TILES).filter((t) => t.health !== "Normal").length} of them not Normal)
          </div>
        ) : null}
        {s && s.tiles.length === 0 ? <div className="col-span-full text-[28px] text-[#8b949e]">No virtual machine is replicated.</div> : null}
        {!s && !feed.refused ? <div className="col-span-full text-[28px] text-[#8b949e]">Connecting to the console...</div> : null}
      </section>
    </div>
  );
}
