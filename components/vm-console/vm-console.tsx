"use client";

/** Virtual Machine Connection: a QEMU VM's screen in its own window, with a toolbar and a status line. */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Button } from "@/components/ui/button";
import { useTRPC } from "@/components/lib/trpc";
import { useRfb, type ScreenStatus } from "./use-rfb";

function statusText(status: ScreenStatus, name: string): string {
  if (status.kind === "connecting") return `Connecting to '${name}'...`;
  if (status.kind === "connected") return `Connected to '${name}' (${status.width} × ${status.height})`;
  return `Disconnected: ${status.reason}`;
}

export function VmConsole({ hostId, vmId }: { hostId: string; vmId: string }) {
  const trpc = useTRPC();
  const hosts = useQuery(trpc.hosts.list.queryOptions());
  const vms = useQuery(trpc.vms.list.queryOptions({ hostId }));
  const host = hosts.data?.find((h) => h.id === hostId);
  const vm = vms.data?.find((v) => v.vmId === vmId);
  const name = vm?.name ?? "virtual machine";

  const screen = useRef<HTMLDivElement>(null);
  const [attempt, setAttempt] = useState(0);
  const [fit, setFit] = useState(true);
  const { rfb, status } = useRfb(screen, `/api/vm-console?${new URLSearchParams({ hostId, vmId })}`, attempt);
  const connected = status.kind === "connected";

  useEffect(() => {
    if (rfb.current) rfb.current.scaleViewport = fit;
  }, [rfb, fit, status]);
  useEffect(() => {
    document.title = `${name}${host ? ` on ${host.name}` : ""} - Virtual Machine Connection`;
  }, [name, host]);

  return (
    <div className="flex h-full flex-col">
      <div className="flex h-[30px] shrink-0 items-center gap-1 border-b border-border bg-chrome px-1" role="toolbar" aria-label="Virtual Machine Connection">
        <Button data-testid="vm-console-cad" disabled={!connected} title="Send Ctrl+Alt+Delete to the virtual machine" onClick={() => rfb.current?.sendCtrlAltDel()}>
          Ctrl+Alt+Del
        </Button>
        <label className="ml-2 flex items-center gap-1">
          <input type="checkbox" data-testid="vm-console-fit" checked={fit} onChange={(e) => setFit(e.target.checked)} />
          Fit to window
        </label>
        <Button className="ml-2" data-testid="vm-console-reconnect" disabled={status.kind !== "disconnected"} onClick={() => setAttempt((n) => n + 1)}>
          Reconnect
        </Button>
        <span className="ml-auto pr-1 text-muted">{host ? `${name} on ${host.name}` : null}</span>
      </div>
      <div className="relative min-h-0 flex-1 bg-black">
        <div ref={screen} className="absolute inset-0" data-testid="vm-console-screen" onMouseDown={() => rfb.current?.focus()} />
        {status.kind !== "connected" ? (
          <div className="pointer-events-none absolute inset-0 flex items-center justify-center text-[13px] text-white/80">{status.kind === "connecting" ? "Connecting..." : "Not connected"}</div>
        ) : null}
      </div>
      <div
        className={`flex h-[22px] shrink-0 items-center border-t border-border bg-chrome px-2 ${status.kind === "disconnected" ? "text-crit" : "text-muted"}`}
        data-testid="vm-console-status"
        data-state={status.kind}
        role="status"
      >
        {statusText(status, name)}
      </div>
    </div>
  );
}
