/** Opening a VM's screen (Connect...) and naming a host's hypervisor, for the manager. */
import type { Host, Vm } from "@/components/lib/trpc";

export function vmConsoleUrl(vm: Pick<Vm, "hostId" | "vmId">): string {
  return `/vm-console?${new URLSearchParams({ hostId: vm.hostId, vmId: vm.vmId })}`;
}

/** One window per VM, as Virtual Machine Connection: a second Connect... brings it forward. */
export function openVmConsole(vm: Pick<Vm, "hostId" | "vmId">): void {
  window.open(vmConsoleUrl(vm), `vm-console-${vm.vmId}`, "popup,width=1060,height=860")?.focus();
}

export function platformLabel(host: Pick<Host, "hypervisor" | "accelerator">): string {
  if (host.hypervisor === "qemu") return host.accelerator === "kvm" ? "Hypervisor: QEMU with KVM" : "Hypervisor: QEMU with TCG (emulation, no KVM)";
  if (host.hypervisor === "lab") return "Hypervisor: lab (simulated VMs, no screen)";
  return `Hypervisor: ${host.hypervisor ?? "unknown"}`;
}
