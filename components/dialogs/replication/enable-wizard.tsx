"use client";

/**
 * Enable Replication wizard (Hyper-V's pages and defaults): the shared replication wizard with
 * Finish enabling replication on the VM's server.
 */
import { useMutation } from "@tanstack/react-query";
import { formatDateTime } from "@/components/lib/format";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { localToIso, toEnableInput, wizardDefaults, type WizardValues } from "./enable-wizard-model";
import { ReplicationWizard } from "./replication-wizard";

function nextSteps(v: WizardValues): string {
  if (v.initialMethod === "external-media") return `The initial copy was exported to ${v.folder}. Take it to the Replica server and import it there (Replication > Import Initial Replica... on the Replica virtual machine); changes made meanwhile follow by themselves.`;
  if (v.initialMethod === "existing-copy") return "The existing virtual machine on the Replica server is being compared with this one block by block; only the blocks that differ are sent.";
  if (v.startLater) return `The initial copy will be sent over the network on ${formatDateTime(localToIso(v.startAt))}.`;
  return "The initial copy is being sent over the network. Its progress appears in the virtual machine's Replication State and in the events.";
}

export function EnableReplicationWizard({ vm, hostName, onClose }: { vm: Vm; hostName: string; onClose(): void }) {
  const trpc = useTRPC();
  const enable = useMutation(trpc.replication.enable.mutationOptions());
  return (
    <ReplicationWizard
      title={`Enable Replication for ${vm.name}`}
      vm={vm}
      hostName={hostName}
      defaults={wizardDefaults(vm.disks.map((d) => d.index))}
      submit={(v) => enable.mutateAsync(toEnableInput(vm.hostId, vm.vmId, v))}
      progress={(v) => (v.initialMethod === "external-media" ? `Enabling replication and exporting the initial copy to ${v.folder}; this takes as long as copying the disks...` : `Enabling replication to ${v.replicaServer}...`)}
      failedTitle="Replication could not be enabled"
      done={(v) => ({
        title: "Replication enabled successfully",
        message: (
          <div className="space-y-2">
            <p>
              Replication of &apos;{vm.name}&apos; to {v.replicaServer.trim().toLowerCase()} was enabled successfully.
            </p>
            <p>{nextSteps(v)}</p>
            <p className="text-muted">Change these settings later with Replication &gt; Replication Settings...; watch the replication with View Replication Health....</p>
          </div>
        ),
      })}
      onClose={onClose}
    />
  );
}
