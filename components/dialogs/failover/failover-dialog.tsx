"use client";

/**
 * Failover (unplanned), on the Replica server when the primary is lost: choose a recovery
 * point and see the data it gives up; the agent refuses while the primary VM is known to run,
 * and the dialog lists what it checked.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { errorMessage } from "@/components/lib/errors";
import { formatDateTime } from "@/components/lib/format";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { formatSeconds, RecoveryPointList, type RecoveryPoints } from "./recovery-points";

function DataLoss({ data, pointId }: { data: RecoveryPoints; pointId: string }) {
  const p = data.points.find((x) => x.id === pointId);
  if (!p) return null;
  const lines = [
    p.kind === "latest"
      ? `Changes the primary made after the last replication (${formatDateTime(data.lastReplicatedAt)}) are lost.`
      : `Changes after ${formatDateTime(p.at)} are lost: ${p.secondsBeforeLastReplicated < 1 ? "less than a second" : formatSeconds(p.secondsBeforeLastReplicated)} of replicated changes (up to ${formatDateTime(data.lastReplicatedAt)}), and whatever the primary wrote after that.`,
  ];
  const { primary } = data;
  if (primary.vmState === "Running" || primary.vmState === "Paused") {
    lines.push(`${primary.host} was ${primary.status === "connected" ? "reached just now" : `last seen ${formatDateTime(primary.lastSeenAt)}`} with ${primary.vmState === "Running" ? "the virtual machine running" : "the virtual machine paused"}${p.secondsBeforePrimaryLastSeen ? `: up to ${formatSeconds(p.secondsBeforePrimaryLastSeen)} of its writes since the point may be lost` : ": its writes since the last replication may be lost"}.`);
  } else if (primary.vmState) {
    lines.push(`${primary.host} last reported the virtual machine ${primary.vmState} (${primary.status}).`);
  }
  return (
    <div className="mt-2 border border-[#e8d28a] bg-[#fff8e0] px-2 py-1" data-testid="data-loss">
      <div className="font-semibold">Data loss</div>
      {lines.map((l) => (
        <div key={l}>{l}</div>
      ))}
    </div>
  );
}

export function FailoverDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const ref = { hostId: vm.hostId, vmId: vm.vmId };
  const points = useQuery({ ...trpc.failover.recoveryPoints.queryOptions(ref), gcTime: 0 });
  const [pointId, setPointId] = useState("latest");
  const [start, setStart] = useState(true);
  const failover = useMutation(trpc.failover.failover.mutationOptions({ onSuccess: onClose }));
  // A refusal with checks comes as its reason, then one "Passed:/Failed:" line per check.
  const lines = failover.error ? errorMessage(failover.error).split("\n") : [];
  const refusal = lines.length > 1 ? ["The failover was refused. What was checked:", ...lines.slice(1)] : lines;
  return (
    <Dialog
      title={`Failover - ${vm.name}`}
      onClose={onClose}
      testId="failover-dialog"
      className="w-[620px]"
      footer={
        <>
          <Button variant="primary" data-testid="failover-ok" disabled={failover.isPending || !points.data} onClick={() => failover.mutate({ ...ref, pointId, start })}>
            {failover.isPending ? "Failing over..." : "Fail Over"}
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </>
      }
    >
      <p className="mb-2">
        Fail over when the primary server of {vm.name} ({vm.replication?.primaryServer}) is lost. The virtual machine runs here from the recovery point you choose; you can then Complete the failover, or Cancel it and choose another point.
      </p>
      <div className="mb-1">Select a recovery point:</div>
      {points.data ? <RecoveryPointList points={points.data.points} value={pointId} onChange={setPointId} showLoss /> : <div className="text-muted">{points.error ? errorMessage(points.error) : "Reading the recovery points..."}</div>}
      {points.data ? <DataLoss data={points.data} pointId={pointId} /> : null}
      <label className="mt-2 flex items-center gap-1">
        <input type="checkbox" data-testid="failover-start" checked={start} onChange={(e) => setStart(e.target.checked)} />
        Start the virtual machine after failover
      </label>
      {refusal.length ? (
        <div className="mt-2 border border-[#e0b4b4] bg-[#fdf0f0] px-2 py-1" role="alert" data-testid="dialog-error">
          {refusal.map((l) => (
            <div key={l} className={l.startsWith("Failed:") ? "text-crit" : l.startsWith("Passed:") ? "text-ok" : ""}>
              {l}
            </div>
          ))}
        </div>
      ) : null}
    </Dialog>
  );
}
