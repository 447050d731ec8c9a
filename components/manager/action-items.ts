/** The Actions pane's and context menus' items for a server and for a VM, enabled by state and role. */
import type { ConfirmRequest } from "@/components/dialogs/confirm-dialog";
import type { Host, Vm } from "@/components/lib/trpc";
import { deleteAllowed, mayAdminister, mayOperate, POWER_ACTIONS, powerAllowed, type PowerAction, type Role } from "@/components/lib/vm-actions";
import type { ActionItem } from "./actions-pane";
import { replicationItems, type ReplicationDialogKind } from "./replication-items";

export function hostActionItems(o: { host: Host | undefined; role: Role | undefined; connect(): void; newVm(h: Host): void; settings(h: Host): void; refresh(h: Host): void; remove(h: Host): void }): ActionItem[] {
  const admin = mayAdminister(o.role);
  const h = o.host;
  return [
    { label: "Connect to Server...", testId: "connect-server", run: o.connect, disabled: !admin },
    { label: "New > Virtual Machine...", testId: "new-vm", run: h && (() => o.newVm(h)), disabled: !admin || h?.status !== "connected" },
    { label: "Hyper-V Settings...", testId: "hyperv-settings", run: h && (() => o.settings(h)), disabled: !admin || h?.status !== "connected" },
    { label: "Refresh", testId: "refresh", run: h && (() => o.refresh(h)), disabled: !o.role },
    { label: "Remove Server", testId: "remove-server", run: h && (() => o.remove(h)), disabled: !admin },
  ];
}

export function vmActionItems(o: {
  vm: Vm;
  role: Role | undefined;
  pending: string | undefined;
  ops: { runPower(vm: Vm, a: PowerAction): void; remove(vm: Vm): void };
  confirm(r: ConfirmRequest): void;
  settings(vm: Vm): void;
  replication(vm: Vm, kind: ReplicationDialogKind): void;
  /** The VM's host runs QEMU, whose VMs have a screen; lab VMs have none. */
  hasScreen: boolean;
  connect(vm: Vm): void;
}): ActionItem[] {
  const { vm } = o;
  const operate = mayOperate(o.role) && !o.pending;
  const power: ActionItem[] = POWER_ACTIONS.map((spec) => ({
    label: spec.label,
    testId: spec.action,
    disabled: !operate || !powerAllowed(vm, spec.action),
    run: spec.confirm
      ? () => o.confirm({ title: spec.label.replace("...", ""), message: `${spec.confirm} '${vm.name}'?`, confirmLabel: spec.label.replace("...", ""), onConfirm: () => o.ops.runPower(vm, spec.action) })
      : () => o.ops.runPower(vm, spec.action),
  }));
  const running = vm.state === "Running" || vm.state === "Paused";
  return [
    { label: "Connect...", testId: "connect", run: () => o.connect(vm), disabled: !mayOperate(o.role) || !o.hasScreen || !running },
    ...power,
    { label: "Settings...", testId: "settings", run: () => o.settings(vm), disabled: !o.role },
    {
      label: "Delete...",
      testId: "delete",
      disabled: !mayAdminister(o.role) || !!o.pending || !deleteAllowed(vm),
      run: () =>
        o.confirm({ title: "Delete Selected Virtual Machines", message: `Are you sure you want to delete '${vm.name}'? Its virtual hard disks are deleted too.`, confirmLabel: "Delete", onConfirm: () => o.ops.remove(vm) }),
    },
    { label: "Replication", testId: "replication", children: replicationItems(vm, o.role, (kind) => o.replication(vm, kind)) },
  ];
}
