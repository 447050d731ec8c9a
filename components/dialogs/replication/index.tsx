"use client";

/**
 * The replication management dialogs opened from the VM's Replication submenu: Enable
 * Replication wizard, Start Replication, Replication Settings, Pause/Resume, Resynchronize,
 * Import Initial Replica, View Replication Health, Remove Replication.
 */
import type { ReplicationDialogRequest } from "@/components/manager/replication-items";

export function ReplicationDialogs({ request, onClose }: { request: ReplicationDialogRequest; onClose(): void }) {
  void onClose;
  switch (request.kind) {
    default:
      return null;
  }
}
