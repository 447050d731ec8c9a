"use client";

/**
 * The failover dialogs opened from the VM's Replication submenu: Planned Failover, Test
 * Failover / Stop Test Failover, Failover (unplanned), Cancel and Complete Failover, Reverse
 * Replication.
 */
import type { ReplicationDialogRequest } from "@/components/manager/replication-items";

export function FailoverDialogs({ request, onClose }: { request: ReplicationDialogRequest; onClose(): void }) {
  void onClose;
  switch (request.kind) {
    default:
      return null;
  }
}
