"use client";

/**
 * The failover dialogs opened from the VM's Replication submenu: Planned Failover, Test
 * Failover / Stop Test Failover, Failover (unplanned), Cancel and Complete Failover, Reverse
 * Replication.
 */
import type { ReplicationDialogRequest } from "@/components/manager/replication-items";
import { CancelFailoverDialog, CompleteFailoverDialog, StopTestFailoverDialog } from "./confirm-failover-dialogs";
import { FailoverDialog } from "./failover-dialog";
import { PlannedFailoverDialog } from "./planned-failover-dialog";
import { ReverseReplicationWizard } from "./reverse-replication-wizard";
import { TestFailoverDialog } from "./test-failover-dialog";

export function FailoverDialogs({ request, onClose }: { request: ReplicationDialogRequest; onClose(): void }) {
  const { vm } = request;
  switch (request.kind) {
    case "planned-failover":
      return <PlannedFailoverDialog vm={vm} onClose={onClose} />;
    case "test-failover":
      return <TestFailoverDialog vm={vm} onClose={onClose} />;
    case "stop-test-failover":
      return <StopTestFailoverDialog vm={vm} onClose={onClose} />;
    case "failover":
      return <FailoverDialog vm={vm} onClose={onClose} />;
    case "cancel-failover":
      return <CancelFailoverDialog vm={vm} onClose={onClose} />;
    case "complete-failover":
      return <CompleteFailoverDialog vm={vm} onClose={onClose} />;
    case "reverse":
      return <ReverseReplicationWizard vm={vm} onClose={onClose} />;
    default:
      return null;
  }
}
