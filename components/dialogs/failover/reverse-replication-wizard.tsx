"use client";

/**
 * Reverse Replication wizard, after a completed failover: the Enable Replication wizard's pages
 * (components/dialogs/replication), prefilled from the original relationship's settings, with the
 * old primary as the Replica server. Finish starts a console job (reverse, apply the settings,
 * resynchronize) whose progress the completion page shows live.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { errorMessage } from "@/components/lib/errors";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { JobSteps } from "@/components/manager/job-steps";
import { wizardDefaults, type WizardPageName } from "@/components/dialogs/replication/enable-wizard-model";
import { ReplicationWizard } from "@/components/dialogs/replication/replication-wizard";

const PAGES: readonly WizardPageName[] = ["Before You Begin", "Specify Replica Server", "Specify Connection Parameters", "Configure Replication Frequency", "Configure Additional Recovery Points", "Summary"];

function JobProgress({ jobId }: { jobId: string }) {
  const trpc = useTRPC();
  const job = useQuery({ ...trpc.jobs.get.queryOptions({ id: jobId }), refetchInterval: (q) => (q.state.data?.finishedAt ? false : 1000) });
  if (!job.data) return <div className="text-muted">Starting...</div>;
  return (
    <div data-testid="reverse-progress">
      <div className="mb-1 font-semibold">{job.data.status === "succeeded" ? "Reverse replication is set up." : job.data.status === "failed" ? "Reverse replication failed." : "Reversing replication..."}</div>
      <JobSteps job={job.data} />
    </div>
  );
}

export function ReverseReplicationWizard({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const ref = { hostId: vm.hostId, vmId: vm.vmId };
  const defaults = useQuery({ ...trpc.failover.reverseDefaults.queryOptions(ref), gcTime: 0 });
  const reverse = useMutation(trpc.failover.reverse.mutationOptions());
  const here = vm.replication?.replicaServer ?? "";
  const d = defaults.data;
  if (!d) {
    return (
      <Dialog title={`Reverse Replication Wizard for ${vm.name}`} onClose={onClose} testId="replication-wizard" footer={<Button onClick={onClose}>Cancel</Button>}>
        <div className="text-muted">{defaults.error ? errorMessage(defaults.error) : "Reading the original replication settings..."}</div>
      </Dialog>
    );
  }
  return (
    <ReplicationWizard
      title={`Reverse Replication Wizard for ${vm.name}`}
      vm={vm}
      hostName={here}
      pages={PAGES}
      defaults={wizardDefaults(
        vm.disks.map((x) => x.index),
        {
          replicaServer: d.replicaServer,
          ...(d.replicaPort ? { replicaPort: d.replicaPort } : {}),
          authMode: d.authMode,
          compression: d.compression,
          frequencySeconds: d.frequencySeconds,
          additionalPoints: d.recoveryHistory > 0,
          ...(d.recoveryHistory > 0 ? { recoveryHistory: d.recoveryHistory } : {}),
          appConsistent: d.appConsistentFrequencyHours !== null,
          ...(d.appConsistentFrequencyHours ? { appConsistentFrequencyHours: d.appConsistentFrequencyHours } : {}),
          limitBandwidth: d.bandwidthLimitMiBps !== null,
          ...(d.bandwidthLimitMiBps ? { bandwidthLimitMiBps: d.bandwidthLimitMiBps } : {}),
        },
      )}
      text={{
        beforeYouBegin: (
          <div className="space-y-2" data-testid="reverse-before-you-begin">
            <p>
              &apos;{vm.name}&apos; has failed over to {here}. This wizard sets up replication in the other direction: {here} becomes the primary server and the former primary server, {d.replicaServer}, its Replica server.
            </p>
            <p>{d.replicaServer} must be running and connected to this console. Whatever it wrote after the failover point is given up: its virtual machine is turned off and compared block by block; only the blocks that differ are sent, never a full copy.</p>
            <p>The settings are prefilled from the original replication. Click Next to continue.</p>
          </div>
        ),
        summaryIntro: "You are about to reverse the replication with these settings. Click Finish to start; the progress is shown here and in the Jobs pane.",
        initialReplication: `Resynchronization: ${d.replicaServer} is compared block by block; only the blocks that differ are sent`,
      }}
      submit={(v) =>
        reverse.mutateAsync({
          ...ref,
          replicaServer: v.replicaServer,
          replicaPort: v.replicaPort,
          authMode: v.authMode,
          compression: v.compression,
          frequencySeconds: v.frequencySeconds,
          recoveryHistory: v.additionalPoints ? v.recoveryHistory : 0,
          appConsistentFrequencyHours: v.additionalPoints && v.appConsistent ? v.appConsistentFrequencyHours : null,
          bandwidthLimitMiBps: v.limitBandwidth ? v.bandwidthLimitMiBps : null,
        })
      }
      progress={() => `Starting reverse replication to ${d.replicaServer}...`}
      failedTitle="Reverse replication could not be started"
      done={() => ({ title: "Reverse replication started", message: reverse.data ? <JobProgress jobId={reverse.data.id} /> : null })}
      onClose={onClose}
    />
  );
}
