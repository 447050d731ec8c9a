"use client";

/**
 * Dashboard Links (Administrators): named read-only links to the wall dashboard. A new link's
 * address is shown once (the console keeps only its hash); revoking it closes walls using it.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Button } from "@/components/ui/button";
import { Dialog, Field, inputClass } from "@/components/ui/dialog";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { formatDateTime } from "@/components/lib/format";
import { useTRPC } from "@/components/lib/trpc";

export function DashboardLinksDialog({ onClose }: { onClose(): void }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const links = useQuery(trpc.dashboard.links.queryOptions());
  const refresh = () => qc.invalidateQueries({ queryKey: trpc.dashboard.links.queryKey() });
  const [name, setName] = useState("");
  const [made, setMade] = useState<{ name: string; url: string } | null>(null);
  const create = useMutation(
    trpc.dashboard.createLink.mutationOptions({
      onSuccess: (l) => (setMade({ name: l.name, url: `${window.location.origin}${l.path}` }), setName(""), void refresh()),
    }),
  );
  const revoke = useMutation(trpc.dashboard.revokeLink.mutationOptions({ onSettled: refresh }));
  const errors = fieldErrors(create.error);
  const failure = revoke.error ?? (create.error && !Object.keys(errors).length ? create.error : null);
  const submit = (e: FormEvent) => (e.preventDefault(), create.mutate({ name }));

  return (
    <Dialog title="Dashboard Links" onClose={onClose} testId="dashboard-links-dialog" className="w-[660px]" footer={<Button onClick={onClose}>Close</Button>}>
      <p className="mb-2">
        A dashboard link opens the wall dashboard (<a className="text-link hover:underline" href="/dashboard" target="_blank" rel="noreferrer">/dashboard</a>) without signing in, and nothing else. Give
        one to each wall screen; revoke it when the screen goes.
      </p>
      <table className="mb-3 w-full border-collapse">
        <thead>
          <tr className="bg-header text-left">
            <th className="border border-border-light px-1 font-normal">Name</th>
            <th className="border border-border-light px-1 font-normal">Created</th>
            <th className="border border-border-light px-1 font-normal">Status</th>
            <th className="w-[70px] border border-border-light" />
          </tr>
        </thead>
        <tbody>
          {(links.data ?? []).map((l) => (
            <tr key={l.id} data-testid="dashboard-link-row" data-name={l.name}>
              <td className="border border-border-light px-1">{l.name}</td>
              <td className="border border-border-light px-1">
                {formatDateTime(l.createdAt.toISOString())} by {l.createdBy}
              </td>
              <td className="border border-border-light px-1">{l.revokedAt ? `Revoked ${formatDateTime(l.revokedAt.toISOString())}` : "Active"}</td>
              <td className="border border-border-light px-1">
                {l.revokedAt ? null : (
                  <button className="text-link hover:underline" data-testid="dashboard-link-revoke" onClick={() => revoke.mutate({ id: l.id })}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
          {links.data?.length === 0 ? (
            <tr>
              <td colSpan={4} className="border border-border-light px-1 text-muted">
                No dashboard links yet.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      {failure ? (
        <div className="mb-2 text-crit" role="alert">
          {errorMessage(failure)}
        </div>
      ) : null}
      {made ? (
        <div className="mb-2 border border-select-border bg-[#f3f9ff] p-2" data-testid="dashboard-link-made">
          <div className="mb-1">Link for &apos;{made.name}&apos;. Copy it now: it is not shown again.</div>
          <input readOnly className={inputClass} value={made.url} data-testid="dashboard-link-url" onFocus={(e) => e.target.select()} />
        </div>
      ) : null}
      <form onSubmit={submit} className="flex items-start gap-2 border border-border-light p-2">
        <div className="flex-1">
          <Field label="Name of the new link (where the screen is):" htmlFor="dashboard-link-name" error={errors.name}>
            <input id="dashboard-link-name" data-testid="dashboard-link-name" className={inputClass} placeholder="NOC wall" value={name} aria-invalid={!!errors.name} onChange={(e) => setName(e.target.value)} />
          </Field>
        </div>
        <Button type="submit" className="mt-[17px]" data-testid="dashboard-link-create" disabled={create.isPending}>
          Create Link
        </Button>
      </form>
    </Dialog>
  );
}
