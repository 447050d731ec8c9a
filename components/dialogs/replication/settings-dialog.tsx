"use client";

/**
 * Replication Settings for a primary VM: frequency, recovery points, compression, bandwidth
 * limit and resynchronization policy, as stored by the agent; checked by the server on OK,
 * each message beside its field.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC, type RouterOutputs, type Vm } from "@/components/lib/trpc";
import { FREQUENCY_CHOICES } from "./enable-wizard-pages";
import { wizardInput } from "./enable-wizard-fields";

type Stored = RouterOutputs["replication"]["settings"];
interface Draft {
  frequencySeconds: number;
  compression: boolean;
  limit: string;
  additional: boolean;
  recoveryHistory: string;
  appConsistent: boolean;
  appHours: string;
  resync: "manual" | "automatic" | "window";
  start: string;
  end: string;
}

function draftOf(s: Stored): Draft {
  return {
    frequencySeconds: s.frequencySeconds,
    compression: s.compression,
    limit: s.bandwidthLimitMiBps === null ? "" : String(s.bandwidthLimitMiBps),
    additional: s.recoveryHistory > 0,
    recoveryHistory: String(s.recoveryHistory || 4),
    appConsistent: s.appConsistentFrequencyHours !== null,
    appHours: String(s.appConsistentFrequencyHours ?? 4),
    resync: s.resyncPolicy.mode,
    start: s.resyncPolicy.mode === "window" ? s.resyncPolicy.start : "22:00",
    end: s.resyncPolicy.mode === "window" ? s.resyncPolicy.end : "05:00",
  };
}

const num = (s: string) => (s.trim() === "" ? Number.NaN : Number(s));

function Msg({ errors, field }: { errors: Record<string, string[]>; field: string }) {
  return errors[field] ? <div className="mt-[2px] text-crit" data-testid={`error-${field}`}>{errors[field].join(" ")}</div> : null;
}

export function ReplicationSettingsDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const stored = useQuery(trpc.replication.settings.queryOptions({ hostId: vm.hostId, vmId: vm.vmId }, { staleTime: 0 }));
  const [edit, setEdit] = useState<Draft | null>(null);
  const d = edit ?? (stored.data ? draftOf(stored.data) : null);
  const save = useMutation(trpc.replication.updateSettings.mutationOptions({ onSuccess: onClose }));
  const errors = fieldErrors(save.error);
  const set = (patch: Partial<Draft>) => d && setEdit({ ...d, ...patch });
  const ok = () =>
    d &&
    save.mutate({
      hostId: vm.hostId,
      vmId: vm.vmId,
      frequencySeconds: d.frequencySeconds,
      compression: d.compression,
      bandwidthLimitMiBps: d.limit.trim() === "" ? null : num(d.limit),
      recoveryHistory: d.additional ? num(d.recoveryHistory) : 0,
      appConsistentFrequencyHours: d.additional && d.appConsistent ? num(d.appHours) : null,
      resyncPolicy: d.resync === "window" ? { mode: "window", start: d.start, end: d.end } : { mode: d.resync },
    });
  return (
    <Dialog
      title={`Replication Settings for ${vm.name}`}
      onClose={onClose}
      testId="replication-settings-dialog"
      className="w-[620px]"
      footer={
        <>
          <Button variant="primary" data-testid="dialog-ok" disabled={!d || save.isPending} onClick={ok}>
            {save.isPending ? "Applying..." : "OK"}
          </Button>
          <Button data-testid="dialog-cancel" onClick={onClose}>
            Cancel
          </Button>
        </>
      }
    >
      {!d ? (
        <div className="min-h-[200px] text-muted">{stored.error ? errorMessage(stored.error) : "Loading..."}</div>
      ) : (
        <div className="space-y-3">
          <p className="text-muted">
            Replicating to {stored.data?.replicaServer} on port {stored.data?.replicaPort} ({stored.data?.authMode === "https" ? "HTTPS" : "HTTP"}); the Replica server learns new settings with the next cycle.
          </p>
          <fieldset className="border border-border-light p-2">
            <legend className="px-1">Replication Frequency and Compression</legend>
            <div className="flex items-center gap-2">
              Send changes every:
              <select data-testid="settings-frequency" className={cn(wizardInput, "w-[240px]")} value={d.frequencySeconds} onChange={(e) => set({ frequencySeconds: Number(e.target.value) })}>
                {FREQUENCY_CHOICES.map((f) => (
                  <option key={f.seconds} value={f.seconds}>
                    {f.label}
                  </option>
                ))}
              </select>
            </div>
            <Msg errors={errors} field="frequencySeconds" />
            <label className="mt-2 flex items-center gap-2">
              <input type="checkbox" data-testid="settings-compression" checked={d.compression} onChange={(e) => set({ compression: e.target.checked })} />
              Compress the data that is transmitted over the network
            </label>
            <div className="mt-1 flex items-center gap-2">
              Bandwidth limit:
              <input data-testid="settings-bandwidth" className={cn(wizardInput, "w-[90px]")} placeholder="none" value={d.limit} onChange={(e) => set({ limit: e.target.value })} aria-invalid={!!errors.bandwidthLimitMiBps} />
              MB/s (empty: no limit)
            </div>
            <Msg errors={errors} field="bandwidthLimitMiBps" />
          </fieldset>
          <fieldset className="border border-border-light p-2">
            <legend className="px-1">Recovery Points</legend>
            <label className="flex items-center gap-2">
              <input type="radio" checked={!d.additional} data-testid="settings-points-no" onChange={() => set({ additional: false })} />
              Maintain only the latest recovery point
            </label>
            <label className="flex items-center gap-2">
              <input type="radio" checked={d.additional} data-testid="settings-points-yes" onChange={() => set({ additional: true })} />
              Create additional hourly recovery points, covering
              <input data-testid="settings-history" disabled={!d.additional} className={cn(wizardInput, "w-[60px]")} value={d.recoveryHistory} onChange={(e) => set({ recoveryHistory: e.target.value })} aria-invalid={!!errors.recoveryHistory} />
              hours
            </label>
            <Msg errors={errors} field="recoveryHistory" />
            <label className="mt-1 ml-6 flex items-center gap-2">
              <input type="checkbox" disabled={!d.additional} checked={d.appConsistent} data-testid="settings-app-consistent" onChange={(e) => set({ appConsistent: e.target.checked })} />
              Application-consistent every
              <input data-testid="settings-app-hours" disabled={!d.additional || !d.appConsistent} className={cn(wizardInput, "w-[60px]")} value={d.appHours} onChange={(e) => set({ appHours: e.target.value })} aria-invalid={!!errors.appConsistentFrequencyHours} />
              hours
            </label>
            <div className="ml-6">
              <Msg errors={errors} field="appConsistentFrequencyHours" />
            </div>
          </fieldset>
          <fieldset className="border border-border-light p-2">
            <legend className="px-1">Resynchronization</legend>
            <p className="mb-1 text-muted">When resynchronization is required:</p>
            {(
              [
                ["manual", "Manually (Resynchronize... starts it)"],
                ["automatic", "Automatically"],
                ["window", "Automatically, during"],
              ] as const
            ).map(([mode, label]) => (
              <label key={mode} className="flex items-center gap-2">
                <input type="radio" checked={d.resync === mode} data-testid={`settings-resync-${mode}`} onChange={() => set({ resync: mode })} />
                {label}
                {mode === "window" ? (
                  <>
                    <input data-testid="settings-resync-start" disabled={d.resync !== "window"} className={cn(wizardInput, "w-[60px]")} value={d.start} onChange={(e) => set({ start: e.target.value })} aria-invalid={!!errors["resyncPolicy.start"]} />
                    to
                    <input data-testid="settings-resync-end" disabled={d.resync !== "window"} className={cn(wizardInput, "w-[60px]")} value={d.end} onChange={(e) => set({ end: e.target.value })} aria-invalid={!!errors["resyncPolicy.end"]} />
                    (HH:MM, local time)
                  </>
                ) : null}
              </label>
            ))}
            <Msg errors={errors} field="resyncPolicy.start" />
            <Msg errors={errors} field="resyncPolicy.end" />
          </fieldset>
          {save.error && !Object.keys(errors).length ? (
            <div className="text-crit" role="alert" data-testid="dialog-error">
              {errorMessage(save.error)}
            </div>
          ) : null}
        </div>
      )}
    </Dialog>
  );
}
