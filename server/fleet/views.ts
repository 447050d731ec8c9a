/** Objects the browser receives for hosts and events (VMs: vm-model.ts). */
export type HostStatus = "connecting" | "connected" | "unreachable";

export interface HostView {
  id: string;
  name: string;
  address: string;
  status: HostStatus;
  statusReason: string | null;
  agentVersion: string | null;
  /** lab or qemu, and for QEMU kvm or tcg; null until the host was reached. */
  hypervisor: string | null;
  accelerator: string | null;
  lastSeenAt: string | null;
}

export interface EventView {
  id: number;
  hostId: string;
  agentEventId: number;
  ts: string;
  severity: "info" | "warning" | "error";
  kind: string;
  vmId: string | null;
  message: string;
}

export function hostView(h: { id: string; name: string; address: string; status: string; statusReason: string | null; agentVersion: string | null; hypervisor: string | null; accelerator: string | null; lastSeenAt: Date | null }): HostView {
  return {
    id: h.id,
    name: h.name,
    address: h.address,
    status: h.status as HostStatus,
    statusReason: h.statusReason,
    agentVersion: h.agentVersion,
    hypervisor: h.hypervisor,
    accelerator: h.accelerator,
    lastSeenAt: h.lastSeenAt?.toISOString() ?? null,
  };
}

export function eventView(e: { id: number; hostId: string; agentEventId: number; ts: Date; severity: string; kind: string; vmId: string | null; message: string }): EventView {
  return { id: e.id, hostId: e.hostId, agentEventId: e.agentEventId, ts: e.ts.toISOString(), severity: e.severity as EventView["severity"], kind: e.kind, vmId: e.vmId, message: e.message };
}

/** What the fleet tells the browsers about (implemented by server/realtime). */
export interface FleetNotifier {
  hostChanged(host: HostView): void;
  hostRemoved(hostId: string): void;
  vmChanged(vm: import("./vm-model.js").VmView): void;
  vmRemoved(hostId: string, vmId: string): void;
  /** CPU usage of a host's VMs changed (null: the VM stopped). */
  vmMetrics(hostId: string, changes: import("./metrics.js").VmMetricsChange[]): void;
  events(hostId: string, events: EventView[]): void;
}
