"use client";

/**
 * Hyper-V Settings > Replication Configuration: the host's Replica server settings, as in
 * Hyper-V (enable, authentication and ports, authorization and storage). Checked by the
 * server on OK; each message appears beside its field.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Dialog, inputClass } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC, type RouterOutputs } from "@/components/lib/trpc";

type Settings = RouterOutputs["replicaServer"]["get"];
/** Hyper-V's choices: 1 to 24 hours, or 2 to 7 days. */
const INTERVALS = [...Array.from({ length: 24 }, (_, i) => i + 1), 48, 72, 96, 120, 144, 168];
type Entry = { primaryServer: string; storageLocation: string; trustGroup: string };

function Err({ errors, field }: { errors: Record<string, string[]>; field: string }) {
  const e = errors[`settings.${field}`];
  return e ? <div className="text-crit" data-testid={`error-${field}`}>{e.join(" ")}</div> : null;
}

export function HyperVSettingsDialog({ hostId, hostName, readOnly, onClose }: { hostId: string; hostName: string; readOnly: boolean; onClose(): void }) {
  const trpc = useTRPC();
  const loaded = useQuery(trpc.replicaServer.get.queryOptions({ hostId }));
  const [draft, setDraft] = useState<Settings | null>(null);
  const s = draft ?? loaded.data ?? null;
  const save = useMutation(trpc.replicaServer.update.mutationOptions({ onSuccess: () => onClose() }));
  const errors = fieldErrors(save.error);
  const set = (patch: Partial<Settings>) => s && setDraft({ ...s, ...patch });
  const any = s?.authorization.mode === "any" ? s.authorization : null;
  const entries: Entry[] = s?.authorization.mode === "entries" ? s.authorization.entries : [];
  const setEntries = (next: Entry[]) => set({ authorization: { mode: "entries", entries: next } });
  const disabled = readOnly || !s?.enabled;

  return (
    <Dialog
      title={`Hyper-V Settings for ${hostName}`}
      onClose={onClose}
      testId="hyperv-settings"
      className="w-[760px]"
      footer={
        <>
          <Button variant="primary" data-testid="settings-ok" disabled={readOnly || !s || save.isPending} onClick={() => s && save.mutate({ hostId, settings: s })}>
            {save.isPending ? "Applying..." : "OK"}
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </>
      }
    >
      <div className="flex min-h-[380px] gap-3">
        <nav className="w-[180px] shrink-0 border-r border-border-light pr-2">
          <div className="font-semibold">Server</div>
          <div className="mt-1 bg-select px-2 py-[3px]">Replication Configuration</div>
        </nav>
        {!s ? (
          <div className="flex-1 text-muted">{loaded.error ? errorMessage(loaded.error) : "Loading..."}</div>
        ) : (
          <div className="flex-1 space-y-3">
            <h2 className="text-[15px]">Replication Configuration</h2>
            <label className="flex items-center gap-2">
              <input type="checkbox" data-testid="settings-enabled" disabled={readOnly} checked={s.enabled} onChange={(e) => set({ enabled: e.target.checked })} />
              Enable this computer as a Replica server.
            </label>
            <fieldset className="border border-border-light p-2" disabled={disabled}>
              <legend className="px-1">Authentication and ports</legend>
              {(["http", "https"] as const).map((t) => (
                <div key={t} className="mb-1">
                  <div className="flex items-center gap-2">
                    <label className="flex w-[330px] items-center gap-2">
                      <input type="checkbox" data-testid={`settings-${t}-enabled`} checked={s[t].enabled} onChange={(e) => set({ [t]: { ...s[t], enabled: e.target.checked } })} />
                      {t === "http" ? "Use HTTP with a shared token (not encrypted)" : "Use certificate-based Authentication (HTTPS)"}
                    </label>
                    Port:
                    <input data-testid={`settings-${t}-port`} type="number" className={cn(inputClass, "w-[80px]")} value={s[t].port} onChange={(e) => set({ [t]: { ...s[t], port: Number(e.target.value) } })} />
                  </div>
                  <Err errors={errors} field={`${t}.port`} />
                  <Err errors={errors} field={`${t}.enabled`} />
                </div>
              ))}
            </fieldset>
            <fieldset className="border border-border-light p-2" disabled={disabled}>
              <legend className="px-1">Authorization and storage</legend>
              <label className="flex items-center gap-2">
                <input type="radio" name="auth" data-testid="settings-auth-any" checked={!!any} onChange={() => set({ authorization: { mode: "any", defaultStorageLocation: entries[0]?.storageLocation ?? "/var/lib/replica-manager/replicas", trustGroup: "DEFAULT" } })} />
                Allow replication from any authenticated server
              </label>
              {any ? (
                <div className="my-1 ml-6 flex gap-2">
                  <label className="flex-1">
                    Default location to store Replica files:
                    <input className={inputClass} data-testid="settings-default-location" value={any.defaultStorageLocation} onChange={(e) => set({ authorization: { ...any, defaultStorageLocation: e.target.value } })} />
                    <Err errors={errors} field="authorization.defaultStorageLocation" />
                  </label>
                  <label className="w-[120px]">
                    Trust group:
                    <input className={inputClass} value={any.trustGroup} onChange={(e) => set({ authorization: { ...any, trustGroup: e.target.value } })} />
                    <Err errors={errors} field="authorization.trustGroup" />
                  </label>
                </div>
              ) : null}
              <label className="mt-1 flex items-center gap-2">
                <input type="radio" name="auth" data-testid="settings-auth-entries" checked={!any} onChange={() => setEntries(entries.length ? entries : [{ primaryServer: "", storageLocation: any?.defaultStorageLocation ?? "", trustGroup: any?.trustGroup ?? "DEFAULT" }])} />
                Allow replication from the specified servers:
              </label>
              {!any ? (
                <table className="mt-1 ml-6 w-[calc(100%-24px)] border-collapse">
                  <thead>
                    <tr className="bg-header text-left">
                      <th className="border border-border-light px-1 font-normal">Primary Server</th>
                      <th className="border border-border-light px-1 font-normal">Storage Location</th>
                      <th className="border border-border-light px-1 font-normal">Trust Group</th>
                      <th className="w-[60px]" />
                    </tr>
                  </thead>
                  <tbody>
                    {entries.map((en, i) => (
                      <tr key={i} className="align-top">
                        {(["primaryServer", "storageLocation", "trustGroup"] as const).map((k) => (
                          <td key={k} className="border border-border-light p-[2px]">
                            <input data-testid={`entry-${i}-${k}`} className={inputClass} value={en[k]} onChange={(e) => setEntries(entries.with(i, { ...en, [k]: e.target.value }))} aria-invalid={!!errors[`settings.authorization.entries.${i}.${k}`]} />
                            <Err errors={errors} field={`authorization.entries.${i}.${k}`} />
                          </td>
                        ))}
                        <td className="px-1">
                          <button className="text-link hover:underline" onClick={() => setEntries(entries.filter((_, j) => j !== i))}>
                            Remove
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              ) : null}
              {!any ? (
                <button className="mt-1 ml-6 text-link hover:underline" data-testid="entry-add" onClick={() => setEntries([...entries, { primaryServer: "", storageLocation: entries.at(-1)?.storageLocation ?? "", trustGroup: "DEFAULT" }])}>
                  Add...
                </button>
              ) : null}
            </fieldset>
            <fieldset className="border border-border-light p-2" disabled={readOnly}>
              <legend className="px-1">Health monitoring</legend>
              <div className="flex items-center gap-2">
                Judge replication health over
                <select data-testid="settings-monitoring-interval" className={cn(inputClass, "w-[110px]")} value={s.monitoring.intervalHours} onChange={(e) => set({ monitoring: { ...s.monitoring, intervalHours: Number(e.target.value) } })}>
                  {INTERVALS.map((h) => (
                    <option key={h} value={h}>
                      {h <= 24 ? `${h} hour${h === 1 ? "" : "s"}` : `${h / 24} days`}
                    </option>
                  ))}
                </select>
                starting at
                <input data-testid="settings-monitoring-start" className={cn(inputClass, "w-[70px]")} value={s.monitoring.startTime} onChange={(e) => set({ monitoring: { ...s.monitoring, startTime: e.target.value } })} />
              </div>
              <Err errors={errors} field="monitoring.intervalHours" />
              <Err errors={errors} field="monitoring.startTime" />
            </fieldset>
            {save.error && !Object.keys(errors).length ? (
              <div className="text-crit" role="alert" data-testid="settings-error">
                {errorMessage(save.error)}
              </div>
            ) : null}
          </div>
        )}
      </div>
    </Dialog>
  );
}
