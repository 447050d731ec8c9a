"use client";

/** The pages of the Reverse Replication wizard: the settings the new primary replicates with. */
import { Field, inputClass } from "@/components/ui/dialog";
import { formatFrequency } from "@/components/lib/format";
import type { RouterOutputs } from "@/components/lib/trpc";

export const REVERSE_PAGES = ["Before You Begin", "Specify Replica Server", "Specify Connection Parameters", "Configure Replication Frequency", "Configure Additional Recovery Points", "Summary"] as const;
export type ReversePage = (typeof REVERSE_PAGES)[number];

export type ReverseDefaults = RouterOutputs["failover"]["reverseDefaults"];
export interface ReverseDraft {
  replicaPort: string;
  authMode: "https" | "http";
  compression: boolean;
  frequencySeconds: number;
  recoveryHistory: number;
}

const FREQUENCIES = [30, 300, 900, 5, 10, 15];

export function ReverseWizardPage({ page, vmName, here, defaults, draft, setDraft, errors }: {
  page: ReversePage;
  vmName: string;
  here: string;
  defaults: ReverseDefaults;
  draft: ReverseDraft;
  setDraft(d: ReverseDraft): void;
  errors: Record<string, string[]>;
}) {
  const set = <K extends keyof ReverseDraft>(k: K, v: ReverseDraft[K]) => setDraft({ ...draft, [k]: v });
  switch (page) {
    case "Before You Begin":
      return (
        <div className="space-y-2">
          <p>This wizard sets up replication of {vmName} in the other direction, now that it has failed over to {here}: {here} becomes the primary server and {defaults.replicaServer} its Replica server.</p>
          <p>{defaults.replicaServer} must be running and reachable. What it wrote after the failover point is given up; only the blocks that differ are sent, never a full copy.</p>
          <p>The settings are prefilled from the original replication.</p>
        </div>
      );
    case "Specify Replica Server":
      return (
        <>
          <Field label="Replica server:" htmlFor="reverse-server">
            <input id="reverse-server" className={inputClass} value={defaults.replicaServer} readOnly data-testid="reverse-server" />
          </Field>
          <p className={defaults.replicaConnected ? "text-ok" : "text-crit"} data-testid="reverse-server-status">
            {defaults.replicaConnected
              ? `${defaults.replicaServer} is connected${defaults.replicaServerEnabled === false ? ", but it is not enabled as a Replica server: enable it in its Hyper-V Settings first" : "."}`
              : `${defaults.replicaServer} cannot be reached by the console now; reverse replication needs it.`}
          </p>
        </>
      );
    case "Specify Connection Parameters":
      return (
        <>
          <Field label="Authentication type:" htmlFor="authMode" error={errors.authMode}>
            <select id="authMode" className={inputClass} value={draft.authMode} onChange={(e) => set("authMode", e.target.value as "https" | "http")} data-testid="reverse-auth">
              <option value="https">Use certificate-based authentication (HTTPS)</option>
              <option value="http">Use the shared token over HTTP (unencrypted)</option>
            </select>
          </Field>
          <Field label="Replica server port:" htmlFor="replicaPort" error={errors.replicaPort}>
            <input id="replicaPort" className={`${inputClass} w-[100px]`} value={draft.replicaPort} aria-invalid={!!errors.replicaPort} onChange={(e) => set("replicaPort", e.target.value)} data-testid="reverse-port" />
          </Field>
          <label className="flex items-center gap-1">
            <input type="checkbox" checked={draft.compression} onChange={(e) => set("compression", e.target.checked)} data-testid="reverse-compression" />
            Compress the data that is transmitted over the network
          </label>
        </>
      );
    case "Configure Replication Frequency":
      return (
        <Field label="Choose the frequency at which changes are sent to the Replica server:" htmlFor="frequencySeconds" error={errors.frequencySeconds}>
          <select id="frequencySeconds" className={`${inputClass} w-[160px]`} value={draft.frequencySeconds} onChange={(e) => set("frequencySeconds", Number(e.target.value))} data-testid="reverse-frequency">
            {FREQUENCIES.map((f) => (
              <option key={f} value={f}>
                {formatFrequency(f)}
              </option>
            ))}
          </select>
        </Field>
      );
    case "Configure Additional Recovery Points":
      return (
        <>
          <label className="flex items-center gap-1">
            <input type="radio" checked={draft.recoveryHistory === 0} onChange={() => set("recoveryHistory", 0)} data-testid="reverse-latest-only" />
            Maintain only the latest recovery point
          </label>
          <label className="mt-1 flex items-center gap-1">
            <input type="radio" checked={draft.recoveryHistory > 0} onChange={() => set("recoveryHistory", Math.max(1, defaults.recoveryHistory || 4))} data-testid="reverse-hourly" />
            Create additional hourly recovery points
          </label>
          {draft.recoveryHistory > 0 ? (
            <div className="mt-2 pl-5">
              <Field label="Coverage provided by additional recovery points (hours):" htmlFor="recoveryHistory" error={errors.recoveryHistory}>
                <input id="recoveryHistory" type="number" className={`${inputClass} w-[80px]`} value={draft.recoveryHistory} onChange={(e) => set("recoveryHistory", Number(e.target.value))} data-testid="reverse-history" />
              </Field>
            </div>
          ) : null}
        </>
      );
    case "Summary":
      return (
        <table className="w-full border-collapse" data-testid="reverse-summary">
          <tbody>
            {[
              ["Primary server", here],
              ["Replica server", defaults.replicaServer],
              ["Authentication", draft.authMode === "https" ? "Certificate (HTTPS)" : "Shared token (HTTP)"],
              ["Replica server port", draft.replicaPort],
              ["Compression", draft.compression ? "Enabled" : "Disabled"],
              ["Replication frequency", formatFrequency(draft.frequencySeconds)],
              ["Recovery points", draft.recoveryHistory === 0 ? "Only the latest" : `${draft.recoveryHistory} additional hourly`],
              ["Initial replication", "Resynchronization: only the blocks that differ are sent"],
            ].map(([k, v]) => (
              <tr key={k}>
                <td className="w-[170px] py-[1px] text-muted">{k}</td>
                <td className="py-[1px]">{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
      );
  }
}

/** Checks a page's fields before Next; messages by field. */
export function checkReversePage(page: ReversePage, draft: ReverseDraft): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const port = Number(draft.replicaPort);
  if (page === "Specify Connection Parameters" && (!/^\d+$/.test(draft.replicaPort.trim()) || port < 1 || port > 65535)) out.replicaPort = ["Enter a port number from 1 to 65535."];
  if (page === "Configure Additional Recovery Points" && (!Number.isInteger(draft.recoveryHistory) || draft.recoveryHistory < 0 || draft.recoveryHistory > 24)) out.recoveryHistory = ["Enter 1 to 24 hours."];
  return out;
}
