/**
 * What changes every second and is not worth a database write: the CPU usage of running VMs,
 * as their agents' event streams report it (`metrics` messages). Kept in memory only; a VM
 * that is not running has none.
 */
export interface VmMetricsChange {
  vmId: string;
  cpuUsagePercent: number | null;
}

export class VmMetricsStore {
  private readonly cpu = new Map<string, number>();

  cpuUsage(hostId: string, vmId: string): number | null {
    return this.cpu.get(`${hostId}/${vmId}`) ?? null;
  }

  /** One VM's figure as read with the VM; true when it changed. */
  set(hostId: string, vmId: string, cpuUsagePercent: number | null | undefined): boolean {
    const key = `${hostId}/${vmId}`;
    const before = this.cpu.get(key) ?? null;
    if (cpuUsagePercent === null || cpuUsagePercent === undefined) this.cpu.delete(key);
    else this.cpu.set(key, cpuUsagePercent);
    return before !== (cpuUsagePercent ?? null);
  }

  /** A host's snapshot of its running VMs: every VM it does not list has no figure. */
  replaceHost(hostId: string, running: { id: string; cpuUsagePercent: number }[]): VmMetricsChange[] {
    const changes: VmMetricsChange[] = [];
    const listed = new Set(running.map((v) => v.id));
    for (const key of this.cpu.keys()) {
      const [h, vmId] = key.split("/") as [string, string];
      if (h === hostId && !listed.has(vmId)) {
        this.cpu.delete(key);
        changes.push({ vmId, cpuUsagePercent: null });
      }
    }
    for (const v of running) if (this.set(hostId, v.id, v.cpuUsagePercent)) changes.push({ vmId: v.id, cpuUsagePercent: v.cpuUsagePercent });
    return changes;
  }

  forgetHost(hostId: string): void {
    for (const key of this.cpu.keys()) if (key.startsWith(`${hostId}/`)) this.cpu.delete(key);
  }
}
