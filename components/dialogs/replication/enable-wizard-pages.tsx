"use client";

/**
 * The Enable Replication wizard's first pages, as in Hyper-V: Before You Begin, Specify Replica
 * Server, Specify Connection Parameters, Choose Replication VHDs, Configure Replication
 * Frequency. Each reads and writes the shared form (react-hook-form's context).
 */
import { useFormContext } from "react-hook-form";
import { cn } from "@/components/lib/cn";
import { formatBytes } from "@/components/lib/format";
import type { WizardValues } from "./enable-wizard-model";
import { Check, FieldMessage, Intro, type WizardContext, wizardInput } from "./enable-wizard-fields";

export function BeforeYouBeginPage({ ctx }: { ctx: WizardContext }) {
  return (
    <div className="space-y-2">
      <p>This wizard helps you enable replication of the virtual machine &apos;{ctx.vm.name}&apos; on {ctx.hostName} to a Replica server.</p>
      <p>Before you begin:</p>
      <ul className="ml-5 list-disc space-y-1">
        <li>The Replica server must be connected to this console and enabled as a Replica server (Hyper-V Settings &gt; Replication Configuration on that server).</li>
        <li>It must allow replication from {ctx.hostName}, with an authentication type both servers can use: a certificate (HTTPS) or a shared token (HTTP).</li>
        <li>The Replica server needs enough storage for the replicated virtual hard disks and any additional recovery points.</li>
      </ul>
      <p>Click Next to continue.</p>
    </div>
  );
}

export function SpecifyReplicaServerPage({ ctx, checking }: { ctx: WizardContext; checking: boolean }) {
  const { register, formState } = useFormContext<WizardValues>();
  return (
    <div>
      <Intro>Specify the Replica server to replicate this virtual machine to. On Next, the wizard contacts it and reads which authentication types and ports it accepts.</Intro>
      <label htmlFor="replicaServer" className="mb-[2px] block">
        Replica server:
      </label>
      <input id="replicaServer" data-testid="wizard-replica-server" className={cn(wizardInput, "w-[360px]")} placeholder="hv02.example.com" aria-invalid={!!formState.errors.replicaServer} {...register("replicaServer")} />
      <FieldMessage name="replicaServer" />
      <p className="mt-2 text-muted">Type the name or the fully qualified domain name (FQDN) of a server connected to this console.</p>
      {checking ? <p className="mt-2" data-testid="wizard-checking">Contacting the Replica server...</p> : null}
      {ctx.server && !checking ? (
        <p className="mt-2 text-ok" data-testid="wizard-server-checked">
          {ctx.server.name} is a Replica server and accepts {ctx.hostName}: the Replica virtual machine will be stored in {ctx.server.storageLocation} (trust group {ctx.server.trustGroup}).
        </p>
      ) : null}
    </div>
  );
}

export function ConnectionParametersPage({ ctx, checking }: { ctx: WizardContext; checking: boolean }) {
  const { register, watch, setValue, formState } = useFormContext<WizardValues>();
  const s = ctx.server;
  const [limit, port, authMode] = watch(["limitBandwidth", "replicaPort", "authMode"]);
  // Only for what is on the page now, and not beside a newer failure (Finish tests again).
  const c = ctx.connection;
  const tested = c?.ok && c.replicaPort === port && c.authMode === authMode && !formState.errors.replicaPort && !formState.errors.authMode;
  const why = (kind: "https" | "http") => (!s?.[kind].enabled ? " (not enabled on the Replica server)" : !s[kind].usable ? ` (not configured on both servers)` : ` (port ${s[kind].port})`);
  const choose = (kind: "https" | "http") => s && setValue("replicaPort", s[kind].port, { shouldDirty: true });
  return (
    <div>
      <Intro>The port and the authentication type were read from {s?.name ?? "the Replica server"}. Choose one the Replica server accepts. On Next, {ctx.hostName} tests the connection with them.</Intro>
      <fieldset className="mb-2 border border-border-light p-2">
        <legend className="px-1">Authentication Type</legend>
        <label className={cn("mb-1 flex items-center gap-2", s && !s.https.usable && "text-muted")}>
          <input type="radio" value="https" data-testid="wizard-auth-https" disabled={!!s && !s.https.usable} {...register("authMode", { onChange: () => choose("https") })} />
          Use certificate-based authentication (HTTPS){why("https")}
        </label>
        <label className={cn("mb-1 flex items-center gap-2", s && !s.http.usable && "text-muted")}>
          <input type="radio" value="http" data-testid="wizard-auth-http" disabled={!!s && !s.http.usable} {...register("authMode", { onChange: () => choose("http") })} />
          Use HTTP with a shared token (not encrypted){why("http")}
        </label>
        <FieldMessage name="authMode" />
      </fieldset>
      <label htmlFor="replicaPort" className="mb-[2px] block">
        Replica server port:
      </label>
      <input id="replicaPort" type="number" data-testid="wizard-port" className={cn(wizardInput, "w-[100px]")} aria-invalid={!!formState.errors.replicaPort} {...register("replicaPort", { valueAsNumber: true })} />
      <FieldMessage name="replicaPort" />
      {checking ? <p className="mt-1" data-testid="wizard-testing-connection">Testing the connection from {ctx.hostName}...</p> : null}
      {c && tested && !checking ? (
        <p className="mt-1 text-ok" data-testid="wizard-connection-ok">
          Connection tested: {c.replicaServer} accepts {ctx.hostName} on port {c.replicaPort} ({c.authMode.toUpperCase()}).
        </p>
      ) : null}
      <div className="mt-3">
        <Check name="compression" testId="wizard-compression" label="Compress the data that is transmitted over the network" />
        <Check name="limitBandwidth" testId="wizard-limit-bandwidth" label="Limit the bandwidth this virtual machine's replication may use" />
        <div className="ml-6 flex items-center gap-2">
          <input type="number" step="any" data-testid="wizard-bandwidth" disabled={!limit} className={cn(wizardInput, "w-[100px]")} aria-invalid={!!formState.errors.bandwidthLimitMiBps} {...register("bandwidthLimitMiBps", { valueAsNumber: true })} />
          MB/s
        </div>
        <div className="ml-6">
          <FieldMessage name="bandwidthLimitMiBps" />
        </div>
      </div>
    </div>
  );
}

export function ChooseVhdsPage({ ctx }: { ctx: WizardContext }) {
  const { watch, setValue } = useFormContext<WizardValues>();
  const chosen = watch("disks");
  const toggle = (i: number, on: boolean) =>
    setValue("disks", on ? [...chosen, i].sort((a, b) => a - b) : chosen.filter((d) => d !== i), { shouldDirty: true, shouldValidate: true });
  return (
    <div>
      <Intro>Choose the virtual hard disks to replicate. Clear the check box of a disk that need not be replicated, such as one that holds only a page file or swap.</Intro>
      <table className="w-full border-collapse" data-testid="wizard-vhds">
        <thead>
          <tr className="bg-header text-left">
            <th className="w-[28px] border border-border-light" />
            <th className="border border-border-light px-1 font-normal">Virtual Hard Disk</th>
            <th className="border border-border-light px-1 font-normal">Size</th>
          </tr>
        </thead>
        <tbody>
          {ctx.vm.disks.map((d) => (
            <tr key={d.index}>
              <td className="border border-border-light text-center">
                <input type="checkbox" data-testid={`wizard-vhd-${d.index}`} aria-label={`Replicate disk ${d.index}`} checked={chosen.includes(d.index)} onChange={(e) => toggle(d.index, e.target.checked)} />
              </td>
              <td className="border border-border-light px-1">disk{d.index}.raw (Disk {d.index})</td>
              <td className="border border-border-light px-1">{formatBytes(d.sizeBytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <FieldMessage name="disks" />
      <p className="mt-2">Total size of the chosen disks: {formatBytes(ctx.vm.disks.filter((d) => chosen.includes(d.index)).reduce((n, d) => n + d.sizeBytes, 0))}</p>
    </div>
  );
}

export const FREQUENCY_CHOICES = [
  { seconds: 30, label: "30 seconds" },
  { seconds: 300, label: "5 minutes" },
  { seconds: 900, label: "15 minutes" },
  { seconds: 15, label: "15 seconds (beyond Hyper-V)" },
  { seconds: 10, label: "10 seconds (beyond Hyper-V)" },
  { seconds: 5, label: "5 seconds (beyond Hyper-V)" },
] as const;

export function FrequencyPage() {
  const { register } = useFormContext<WizardValues>();
  return (
    <div>
      <Intro>Choose how often changes are sent to the Replica server. A cycle that is still running when the next one is due counts as missed.</Intro>
      <label htmlFor="frequencySeconds" className="mb-[2px] block">
        Send changes to the Replica server every:
      </label>
      <select id="frequencySeconds" data-testid="wizard-frequency" className={cn(wizardInput, "w-[240px]")} {...register("frequencySeconds", { valueAsNumber: true })}>
        {FREQUENCY_CHOICES.map((f) => (
          <option key={f.seconds} value={f.seconds}>
            {f.label}
          </option>
        ))}
      </select>
      <FieldMessage name="frequencySeconds" />
    </div>
  );
}
