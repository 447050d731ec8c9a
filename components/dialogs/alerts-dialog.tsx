"use client";

/**
 * Alerts (★, Administrators): where the console sends an alert when a VM's replication health
 * turns Critical or returns to Normal (webhooks, mail), a test alert per target, and the recent
 * deliveries with their errors.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Button } from "@/components/ui/button";
import { Dialog, Field, inputClass } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { formatDateTime } from "@/components/lib/format";
import { useTRPC } from "@/components/lib/trpc";

const cell = "border border-border-light px-1";
type Draft = { kind: "webhook" | "mail"; name: string; address: string; smtpUrl: string };
const EMPTY: Draft = { kind: "webhook", name: "", address: "", smtpUrl: "" };

export function AlertsDialog({ onClose }: { onClose(): void }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const targets = useQuery(trpc.alerts.targets.queryOptions());
  const deliveries = useQuery({ ...trpc.alerts.deliveries.queryOptions({ limit: 50 }), refetchInterval: 5000 });
  const refresh = () => qc.invalidateQueries({ queryKey: trpc.alerts.pathKey() });
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const add = useMutation(trpc.alerts.add.mutationOptions({ onSuccess: () => (setDraft(EMPTY), void refresh()) }));
  const setEnabled = useMutation(trpc.alerts.setEnabled.mutationOptions({ onSettled: refresh }));
  const remove = useMutation(trpc.alerts.remove.mutationOptions({ onSettled: refresh }));
  const test = useMutation(trpc.alerts.test.mutationOptions({ onSettled: refresh }));
  const errors = fieldErrors(add.error);
  const failure = setEnabled.error ?? remove.error ?? test.error ?? (add.error && !Object.keys(errors).length ? add.error : null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    add.mutate(draft.kind === "webhook" ? { kind: "webhook", name: draft.name, address: draft.address } : { kind: "mail", name: draft.name, address: draft.address, smtpUrl: draft.smtpUrl });
  };

  return (
    <Dialog title="Alerts" onClose={onClose} testId="alerts-dialog" className="w-[820px]" footer={<Button onClick={onClose}>Close</Button>}>
      <p className="mb-2">The console alerts these targets when a virtual machine&apos;s replication health turns Critical, and again when it returns to Normal.</p>
      <table className="mb-2 w-full border-collapse">
        <thead>
          <tr className="bg-header text-left">
            <th className={cn(cell, "w-[60px] font-normal")}>Enabled</th>
            <th className={cn(cell, "font-normal")}>Name</th>
            <th className={cn(cell, "w-[70px] font-normal")}>Type</th>
            <th className={cn(cell, "font-normal")}>Address</th>
            <th className={cn(cell, "w-[160px]")} />
          </tr>
        </thead>
        <tbody>
          {(targets.data ?? []).map((t) => (
            <tr key={t.id} data-testid="alert-target" data-name={t.name}>
              <td className={cn(cell, "text-center")}>
                <input type="checkbox" aria-label={`${t.name} enabled`} checked={t.enabled} onChange={(e) => setEnabled.mutate({ id: t.id, enabled: e.target.checked })} />
              </td>
              <td className={cell}>{t.name}</td>
              <td className={cell}>{t.kind === "webhook" ? "Webhook" : "Mail"}</td>
              <td className={cn(cell, "max-w-[260px] truncate")} title={t.smtpUrl ? `${t.address} via ${t.smtpUrl}` : t.address}>
                {t.address}
              </td>
              <td className={cn(cell, "whitespace-nowrap")}>
                <button className="mr-3 text-link hover:underline disabled:text-muted" data-testid="alert-test" disabled={test.isPending} onClick={() => test.mutate({ id: t.id })}>
                  {test.isPending && test.variables?.id === t.id ? "Sending..." : "Send test alert"}
                </button>
                <button className="text-link hover:underline" onClick={() => remove.mutate({ id: t.id })}>
                  Remove
                </button>
              </td>
            </tr>
          ))}
          {targets.data?.length === 0 ? (
            <tr>
              <td colSpan={5} className={cn(cell, "text-muted")}>
                No alert targets: health changes are shown in the console only.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      {test.data ? (
        <div className={cn("mb-2", test.data.result === "sent" ? "text-ok" : "text-crit")} data-testid="alert-test-result">
          {test.data.result === "sent" ? "The test alert was sent." : `The test alert failed: ${test.data.error}`}
        </div>
      ) : null}
      {failure ? (
        <div className="mb-2 text-crit" role="alert">
          {errorMessage(failure)}
        </div>
      ) : null}
      <form onSubmit={submit} className="mb-3 border border-border-light p-2">
        <div className="mb-1 font-semibold">Add a target</div>
        <div className="flex gap-2">
          <div className="w-[110px]">
            <Field label="Type:" htmlFor="alert-kind">
              <select id="alert-kind" data-testid="alert-kind" className={inputClass} value={draft.kind} onChange={(e) => setDraft({ ...draft, kind: e.target.value as Draft["kind"] })}>
                <option value="webhook">Webhook</option>
                <option value="mail">Mail</option>
              </select>
            </Field>
          </div>
          <div className="w-[170px]">
            <Field label="Name:" htmlFor="alert-name" error={errors.name}>
              <input id="alert-name" data-testid="alert-name" className={inputClass} value={draft.name} aria-invalid={!!errors.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} />
            </Field>
          </div>
          <div className="flex-1">
            <Field label={draft.kind === "webhook" ? "Webhook URL (receives a JSON POST):" : "Recipients (comma separated):"} htmlFor="alert-address" error={errors.address}>
              <input id="alert-address" data-testid="alert-address" className={inputClass} value={draft.address} aria-invalid={!!errors.address} placeholder={draft.kind === "webhook" ? "https://hooks.example.com/replica" : "ops@example.com"} onChange={(e) => setDraft({ ...draft, address: e.target.value })} />
            </Field>
          </div>
        </div>
        {draft.kind === "mail" ? (
          <Field label="SMTP server:" htmlFor="alert-smtp" error={errors.smtpUrl}>
            <input id="alert-smtp" data-testid="alert-smtp" className={inputClass} value={draft.smtpUrl} aria-invalid={!!errors.smtpUrl} placeholder="smtp://user:password@mail.example.com:587" onChange={(e) => setDraft({ ...draft, smtpUrl: e.target.value })} />
          </Field>
        ) : null}
        <div className="flex justify-end">
          <Button type="submit" data-testid="alert-add" disabled={add.isPending}>
            Add
          </Button>
        </div>
      </form>
      <div className="mb-1 font-semibold">Recent deliveries</div>
      <div className="max-h-[180px] overflow-auto border border-border-light bg-white">
        <table className="w-full table-fixed border-collapse">
          <thead className="sticky top-0 bg-header">
            <tr className="text-left">
              <th className={cn(cell, "w-[175px] font-normal")}>Date and Time</th>
              <th className={cn(cell, "w-[120px] font-normal")}>Target</th>
              <th className={cn(cell, "font-normal")}>Virtual machine</th>
              <th className={cn(cell, "w-[70px] font-normal")}>Health</th>
              <th className={cn(cell, "font-normal")}>Result</th>
            </tr>
          </thead>
          <tbody>
            {(deliveries.data ?? []).map((d) => (
              <tr key={d.id} data-testid="alert-delivery" data-result={d.result}>
                <td className={cn(cell, "whitespace-nowrap")}>{formatDateTime(d.at.toISOString())}</td>
                <td className={cn(cell, "truncate")}>{d.target.name}</td>
                <td className={cn(cell, "truncate")}>{d.hostName === "console" ? d.vmName : `${d.vmName} on ${d.hostName}`}</td>
                <td className={cn(cell, d.health === "Critical" ? "text-crit" : "text-ok")}>{d.health}</td>
                <td className={cn(cell, "truncate", d.result === "failed" && "text-crit")} title={d.error ?? undefined}>
                  {d.result === "sent" ? "Sent" : `Failed: ${d.error}`}
                </td>
              </tr>
            ))}
            {deliveries.data?.length === 0 ? (
              <tr>
                <td colSpan={5} className={cn(cell, "text-muted")}>
                  No alerts sent yet.
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
    </Dialog>
  );
}
