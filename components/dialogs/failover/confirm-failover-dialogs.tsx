"use client";

/** Stop Test Failover, Cancel Failover and Complete Failover: a question, then the agent's answer in the dialog. */
import { useMutation } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { errorMessage } from "@/components/lib/errors";
import { formatDateTime } from "@/components/lib/format";
import { useTRPC, type Vm } from "@/components/lib/trpc";

function FailoverConfirm({ title, testId, message, confirmLabel, busyLabel, mutation, onClose }: {
  title: string;
  testId: string;
  message: string;
  confirmLabel: string;
  busyLabel: string;
  mutation: { mutate(): void; isPending: boolean; error: unknown };
  onClose(): void;
}) {
  return (
    <Dialog
      title={title}
      onClose={onClose}
      testId={testId}
      className="w-[460px]"
      footer={
        <>
          <Button variant="primary" data-testid={`${testId}-ok`} data-autofocus disabled={mutation.isPending} onClick={() => mutation.mutate()}>
            {mutation.isPending ? busyLabel : confirmLabel}
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </>
      }
    >
      <div className="flex gap-3">
        <span className="flex h-[32px] w-[32px] shrink-0 items-center justify-center rounded-full bg-[#f0c000] text-[18px] font-bold">!</span>
        <p className="pt-1">{message}</p>
      </div>
      {mutation.error ? (
        <div className="mt-2 text-crit" role="alert" data-testid="dialog-error">
          {errorMessage(mutation.error)}
        </div>
      ) : null}
    </Dialog>
  );
}

export function StopTestFailoverDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const stop = useMutation(trpc.failover.stopTestFailover.mutationOptions({ onSuccess: onClose }));
  return (
    <FailoverConfirm
      title="Stop Test Failover"
      testId="stop-test-failover"
      message={`Stop the test failover of ${vm.name}? The virtual machine "${vm.name} - Test" is turned off and deleted, with everything written to it.`}
      confirmLabel="Stop Test Failover"
      busyLabel="Stopping..."
      mutation={{ ...stop, mutate: () => stop.mutate({ hostId: vm.hostId, vmId: vm.vmId }) }}
      onClose={onClose}
    />
  );
}

export function CancelFailoverDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const cancel = useMutation(trpc.failover.cancelFailover.mutationOptions({ onSuccess: onClose }));
  return (
    <FailoverConfirm
      title="Cancel Failover"
      testId="cancel-failover"
      message={`Cancel the failover of ${vm.name}? The virtual machine is turned off, what it wrote since the failover is discarded, and it becomes a replica again as before; you can then fail over to another recovery point.`}
      confirmLabel="Cancel Failover"
      busyLabel="Cancelling..."
      mutation={{ ...cancel, mutate: () => cancel.mutate({ hostId: vm.hostId, vmId: vm.vmId }) }}
      onClose={onClose}
    />
  );
}

export function CompleteFailoverDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const complete = useMutation(trpc.failover.completeFailover.mutationOptions({ onSuccess: onClose }));
  const point = vm.replication?.failover?.pointAt;
  return (
    <FailoverConfirm
      title="Complete Failover"
      testId="complete-failover"
      message={`Complete the failover of ${vm.name} to the recovery point of ${formatDateTime(point ?? null)}? The other recovery points are deleted and the failover can no longer be cancelled. Then use Reverse Replication to protect the virtual machine again.`}
      confirmLabel="Complete"
      busyLabel="Completing..."
      mutation={{ ...complete, mutate: () => complete.mutate({ hostId: vm.hostId, vmId: vm.vmId }) }}
      onClose={onClose}
    />
  );
}
