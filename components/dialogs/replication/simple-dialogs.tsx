"use client";

/**
 * The Replication submenu's small dialogs: Resynchronize, Import Initial Replica, Remove
 * Replication, and Pause/Resume (run at once; a failure shows as a toast).
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState, type ReactNode } from "react";
import { Button } from "@/components/ui/button";
import { Dialog, Field } from "@/components/ui/dialog";
import { Toasts } from "@/components/manager/toasts";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { formatDateTime } from "@/components/lib/format";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { localToIso } from "./enable-wizard-model";
import { wizardInput } from "./enable-wizard-fields";

/** A dialog whose OK runs one call: progress while it runs, the failure inside the dialog. */
export function ActionDialog(props: { title: string; testId: string; okLabel: string; busyLabel: string; pending: boolean; error: unknown; onOk(): void; onClose(): void; okDisabled?: boolean; children: ReactNode }) {
  const hasFields = Object.keys(fieldErrors(props.error)).length > 0;
  return (
    <Dialog
      title={props.title}
      onClose={props.onClose}
      testId={props.testId}
      className="w-[500px]"
      footer={
        <>
          <Button variant="primary" data-testid="dialog-ok" data-autofocus disabled={props.pending || props.okDisabled} onClick={props.onOk}>
            {props.pending ? props.busyLabel : props.okLabel}
          </Button>
          <Button data-testid="dialog-cancel" onClick={props.onClose} disabled={props.pending}>
            Cancel
          </Button>
        </>
      }
    >
      {props.children}
      {props.error && !hasFields ? (
        <div className="mt-2 text-crit" role="alert" data-testid="dialog-error">
          {errorMessage(props.error)}
        </div>
      ) : null}
    </Dialog>
  );
}

export const ref = (vm: Vm) => ({ hostId: vm.hostId, vmId: vm.vmId });

export function ResynchronizeDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const settings = useQuery(trpc.replication.settings.queryOptions(ref(vm)));
  const [later, setLater] = useState(false);
  const [at, setAt] = useState("");
  const resync = useMutation(trpc.replication.resynchronize.mutationOptions({ onSuccess: onClose }));
  const errors = fieldErrors(resync.error);
  const policy = settings.data?.resyncPolicy;
  const policyText = !policy ? "..." : policy.mode === "manual" ? "Manually" : policy.mode === "automatic" ? "Automatically" : `During ${policy.start}-${policy.end}`;
  const ok = () => {
    if (!later) return resync.mutate(ref(vm));
    resync.mutate({ ...ref(vm), at: localToIso(at) ?? at });
  };
  return (
    <ActionDialog title="Resynchronize" testId="resynchronize-dialog" okLabel="Resynchronize" busyLabel="Starting..." pending={resync.isPending} error={resync.error} onOk={ok} onClose={onClose}>
      <p className="mb-2">
        Replication of &apos;{vm.name}&apos; needs a resynchronization: {vm.replication?.reason ?? "the replica may lack changes."} The disks are compared block by block and only the blocks that differ are sent; the older recovery points are deleted afterwards.
      </p>
      <p className="mb-2" data-testid="resync-policy">
        Resynchronization policy: <b>{policyText}</b> (change it in Replication Settings...)
        {settings.data?.resyncAt ? `; scheduled for ${formatDateTime(settings.data.resyncAt)}` : ""}
      </p>
      <label className="mb-1 flex items-center gap-2">
        <input type="radio" checked={!later} data-testid="resync-now" onChange={() => (setLater(false), resync.reset())} />
        Resynchronize now
      </label>
      <label className="mb-1 flex items-center gap-2">
        <input type="radio" checked={later} data-testid="resync-later" onChange={() => (setLater(true), resync.reset())} />
        Resynchronize on (up to 7 days ahead):
      </label>
      <div className="ml-6">
        <input type="datetime-local" data-testid="resync-at" disabled={!later} className={cn(wizardInput, "w-[220px]")} value={at} onChange={(e) => (setAt(e.target.value), resync.reset())} aria-invalid={!!errors.at} />
        {errors.at ? <div className="mt-[2px] text-crit" data-testid="error-at">{errors.at.join(" ")}</div> : null}
      </div>
    </ActionDialog>
  );
}

export function ImportInitialReplicaDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const [folder, setFolder] = useState("");
  const imp = useMutation(trpc.replication.importInitial.mutationOptions({ onSuccess: onClose }));
  const errors = fieldErrors(imp.error);
  return (
    <ActionDialog title="Import Initial Replica" testId="import-initial-dialog" okLabel="Import" busyLabel="Importing..." pending={imp.isPending} error={imp.error} onOk={() => imp.mutate({ ...ref(vm), folder })} onClose={onClose}>
      <p className="mb-2">&apos;{vm.name}&apos; waits for its initial copy, exported on {vm.replication?.primaryServer} to external media. Bring the folder to this server and give its location here; each disk image is checked against the export&apos;s manifest as it is copied.</p>
      <Field label="Folder with the exported initial copy:" htmlFor="folder" error={errors.folder}>
        <input id="folder" data-testid="import-folder" className={wizardInput} placeholder="/media/usb/sql-01" value={folder} onChange={(e) => (setFolder(e.target.value), imp.reset())} aria-invalid={!!errors.folder} />
      </Field>
      {imp.isPending ? <p data-testid="import-progress">Copying and checking the disk images; this takes as long as copying the disks...</p> : null}
    </ActionDialog>
  );
}

export function RemoveReplicationDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const remove = useMutation(trpc.replication.remove.mutationOptions({ onSuccess: onClose }));
  const r = vm.replication;
  const primary = r?.mode === "Primary";
  return (
    <ActionDialog title="Remove Replication" testId="remove-replication-dialog" okLabel="Remove Replication" busyLabel="Removing..." pending={remove.isPending} error={remove.error} onOk={() => remove.mutate(ref(vm))} onClose={onClose}>
      <div className="flex gap-3">
        <span className="flex h-[32px] w-[32px] shrink-0 items-center justify-center rounded-full bg-[#f0c000] text-[18px] font-bold">!</span>
        <div className="space-y-2 pt-1" data-testid="remove-explanation">
          {primary ? (
            <>
              <p>Remove replication of &apos;{vm.name}&apos; on the primary server {r?.primaryServer}?</p>
              <p>Change tracking stops and no more changes are sent. The virtual machine itself is not changed. On the Replica server {r?.replicaServer}, the Replica virtual machine and its recovery points are kept until you remove replication there too.</p>
            </>
          ) : (
            <>
              <p>Remove replication of &apos;{vm.name}&apos; on the Replica server {r?.replicaServer}?</p>
              <p>The Replica virtual machine is kept, as an ordinary virtual machine with its disks as of the last replicated cycle; it can then be started. Its recovery points are deleted. The primary server {r?.primaryServer} is not told: remove replication there too.</p>
            </>
          )}
        </div>
      </div>
    </ActionDialog>
  );
}

/** Pause Replication / Resume Replication: no dialog; a failure appears as a toast tied to the VM. */
export function PauseResume({ vm, action, onClose }: { vm: Vm; action: "pause" | "resume"; onClose(): void }) {
  const trpc = useTRPC();
  const pause = useMutation(trpc.replication.pause.mutationOptions());
  const resume = useMutation(trpc.replication.resume.mutationOptions());
  const [failure, setFailure] = useState<string | null>(null);
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    (action === "pause" ? pause : resume).mutateAsync(ref(vm)).then(onClose, (err: unknown) => setFailure(errorMessage(err)));
  }, [action, vm, pause, resume, onClose]);
  useEffect(() => {
    if (!failure) return;
    const t = setTimeout(onClose, 12_000);
    return () => clearTimeout(t);
  }, [failure, onClose]);
  if (!failure) return null;
  return <Toasts toasts={[{ id: 1, title: `Could not ${action} replication of '${vm.name}'`, message: failure }]} onDismiss={onClose} />;
}
