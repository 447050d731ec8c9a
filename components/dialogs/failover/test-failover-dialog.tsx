"use client";

/** Test Failover, on the Replica server: a recovery point, and optionally a test network. Replication goes on. */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Dialog, Field, inputClass } from "@/components/ui/dialog";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { RecoveryPointList } from "./recovery-points";

export function TestFailoverDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const ref = { hostId: vm.hostId, vmId: vm.vmId };
  const points = useQuery({ ...trpc.failover.recoveryPoints.queryOptions(ref), gcTime: 0 });
  const [pointId, setPointId] = useState("latest");
  const [connect, setConnect] = useState(false);
  const [network, setNetwork] = useState("Test Network");
  const start = useMutation(trpc.failover.testFailover.mutationOptions({ onSuccess: onClose }));
  const errors = fieldErrors(start.error);
  return (
    <Dialog
      title={`Test Failover - ${vm.name}`}
      onClose={onClose}
      testId="test-failover-dialog"
      className="w-[560px]"
      footer={
        <>
          <Button variant="primary" data-testid="test-failover-ok" disabled={start.isPending || !points.data} onClick={() => start.mutate({ ...ref, pointId, network: connect ? network : null })}>
            {start.isPending ? "Creating..." : "Test Failover"}
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </>
      }
    >
      <p className="mb-2">
        A test virtual machine &quot;{vm.name} - Test&quot; is created from the recovery point you choose. Replication of {vm.name} goes on meanwhile; what the test virtual machine writes never reaches the replica.
      </p>
      <div className="mb-1">Select a recovery point:</div>
      {points.data ? <RecoveryPointList points={points.data.points} value={pointId} onChange={setPointId} /> : <div className="text-muted">{points.error ? errorMessage(points.error) : "Reading the recovery points..."}</div>}
      {errors.pointId ? <div className="mt-[2px] text-crit" data-testid="error-pointId">{errors.pointId.join(" ")}</div> : null}
      <label className="mt-3 flex items-center gap-1">
        <input type="checkbox" data-testid="test-failover-connect" checked={connect} onChange={(e) => setConnect(e.target.checked)} />
        Connect the network adapters to a test network (otherwise they stay disconnected)
      </label>
      {connect ? (
        <div className="mt-1 pl-5">
          <Field label="Test network:" htmlFor="network" error={errors.network}>
            <input id="network" data-testid="test-failover-network" className={inputClass} value={network} aria-invalid={!!errors.network} onChange={(e) => setNetwork(e.target.value)} />
          </Field>
        </div>
      ) : null}
      {start.error && !Object.keys(errors).length ? (
        <div className="mt-2 text-crit" role="alert" data-testid="dialog-error">
          {errorMessage(start.error)}
        </div>
      ) : null}
    </Dialog>
  );
}
