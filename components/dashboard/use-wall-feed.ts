"use client";

/**
 * The wall's live feed over socket.io: a snapshot on every change and a heartbeat every few
 * seconds. socket.io reconnects by itself; the wall is stale while disconnected or when the
 * heartbeat stops. Times are corrected by the console's clock (lag is the console's view).
 */
import { useEffect, useState } from "react";
import { io, type Socket } from "socket.io-client";
import type { WallSnapshot } from "@/server/fleet/wall-model";
import type { ClientToServerEvents, ServerToClientEvents } from "@/server/realtime/types";

/** Twice the server's heartbeat (3 s) and a little: then the data is called stale. */
const STALE_AFTER_MS = 7000;

export interface WallFeed {
  snapshot: WallSnapshot | null;
  connected: boolean;
  /** When the console was last heard from (browser clock), or null. */
  lastHeardAt: number | null;
  /** The console's clock minus the browser's. */
  clockOffsetMs: number;
  /** Why the console refused the wall (a revoked link), if it did. */
  refused: string | null;
}

export function useWallFeed(dashboardKey: string | null): WallFeed {
  const [feed, setFeed] = useState<WallFeed>({ snapshot: null, connected: false, lastHeardAt: null, clockOffsetMs: 0, refused: null });
  useEffect(() => {
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io({
      path: "/socket.io",
      transports: ["websocket"],
      auth: dashboardKey ? { dashboardKey } : {},
      reconnectionDelayMax: 3000,
    });
    const heard = (serverIso: string) => ({ lastHeardAt: Date.now(), clockOffsetMs: Date.parse(serverIso) - Date.now() });
    socket.on("connect", () => {
      setFeed((f) => ({ ...f, connected: true, refused: null }));
      if (!dashboardKey) socket.emit("wall:watch");
    });
    socket.on("disconnect", (reason) => {
      setFeed((f) => ({ ...f, connected: false }));
      // The console closed this wall (its link was revoked): ask again, to learn why.
      if (reason === "io server disconnect") setTimeout(() => socket.connect(), 1000);
    });
    socket.on("connect_error", (err) => {
      const refused = /revoked|not valid/.test(err.message) ? err.message : null;
      if (err.message === "sign in first" && !dashboardKey) return window.location.assign("/login");
      // A revoked link shows nothing more of the fleet.
      setFeed((f) => ({ ...f, connected: false, refused, snapshot: refused ? null : f.snapshot }));
      // A refusal by the console stops socket.io's own retries (a network error does not): ask
      // again now and then, a revoked link stays refused and a restarted console answers.
      if (!socket.active) setTimeout(() => socket.connect(), 5000);
    });
    socket.on("wall:snapshot", (snapshot) => setFeed((f) => ({ ...f, snapshot, ...heard(snapshot.at) })));
    socket.on("wall:heartbeat", (at) => setFeed((f) => ({ ...f, ...heard(at) })));
    return () => void socket.close();
  }, [dashboardKey]);
  return feed;
}

export function isStale(feed: WallFeed, now: number): boolean {
  return !feed.connected || feed.lastHeardAt === null || now - feed.lastHeardAt > STALE_AFTER_MS;
}
