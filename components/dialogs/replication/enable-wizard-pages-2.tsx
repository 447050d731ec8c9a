"use client";

/**
 * The Enable Replication wizard's later pages: Configure Additional Recovery Points (with the
 * storage estimate), Choose Initial Replication Method (with the initial copy's size), Summary.
 */
import { useQuery } from "@tanstack/react-query";
import { useFormContext } from "react-hook-form";
import { cn } from "@/components/lib/cn";
import { errorMessage } from "@/components/lib/errors";
import { formatBytes, formatDateTime } from "@/components/lib/format";
import { useTRPC } from "@/components/lib/trpc";
import { localToIso, type WizardValues } from "./enable-wizard-model";
import { BoolRadios, Check, FieldMessage, Intro, Radio, type WizardContext, wizardInput } from "./enable-wizard-fields";
import { FREQUENCY_CHOICES } from "./enable-wizard-pages";

function useEstimate(ctx: WizardContext, recoveryHistory: number) {
  const trpc = useTRPC();
  const disks = useFormContext<WizardValues>().watch("disks");
  const valid = Number.isInteger(recoveryHistory) && recoveryHistory >= 0 && recoveryHistory <= 24;
  return useQuery({ ...trpc.replication.estimate.queryOptions({ hostId: ctx.vm.hostId, vmId: ctx.vm.vmId, disks: disks.length ? disks : undefined, recoveryHistory: valid ? recoveryHistory : 0 }), staleTime: 30_000 });
}

export function RecoveryPointsPage({ ctx }: { ctx: WizardContext }) {
  const { register, watch, formState } = useFormContext<WizardValues>();
  const [on, hours, vss] = watch(["additionalPoints", "recoveryHistory", "appConsistent"]);
  const estimate = useEstimate(ctx, on ? hours : 0);
  return (
    <div>
      <Intro>Choose whether to keep only the latest recovery point on the Replica server, or additional hourly ones to fail over to an earlier point in time.</Intro>
      <BoolRadios name="additionalPoints" testId="wizard-points" no="Maintain only the latest recovery point" yes="Create additional hourly recovery points" />
      <fieldset className="ml-6 border border-border-light p-2" disabled={!on}>
        <div className="flex items-center gap-2">
          <label htmlFor="recoveryHistory">Coverage provided by additional recovery points (in hours):</label>
          <input id="recoveryHistory" type="number" data-testid="wizard-history" className={cn(wizardInput, "w-[70px]")} aria-invalid={!!formState.errors.recoveryHistory} {...register("recoveryHistory", { valueAsNumber: true })} />
        </div>
        <FieldMessage name="recoveryHistory" />
        <div className="mt-2">
          <Check name="appConsistent" testId="wizard-app-consistent" label="Make a point application-consistent (the guest quiesces its writers) every:" />
          <div className="ml-6 flex items-center gap-2">
            <input type="number" data-testid="wizard-app-hours" disabled={!vss} className={cn(wizardInput, "w-[70px]")} aria-invalid={!!formState.errors.appConsistentFrequencyHours} {...register("appConsistentFrequencyHours", { valueAsNumber: true })} />
            hours
          </div>
          <div className="ml-6">
            <FieldMessage name="appConsistentFrequencyHours" />
          </div>
        </div>
      </fieldset>
      <div className="mt-3 border border-border-light bg-pane p-2" data-testid="wizard-storage-estimate">
        {!on ? (
          "Only the latest recovery point is kept: no additional storage is needed on the Replica server."
        ) : estimate.data ? (
          <>
            Additional storage needed on the Replica server: about <b>{formatBytes(estimate.data.history.totalBytes)}</b> ({formatBytes(estimate.data.history.perPointBytes)} per hourly point, from {estimate.data.history.basis}).
          </>
        ) : estimate.error ? (
          `The storage estimate is not available: ${errorMessage(estimate.error)}`
        ) : (
          "Estimating the storage needed..."
        )}
      </div>
    </div>
  );
}

export function InitialReplicationPage({ ctx }: { ctx: WizardContext }) {
  const { register, watch, formState } = useFormContext<WizardValues>();
  const [method, later] = watch(["initialMethod", "startLater"]);
  const estimate = useEstimate(ctx, 0);
  return (
    <div>
      <Intro>Choose how the initial copy of the virtual hard disks reaches the Replica server, and when.</Intro>
      <p className="mb-2" data-testid="wizard-initial-size">
        Size of the initial copy: <b>{estimate.data ? formatBytes(estimate.data.initialCopyBytes) : "..."}</b> (blocks that hold only zeros are not sent)
      </p>
      <fieldset className="mb-2 border border-border-light p-2">
        <legend className="px-1">Initial Replication Method</legend>
        <Radio name="initialMethod" value="network" testId="wizard-initial-network" label="Send initial copy over the network" />
        <Radio name="initialMethod" value="external-media" testId="wizard-initial-media" label="Send initial copy using external media">
          {method === "external-media" ? (
            <>
              <label htmlFor="folder" className="mb-[2px] block">
                Export the initial copy to this folder on {ctx.hostName} (new or empty):
              </label>
              <input id="folder" data-testid="wizard-folder" className={wizardInput} placeholder="/media/usb/sql-01" aria-invalid={!!formState.errors.folder} {...register("folder")} />
              <FieldMessage name="folder" />
            </>
          ) : null}
        </Radio>
        <Radio name="initialMethod" value="existing-copy" testId="wizard-initial-existing" label="Use an existing virtual machine on the Replica server as the initial copy (only differing blocks are sent)" />
        <FieldMessage name="initialMethod" />
      </fieldset>
      <fieldset className="border border-border-light p-2" disabled={method !== "network"}>
        <legend className="px-1">Schedule Initial Replication</legend>
        <BoolRadios name="startLater" testId="wizard-start" no="Start replication immediately" yes="Start replication on (up to 7 days ahead):" />
        <div className="ml-6">
          <input type="datetime-local" data-testid="wizard-start-at" disabled={!later || method !== "network"} className={cn(wizardInput, "w-[220px]")} aria-invalid={!!formState.errors.startAt} {...register("startAt")} />
          <FieldMessage name="startAt" />
        </div>
      </fieldset>
    </div>
  );
}

export function SummaryPage({ ctx }: { ctx: WizardContext }) {
  const v = useFormContext<WizardValues>().watch();
  const frequency = FREQUENCY_CHOICES.find((f) => f.seconds === v.frequencySeconds)?.label ?? `${v.frequencySeconds} seconds`;
  const initial =
    v.initialMethod === "external-media"
      ? `Send using external media: export to ${v.folder}`
      : v.initialMethod === "existing-copy"
        ? "Use an existing virtual machine on the Replica server"
        : v.startLater
          ? `Send over the network on ${formatDateTime(localToIso(v.startAt))}`
          : "Send over the network, start immediately";
  const rows: [string, string][] = [
    ["Virtual machine", ctx.vm.name],
    ["Primary server", ctx.hostName],
    ["Replica server", v.replicaServer.trim().toLowerCase()],
    ["Port", String(v.replicaPort)],
    ["Authentication type", v.authMode === "https" ? "Certificate-based authentication (HTTPS)" : "HTTP with a shared token"],
    ["Compression", v.compression ? "Enabled" : "Disabled"],
    ["Bandwidth limit", v.limitBandwidth ? `${v.bandwidthLimitMiBps} MB/s` : "None"],
    ["Replicated VHDs", ctx.vm.disks.filter((d) => v.disks.includes(d.index)).map((d) => `disk${d.index}.raw (${formatBytes(d.sizeBytes)})`).join(", ")],
    ["Replication frequency", frequency],
    ["Recovery points", v.additionalPoints ? `Latest and hourly for ${v.recoveryHistory} hour${v.recoveryHistory === 1 ? "" : "s"}` : "Latest recovery point only"],
    ["Application-consistent points", v.additionalPoints && v.appConsistent ? (v.appConsistentFrequencyHours === 1 ? "Every hour" : `Every ${v.appConsistentFrequencyHours} hours`) : "None"],
    ["Initial replication", ctx.text?.initialReplication ?? initial],
  ];
  return (
    <div>
      <Intro>{ctx.text?.summaryIntro ?? "You are about to enable replication with these settings. Click Finish to enable it."}</Intro>
      <table className="w-full border-collapse" data-testid="wizard-summary">
        <tbody>
          {rows.map(([k, val]) => (
            <tr key={k} className="align-top">
              <td className="w-[200px] border border-border-light px-1 text-muted">{k}</td>
              <td className="border border-border-light px-1">{val}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
