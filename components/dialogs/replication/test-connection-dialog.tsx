"use client";

/**
 * Test Replication Connection (Hyper-V's Test-VMReplicationConnection), for a primary VM: its
 * server reaches the Replica server with the relationship's port and authentication and lists
 * each check (reach, certificate, authentication, authorization), the failure with its fix.
 */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, sentence } from "@/components/lib/errors";
import { useTRPC, type Vm } from "@/components/lib/trpc";
import { ref } from "./simple-dialogs";

const CHECK_LABELS: Record<string, string> = {
  credentials: "Credentials of this server",
  connection: "Connection to the replication port",
  certificate: "Replica server's certificate",
  authentication: "Authentication of this server",
  authorization: "Authorization on the Replica server",
};

const STATUS: Record<string, { label: string; className: string }> = {
  passed: { label: "Passed", className: "text-ok" },
  failed: { label: "Failed", className: "text-crit font-semibold" },
  skipped: { label: "Not checked", className: "text-muted" },
};

export function TestConnectionDialog({ vm, onClose }: { vm: Vm; onClose(): void }) {
  const trpc = useTRPC();
  const settings = useQuery(trpc.replication.settings.queryOptions(ref(vm)));
  const test = useMutation(trpc.replication.testConnection.mutationOptions());
  const s = settings.data;
  const run = () => s && test.mutate({ hostId: vm.hostId, replicaServer: s.replicaServer, replicaPort: s.replicaPort, authMode: s.authMode });
  const ran = useRef(false);
  useEffect(() => {
    if (s && !ran.current) {
      ran.current = true;
      run();
    }
  });
  const r = test.data;
  return (
    <Dialog
      title="Test Replication Connection"
      onClose={onClose}
      testId="test-connection-dialog"
      className="w-[700px]"
      footer={
        <>
          <Button data-testid="test-connection-again" disabled={!s || test.isPending} onClick={run}>
            Test Again
          </Button>
          <Button variant="primary" data-testid="dialog-ok" data-autofocus onClick={onClose}>
            Close
          </Button>
        </>
      }
    >
      <p className="mb-2">
        {vm.replication?.primaryServer ?? "This server"} connects to the Replica server{" "}
        {s ? (
          <b>
            {s.replicaServer}, port {s.replicaPort} ({s.authMode === "https" ? "certificate-based authentication, HTTPS" : "HTTP with a shared token"})
          </b>
        ) : (
          "..."
        )}{" "}
        and asks it whether it would accept replication of &apos;{vm.name}&apos;. Nothing is changed on either server.
      </p>
      {settings.error ? <div className="text-crit" role="alert" data-testid="dialog-error">{errorMessage(settings.error)}</div> : null}
      {test.error ? <div className="text-crit" role="alert" data-testid="dialog-error">{errorMessage(test.error)}</div> : null}
      {test.isPending ? (
        <div role="status" data-testid="test-connection-progress">
          Testing the connection...
          <div className="mt-1 h-[14px] w-full overflow-hidden border border-border bg-pane">
            <div className="h-full w-full animate-pulse bg-[#06b025]" />
          </div>
        </div>
      ) : null}
      {r && !test.isPending ? (
        <>
          <div className={cn("mb-2 border p-2", r.ok ? "border-[#b4d8b4] bg-[#f0f8f0] text-ok" : "border-[#e0b4b4] bg-[#fdf0f0] text-crit")} data-testid="test-connection-result">
            {r.ok
              ? `The connection to ${r.replicaServer} works: it accepts replication from this server (trust group ${r.trustGroup}). Tested in ${r.durationMs} ms.`
              : sentence(r.failure?.message ?? "the connection failed")}
          </div>
          <table className="w-full border-collapse bg-pane" data-testid="test-connection-checks">
            <thead>
              <tr className="bg-header text-left">
                <th className="border border-border-light px-1 font-normal">Check</th>
                <th className="w-[90px] border border-border-light px-1 font-normal">Result</th>
                <th className="border border-border-light px-1 font-normal">Details</th>
              </tr>
            </thead>
            <tbody>
              {r.checks.map((c) => (
                <tr key={c.name} data-testid={`test-connection-check-${c.name}`} className="align-top">
                  <td className="whitespace-nowrap border border-border-light px-1">{CHECK_LABELS[c.name] ?? c.name}</td>
                  <td className={cn("border border-border-light px-1", STATUS[c.status]?.className)}>{STATUS[c.status]?.label ?? c.status}</td>
                  <td className="border border-border-light px-1">{sentence(c.message)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </Dialog>
  );
}
