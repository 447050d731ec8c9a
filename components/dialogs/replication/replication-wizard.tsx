"use client";

/**
 * A replication wizard in Hyper-V's manner: page names on the left, Previous / Next / Finish /
 * Cancel, each page checked on Next with the message beside its field, the Replica server
 * contacted when leaving Specify Replica Server, the connection tested from the primary when
 * leaving Specify Connection Parameters, a completion page. What Finish does is the
 * caller's (Enable Replication; Reverse Replication can reuse it with other defaults).
 */
import { zodResolver } from "@hookform/resolvers/zod";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import { FormProvider, useForm } from "react-hook-form";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { PAGE_FIELDS, WIZARD_PAGES, pageOf, wizardFieldOf, wizardSchema, type WizardPageName, type WizardValues } from "./enable-wizard-model";
import type { WizardContext, WizardText } from "./enable-wizard-fields";
import { BeforeYouBeginPage, ChooseVhdsPage, ConnectionParametersPage, FrequencyPage, SpecifyReplicaServerPage } from "./enable-wizard-pages";
import { InitialReplicationPage, RecoveryPointsPage, SummaryPage } from "./enable-wizard-pages-2";

export interface ReplicationWizardProps {
  title: string;
  vm: Vm;
  hostName: string;
  defaults: WizardValues;
  /** The pages to show, in order (default: all of Enable Replication's). */
  pages?: readonly WizardPageName[];
  /** What Finish does; a thrown tRPC error with field errors brings back the field's page. */
  submit(values: WizardValues): Promise<unknown>;
  /** What Finish is doing, while it runs. */
  progress(values: WizardValues): string;
  /** The completion page. */
  done(values: WizardValues): { title: string; message: ReactNode };
  /** Said before the reason when Finish fails ("Replication could not be enabled"). */
  failedTitle: string;
  /** Texts of another wizard made of these pages (Reverse Replication). */
  text?: WizardText;
  onClose(): void;
}

export function ReplicationWizard({ title, vm, hostName, defaults, pages = WIZARD_PAGES, submit, progress, done, failedTitle, text, onClose }: ReplicationWizardProps) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const form = useForm<WizardValues>({ defaultValues: defaults, resolver: zodResolver(wizardSchema), mode: "onSubmit", reValidateMode: "onChange" });
  const [page, setPage] = useState<WizardPageName>(pages[0]!);
  const [furthest, setFurthest] = useState(0);
  const [server, setServer] = useState<WizardContext["server"]>(null);
  const [checking, setChecking] = useState(false);
  const [connection, setConnection] = useState<WizardContext["connection"]>(null);
  const testConnection = useMutation(trpc.replication.testConnection.mutationOptions());
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const [completed, setCompleted] = useState<WizardValues | null>(null);
  const i = pages.indexOf(page);
  const ctx: WizardContext = { vm, hostName, server, connection, text };

  const go = (p: WizardPageName) => {
    setPage(p);
    setFurthest((f) => Math.max(f, pages.indexOf(p)));
  };

  /** Checks the current page's fields (and contacts the Replica server when it was named here). */
  const leave = async (): Promise<boolean> => {
    if (!(await form.trigger(PAGE_FIELDS[page]))) return false;
    if (page === "Specify Connection Parameters") return testFromPrimary();
    if (page !== "Specify Replica Server") return true;
    const v = form.getValues();
    setChecking(true);
    try {
      const s = await queryClient.fetchQuery({ ...trpc.replication.checkReplicaServer.queryOptions({ hostId: vm.hostId, replicaServer: v.replicaServer }), staleTime: 0 });
      // A newly named server prefills port and authentication, unless what is there already fits it.
      if (s.name !== server?.name && !(s[v.authMode].usable && s[v.authMode].port === v.replicaPort)) {
        form.setValue("authMode", s.authMode);
        form.setValue("replicaPort", s.port);
      }
      setServer(s);
      return true;
    } catch (err) {
      form.setError("replicaServer", { message: fieldErrors(err).replicaServer?.[0] ?? errorMessage(err) });
      return false;
    } finally {
      setChecking(false);
    }
  };

  /** Test Replication Connection from this VM's server; a failure goes beside the port or the authentication. */
  const testFromPrimary = async (): Promise<boolean> => {
    const v = form.getValues();
    setChecking(true);
    setConnection(null);
    try {
      const result = await testConnection.mutateAsync({ hostId: vm.hostId, replicaServer: v.replicaServer, replicaPort: v.replicaPort, authMode: v.authMode });
      setConnection(result);
      if (result.failure) form.setError(result.failure.field === "replicaPort" ? "replicaPort" : "authMode", { message: result.failure.message });
      return result.ok;
    } catch (err) {
      form.setError("replicaPort", { message: `the connection could not be tested: ${errorMessage(err)}` });
      return false;
    } finally {
      setChecking(false);
    }
  };

  const next = async () => {
    if (await leave()) go(pages[i + 1]!);
  };
  const jump = async (p: WizardPageName) => {
    if (pages.indexOf(p) < i || (await leave())) go(p);
  };

  const finish = async () => {
    setFailure(null);
    if (!(await form.trigger())) {
      const first = pages.find((p) => PAGE_FIELDS[p].some((f) => form.getFieldState(f).error));
      if (first) setPage(first);
      return;
    }
    const values = form.getValues();
    setBusy(true);
    try {
      await submit(values);
      setCompleted(values);
    } catch (err) {
      const byField = Object.entries(fieldErrors(err)).map(([f, m]) => [wizardFieldOf(f), m] as const).filter((e): e is [keyof WizardValues, string[]] => !!e[0]);
      for (const [f, m] of byField) form.setError(f, { message: m.join(" ") });
      const first = byField[0] && pageOf(byField[0][0]);
      if (first) setPage(first);
      else setFailure(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  if (completed) {
    const d = done(completed);
    return (
      <Dialog title={title} onClose={onClose} testId="replication-wizard" className="w-[720px]" footer={<Button variant="primary" data-testid="wizard-close" data-autofocus onClick={onClose}>Close</Button>}>
        <div className="min-h-[340px]" data-testid="wizard-completed">
          <h2 className="mb-3 text-[15px]">{d.title}</h2>
          {d.message}
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog
      title={title}
      onClose={onClose}
      testId="replication-wizard"
      className="w-[760px]"
      footer={
        <>
          <Button disabled={i === 0 || busy} onClick={() => setPage(pages[i - 1]!)} data-testid="wizard-previous">
            &lt; Previous
          </Button>
          <Button disabled={i === pages.length - 1 || busy || checking} onClick={() => void next()} data-testid="wizard-next">
            Next &gt;
          </Button>
          <Button variant="primary" disabled={page !== "Summary" || busy} onClick={() => void finish()} data-testid="wizard-finish">
            Finish
          </Button>
          <Button onClick={onClose} disabled={busy}>
            Cancel
          </Button>
        </>
      }
    >
      <FormProvider {...form}>
        <form className="flex min-h-[360px] gap-3" onSubmit={(e) => (e.preventDefault(), void (page === "Summary" ? finish() : next()))} noValidate>
          <nav className="w-[210px] shrink-0 border-r border-border-light pr-2">
            {pages.map((p, j) => (
              <button
                key={p}
                type="button"
                disabled={j > furthest || busy}
                onClick={() => void jump(p)}
                data-testid={`wizard-page-${p}`}
                aria-current={p === page ? "step" : undefined}
                className={cn("block w-full px-2 py-[3px] text-left", p === page ? "bg-select font-semibold" : j <= furthest ? "text-link hover:underline" : "text-muted")}
              >
                {p}
              </button>
            ))}
          </nav>
          <div className="min-w-0 flex-1">
            <h2 className="mb-3 text-[15px]">{page}</h2>
            {page === "Before You Begin" ? (text?.beforeYouBegin ?? <BeforeYouBeginPage ctx={ctx} />) : null}
            {page === "Specify Replica Server" ? <SpecifyReplicaServerPage ctx={ctx} checking={checking} /> : null}
            {page === "Specify Connection Parameters" ? <ConnectionParametersPage ctx={ctx} checking={checking} /> : null}
            {page === "Choose Replication VHDs" ? <ChooseVhdsPage ctx={ctx} /> : null}
            {page === "Configure Replication Frequency" ? <FrequencyPage /> : null}
            {page === "Configure Additional Recovery Points" ? <RecoveryPointsPage ctx={ctx} /> : null}
            {page === "Choose Initial Replication Method" ? <InitialReplicationPage ctx={ctx} /> : null}
            {page === "Summary" ? <SummaryPage ctx={ctx} /> : null}
            {busy ? (
              <div className="mt-3" role="status" data-testid="wizard-progress">
                {progress(form.getValues())}
                <div className="mt-1 h-[14px] w-full overflow-hidden border border-border bg-pane">
                  <div className="h-full w-full animate-pulse bg-[#06b025]" />
                </div>
              </div>
            ) : null}
            {failure ? (
              <div className="mt-3 border border-[#e0b4b4] bg-[#fdf0f0] p-2 text-crit" role="alert" data-testid="wizard-error">
                {failedTitle}: {failure} Your entries are kept; correct the problem and click Finish again.
              </div>
            ) : null}
          </div>
        </form>
      </FormProvider>
    </Dialog>
  );
}
