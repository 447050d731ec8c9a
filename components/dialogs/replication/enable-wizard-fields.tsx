"use client";

/** Small pieces the wizard's pages share: a field's message beside it, radios, checkboxes. */
import type { ReactNode } from "react";
import { useFormContext } from "react-hook-form";
import { inputClass } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { sentence } from "@/components/lib/errors";
import type { RouterOutputs, Vm } from "@/components/lib/trpc";
import type { WizardField, WizardValues } from "./enable-wizard-model";

/** What the pages know besides the form: the VM, its server, the checked Replica server. */
export interface WizardContext {
  vm: Vm;
  hostName: string;
  /** The Replica server as checked on Specify Replica Server (null until then). */
  server: RouterOutputs["replication"]["checkReplicaServer"] | null;
  /** The last Test Replication Connection from Specify Connection Parameters (null until then). */
  connection: RouterOutputs["replication"]["testConnection"] | null;
  /** Another wizard built from these pages (Reverse Replication) says what it does in its own words. */
  text?: WizardText;
}

export interface WizardText {
  beforeYouBegin?: ReactNode;
  summaryIntro?: string;
  /** The Summary's "Initial replication" row. */
  initialReplication?: string;
}

export function FieldMessage({ name }: { name: WizardField }) {
  const { formState } = useFormContext<WizardValues>();
  const message = formState.errors[name]?.message;
  return message ? (
    <div className="mt-[2px] text-crit" role="alert" data-testid={`error-${name}`}>
      {sentence(String(message))}
    </div>
  ) : null;
}

export function Radio({ name, value, label, testId, disabled, children }: { name: WizardField; value: string; label: ReactNode; testId: string; disabled?: boolean; children?: ReactNode }) {
  const { register } = useFormContext<WizardValues>();
  return (
    <div className="mb-1">
      <label className={disabled ? "flex items-center gap-2 text-muted" : "flex items-center gap-2"}>
        <input type="radio" value={value} disabled={disabled} data-testid={testId} {...register(name)} />
        {label}
      </label>
      {children ? <div className="mt-1 ml-6">{children}</div> : null}
    </div>
  );
}

export function Check({ name, label, testId, disabled }: { name: WizardField; label: ReactNode; testId: string; disabled?: boolean }) {
  const { register } = useFormContext<WizardValues>();
  return (
    <label className={disabled ? "mb-1 flex items-center gap-2 text-muted" : "mb-1 flex items-center gap-2"}>
      <input type="checkbox" disabled={disabled} data-testid={testId} {...register(name)} />
      {label}
    </label>
  );
}

/** A boolean field shown as two radios (Hyper-V often asks yes/no questions that way). */
export function BoolRadios({ name, yes, no, testId }: { name: "additionalPoints" | "startLater"; yes: ReactNode; no: ReactNode; testId: string }) {
  const { watch, setValue } = useFormContext<WizardValues>();
  const on = watch(name);
  return (
    <>
      <label className="mb-1 flex items-center gap-2">
        <input type="radio" checked={!on} data-testid={`${testId}-no`} onChange={() => setValue(name, false, { shouldDirty: true })} />
        {no}
      </label>
      <label className="mb-1 flex items-center gap-2">
        <input type="radio" checked={on} data-testid={`${testId}-yes`} onChange={() => setValue(name, true, { shouldDirty: true })} />
        {yes}
      </label>
    </>
  );
}

export function Intro({ children }: { children: ReactNode }) {
  return <p className="mb-3 text-muted">{children}</p>;
}

/** The dialogs' text box, greyed out when disabled (as Windows does). */
export const wizardInput = cn(inputClass, "disabled:border-border-light disabled:bg-chrome disabled:text-muted");
