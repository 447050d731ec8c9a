"use client";

/**
 * The replication management dialogs opened from the VM's Replication submenu: Enable
 * Replication wizard, Start Replication, Test Replication Connection, Replication Settings, Pause/Resume, Resynchronize,
 * Import Initial Replica, View Replication Health, Remove Replication.
 */
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/components/lib/trpc";
import type { ReplicationDialogRequest } from "@/components/manager/replication-items";
import { EnableReplicationWizard } from "./enable-wizard";
import { ReplicationSettingsDialog } from "./settings-dialog";
import { ImportInitialReplicaDialog, PauseResume, RemoveReplicationDialog, ResynchronizeDialog } from "./simple-dialogs";
import { StartReplicationDialog } from "./start-replication-dialog";
import { TestConnectionDialog } from "./test-connection-dialog";

export function ReplicationDialogs({ request, onClose }: { request: ReplicationDialogRequest; onClose(): void }) {
  const trpc = useTRPC();
  const hosts = useQuery(trpc.hosts.list.queryOptions());
  const { vm } = request;
  switch (request.kind) {
    case "enable":
      return <EnableReplicationWizard vm={vm} hostName={hosts.data?.find((h) => h.id === vm.hostId)?.name ?? ""} onClose={onClose} />;
    case "start-initial":
      return <StartReplicationDialog vm={vm} onClose={onClose} />;
    case "test-connection":
      return <TestConnectionDialog vm={vm} onClose={onClose} />;
    case "settings":
      return <ReplicationSettingsDialog vm={vm} onClose={onClose} />;
    case "pause":
    case "resume":
      return <PauseResume vm={vm} action={request.kind} onClose={onClose} />;
    case "resynchronize":
      return <ResynchronizeDialog vm={vm} onClose={onClose} />;
    case "import-initial":
      return <ImportInitialReplicaDialog vm={vm} onClose={onClose} />;
    case "remove":
      return <RemoveReplicationDialog vm={vm} onClose={onClose} />;
    default:
      return null;
  }
}
