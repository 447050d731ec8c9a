/**
 * The VM's Replication submenu, as Hyper-V Manager shows it: which items appear depends on the
 * VM's replication mode and state (../shared/reference/hyperv-replica.md, "Operations").
 * Each item opens a dialog; the dialogs are rendered by components/dialogs/replication (the
 * management dialogs) and components/dialogs/failover (failovers and reverse replication).
 */
import type { Vm } from "@/components/lib/trpc";
import { mayOperate, mayAdminister, type Role } from "@/components/lib/vm-actions";
import type { ActionItem } from "./actions-pane";

export type ReplicationDialogKind =
  // components/dialogs/replication
  | "enable"
  | "start-initial"
  | "test-connection"
  | "settings"
  | "pause"
  | "resume"
  | "resynchronize"
  | "import-initial"
  | "health"
  | "remove"
  // components/dialogs/failover
  | "planned-failover"
  | "test-failover"
  | "stop-test-failover"
  | "failover"
  | "cancel-failover"
  | "complete-failover"
  | "reverse";

export interface ReplicationDialogRequest {
  kind: ReplicationDialogKind;
  vm: Vm;
}

const FAILOVER_STATES = new Set(["Failed over (waiting for completion)", "Failover complete"]);

/** The submenu's items for one VM; an empty list when the VM offers none (a test VM). */
export function replicationItems(vm: Vm, role: Role | undefined, open: (kind: ReplicationDialogKind) => void): ActionItem[] {
  const operate = mayOperate(role);
  const admin = mayAdminister(role);
  const item = (kind: ReplicationDialogKind, label: string, enabled: boolean, allowed = operate): ActionItem => ({
    label,
    testId: `replication-${kind}`,
    disabled: !allowed || !enabled,
    run: () => open(kind),
  });
  if (vm.testOf) return [];
  const r = vm.replication;
  if (!r) return [item("enable", "Enable Replication...", !vm.isReplica, admin)];

  const state = r.state;
  const failingOver = FAILOVER_STATES.has(state);
  const common = [
    state === "Suspended" ? item("resume", "Resume Replication", true) : item("pause", "Pause Replication", !failingOver && state !== "Prepared for planned failover"),
    item("health", "View Replication Health...", true, !!role),
    item("remove", "Remove Replication...", true, admin),
  ];
  if (r.mode === "Primary") {
    const initialPending = state === "Ready for initial replication";
    return [
      // Offered while the VM runs too, as in Hyper-V: the dialog's checks say it must be turned off.
      item("planned-failover", "Planned Failover...", state === "Replicating" || state === "Prepared for planned failover"),
      ...(initialPending && !r.awaitingImport ? [item("start-initial", "Start Replication...", true)] : []),
      // The agent resynchronizes (now or at a time) only from Resynchronization required.
      item("resynchronize", "Resynchronize...", state === "Resynchronization required"),
      item("settings", "Replication Settings...", !failingOver, admin),
      item("test-connection", "Test Replication Connection...", !failingOver),
      ...common,
    ];
  }
  const waitingForCompletion = state === "Failed over (waiting for completion)";
  return [
    item("failover", "Failover...", !failingOver && !r.testFailover && !r.awaitingImport && state !== "Ready for initial replication" && state !== "Waiting for initial replication"),
    r.testFailover ? item("stop-test-failover", "Stop Test Failover", true) : item("test-failover", "Test Failover...", !failingOver && !r.awaitingImport && state !== "Waiting for initial replication"),
    ...(waitingForCompletion ? [item("complete-failover", "Complete Failover...", !r.failover?.completing), item("cancel-failover", "Cancel Failover...", !r.failover?.completing)] : []),
    ...(state === "Failover complete" ? [item("reverse", "Reverse Replication...", true)] : []),
    ...(r.awaitingImport ? [item("import-initial", "Import Initial Replica...", true, admin)] : []),
    ...common,
  ];
}
