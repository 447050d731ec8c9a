/**
 * The wall dashboard's live feed: the whole snapshot (counts and tiles) goes to the `wall` room
 * whenever a VM or host changes (at most every 200 ms), and a heartbeat every few seconds lets
 * the wall tell live data from stale. Sockets that came in with a dashboard link are
 * disconnected once the link is revoked.
 */
import type { Db } from "../console/db/client.js";
import { hostView } from "../fleet/views.js";
import { vmView } from "../fleet/vm-model.js";
import { wallSnapshot, type WallSnapshot } from "../fleet/wall-model.js";
import { rooms } from "./types.js";
import type { RealtimeServer } from "./socket.js";

const THROTTLE_MS = 200;
export const HEARTBEAT_MS = 3000;

export class WallFeed {
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly io: RealtimeServer,
    private readonly db: Db,
  ) {}

  start(): void {
    this.heartbeat = setInterval(() => void this.beat().catch((err) => console.error("console: wall heartbeat", err)), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.timer);
  }

  snapshot(): Promise<WallSnapshot> {
    return Promise.all([this.db.vm.findMany({ where: { replicationMode: { not: null } } }), this.db.host.findMany()]).then(([vms, hosts]) =>
      wallSnapshot(vms.map(vmView), hosts.map(hostView)),
    );
  }

  /** Something the wall shows may have changed: send a new snapshot now, or after the last one's throttle. */
  changed(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.lastSent = Date.now();
      if (this.io.sockets.adapter.rooms.get(rooms.wall)?.size) {
        void this.snapshot().then((s) => this.io.to(rooms.wall).emit("wall:snapshot", s), (err) => console.error("console: wall snapshot", err));
      }
    }, Math.max(0, this.lastSent + THROTTLE_MS - Date.now()));
  }

  private lastSent = 0;

  private async beat(): Promise<void> {
    const sockets = await this.io.in(rooms.wall).fetchSockets();
    if (sockets.length === 0) return;
    const linkIds = [...new Set(sockets.map((s) => s.data.dashboardLinkId).filter((id): id is string => !!id))];
    if (linkIds.length) {
      const revoked = new Set((await this.db.dashboardLink.findMany({ where: { id: { in: linkIds }, revokedAt: { not: null } }, select: { id: true } })).map((l) => l.id));
      for (const s of sockets) if (s.data.dashboardLinkId && revoked.has(s.data.dashboardLinkId)) s.disconnect(true);
    }
    this.io.to(rooms.wall).emit("wall:heartbeat", new Date().toISOString());
  }
}
