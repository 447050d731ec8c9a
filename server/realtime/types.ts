/** socket.io event maps shared by the console server and the browser. */
import type { EventView, HostView } from "../fleet/views.js";
import type { VmMetricsChange } from "../fleet/metrics.js";
import type { VmView } from "../fleet/vm-model.js";
import type { JobView } from "../jobs/types.js";
import type { WallSnapshot } from "../fleet/wall-model.js";

export interface ServerToClientEvents {
  "host:update": (host: HostView) => void;
  "host:remove": (hostId: string) => void;
  "vm:update": (vm: VmView) => void;
  "vm:remove": (ref: { hostId: string; vmId: string }) => void;
  "events:new": (events: EventView[]) => void;
  /** A console job changed (every signed-in browser: the Jobs pane and the VMs' status). */
  "job:update": (job: JobView) => void;
  /** CPU usage of running VMs, every couple of seconds (null: no longer running). */
  "vm:metrics": (m: { hostId: string; changes: VmMetricsChange[] }) => void;
  /** The wall dashboard: the whole picture, on every change. */
  "wall:snapshot": (snapshot: WallSnapshot) => void;
  /** The wall dashboard: the console is alive (server time), every few seconds. */
  "wall:heartbeat": (at: string) => void;
}

export interface ClientToServerEvents {
  /** Join the host's room (its VMs and events); leave the previous ones with unwatch. */
  "host:watch": (hostId: string) => void;
  "host:unwatch": (hostId: string) => void;
  "vm:watch": (vmId: string) => void;
  "vm:unwatch": (vmId: string) => void;
  /** Every host's VMs (the Hyper-V Manager node). */
  "fleet:watch": () => void;
  "fleet:unwatch": () => void;
  /** The wall dashboard (a signed-in browser; a dashboard link joins it by itself). */
  "wall:watch": () => void;
}

/** What the server keeps per socket: the dashboard link it came in with, if any. */
export interface SocketData {
  dashboardLinkId: string | null;
}

export const rooms = {
  /** Every signed-in browser: host status for the tree. */
  dashboard: "dashboard",
  /** Browsers showing every host's VMs. */
  allVms: "vms",
  /** Wall dashboards (signed-in or opened with a read-only link). */
  wall: "wall",
  host: (hostId: string) => `host:${hostId}`,
  vm: (vmId: string) => `vm:${vmId}`,
};
