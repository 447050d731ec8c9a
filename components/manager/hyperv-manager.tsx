"use client";

/** The Hyper-V Manager screen: servers on the left, their VMs in the centre, actions on the right. */
import { useMutation, useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useState } from "react";
import { AuditDialog } from "@/components/dialogs/audit-dialog";
import { ConfirmDialog, type ConfirmRequest } from "@/components/dialogs/confirm-dialog";
import { ConnectServerDialog } from "@/components/dialogs/connect-server-dialog";
import { HyperVSettingsDialog } from "@/components/dialogs/hyperv-settings-dialog";
import { NewVmWizard } from "@/components/dialogs/new-vm-wizard";
import { UsersDialog } from "@/components/dialogs/users-dialog";
import { VmSettingsDialog } from "@/components/dialogs/vm-settings-dialog";
import { FailoverDialogs } from "@/components/dialogs/failover";
import { ReplicationDialogs } from "@/components/dialogs/replication";
import { ReplicationHealthDialog } from "@/components/dialogs/replication-health";
import { ALL_HOSTS, useLiveFleet } from "@/components/lib/live";
import { useTRPC, type Host, type Vm } from "@/components/lib/trpc";
import { ActionsPane, ContextMenu, type ActionItem } from "./actions-pane";
import { BottomPane } from "./bottom-pane";
import { useJobStatuses } from "@/components/lib/jobs";
import { HostTree } from "./host-tree";
import { MenuBar } from "./menu-bar";
import { Toasts } from "./toasts";
import { useVmOperations } from "./use-vm-operations";
import { VmDetails } from "./vm-details";
import { VmList, vmKey } from "./vm-list";
import { hostActionItems, vmActionItems } from "./action-items";
import type { ReplicationDialogRequest } from "./replication-items";
import { mayOperate } from "@/components/lib/vm-actions";
import { openVmConsole, platformLabel } from "@/components/vm-console/open";

type Modal = { kind: "connect" } | { kind: "vm-settings"; vm: Vm } | { kind: "users" } | { kind: "audit" } | { kind: "new-vm"; host: Host } | { kind: "settings"; host: Host } | { kind: "confirm"; request: ConfirmRequest } | { kind: "replication"; request: ReplicationDialogRequest } | null;

export function HyperVManager() {
  const trpc = useTRPC();
  const me = useQuery(trpc.auth.me.queryOptions());
  const hosts = useQuery(trpc.hosts.list.queryOptions());
  const [hostId, setHostId] = useState<string | null>(null);
  const [vmId, setVmId] = useState<string | null>(null);
  const [modal, setModal] = useState<Modal>(null);
  const [menu, setMenu] = useState<{ x: number; y: number; items: ActionItem[] } | null>(null);
  const live = useLiveFleet(hostId);
  const ops = useVmOperations();
  /** View Events from View Replication Health: the events pane shows that VM only. */
  const [eventsOfVm, setEventsOfVm] = useState(0);

  const all = hostId === ALL_HOSTS;
  const host = hosts.data?.find((h) => h.id === hostId);
  useEffect(() => {
    if (hosts.data && !host && !all) setHostId(hosts.data[0]?.id ?? null);
  }, [hosts.data, host, all]);
  const vms = useQuery({ ...trpc.vms.list.queryOptions(all ? {} : { hostId: hostId ?? "" }), enabled: !!hostId });
  const vm = vms.data?.find((v) => vmKey(v) === vmId);
  const jobStatuses = useJobStatuses(vms.data);
  const statuses = useMemo(() => ({ ...jobStatuses, ...ops.pending }), [jobStatuses, ops.pending]);
  const servers = useMemo(() => (all ? new Map((hosts.data ?? []).map((h) => [h.id, h.name])) : undefined), [all, hosts.data]);

  const refresh = useMutation(trpc.hosts.refresh.mutationOptions({ onError: (e) => ops.toast("Could not refresh", e.message) }));
  const removeHost = useMutation(trpc.hosts.remove.mutationOptions({ onError: (e) => ops.toast("Could not remove the server", e.message) }));
  const logout = useMutation(trpc.auth.logout.mutationOptions({ onSettled: () => window.location.assign("/login") }));

  const role = me.data?.role;
  const confirm = useCallback((request: ConfirmRequest) => setModal({ kind: "confirm", request }), []);
  // Items are built for the server or VM they act on: a right-click acts on what was clicked,
  // not on what was selected before.
  const itemsForHost = useCallback(
    (h: Host | undefined) =>
      hostActionItems({
        host: h,
        role,
        connect: () => setModal({ kind: "connect" }),
        newVm: (x) => setModal({ kind: "new-vm", host: x }),
        settings: (x) => setModal({ kind: "settings", host: x }),
        refresh: (x) => refresh.mutate({ id: x.id }),
        remove: (x) => confirm({ title: "Remove Server", message: `Remove ${x.name} from Hyper-V Manager? Its virtual machines keep running; you can connect to it again later.`, confirmLabel: "Remove", onConfirm: () => removeHost.mutate({ id: x.id }) }),
      }),
    [role, refresh, removeHost, confirm],
  );
  const itemsForVm = useCallback(
    (v: Vm) =>
      vmActionItems({
        vm: v,
        role,
        pending: ops.pending[vmKey(v)],
        ops,
        confirm,
        settings: (x) => setModal({ kind: "vm-settings", vm: x }),
        replication: (x, kind) => setModal({ kind: "replication", request: { kind, vm: x } }),
        hasScreen: hosts.data?.find((h) => h.id === v.hostId)?.hypervisor === "qemu",
        connect: openVmConsole,
      }),
    [role, ops, confirm, hosts.data],
  );
  const hostItems = useMemo(() => itemsForHost(host), [itemsForHost, host]);
  const vmItems = useMemo(() => (vm ? itemsForVm(vm) : []), [itemsForVm, vm]);

  // F5 refreshes the selected server, as in the MMC.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "F5") return;
      e.preventDefault();
      hostItems.find((i) => i.testId === "refresh" && !i.disabled)?.run?.();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [hostItems]);

  const openMenu = (e: React.MouseEvent, items: ActionItem[]) => {
    e.preventDefault();
    setMenu({ x: e.clientX, y: e.clientY, items });
  };
  const onListKey = (e: React.KeyboardEvent) => {
    const run = (id: string) => vmItems.find((i) => i.testId === id && !i.disabled)?.run?.();
    if (e.key === "Delete") run("delete");
    if (e.key === "Enter" && e.ctrlKey) run("start");
    if (e.key === "ContextMenu" || (e.key === "F10" && e.shiftKey)) {
      e.preventDefault();
      setMenu({ x: 300, y: 200, items: vmItems });
    }
  };

  return (
    <div className="flex h-full flex-col">
      <MenuBar user={me.data ?? null} onSignOut={() => logout.mutate()} actions={vm ? vmItems : hostItems} onConnect={() => setModal({ kind: "connect" })} onUsers={() => setModal({ kind: "users" })} onAudit={() => setModal({ kind: "audit" })} />
      <div className="flex min-h-0 flex-1 gap-[3px] p-[3px]">
        <div className="w-[210px] shrink-0 border border-border">
          <HostTree hosts={hosts.data ?? []} selectedId={hostId} onSelect={(id) => (setHostId(id), setVmId(null))} onContextMenu={(e, h) => openMenu(e, itemsForHost(h))} />
        </div>
        <div className="flex min-w-0 flex-1 flex-col gap-[3px]">
          {host?.status === "unreachable" ? (
            <div className="border border-[#e0b4b4] bg-[#fdf0f0] px-2 py-1" role="status" data-testid="host-unreachable">
              Cannot connect to {host.name}: {host.statusReason ?? "unknown reason"}. The list shows what was known when it was last connected.
            </div>
          ) : null}
          <div className="min-h-0 flex-[3] border border-border" onDoubleClick={(e) => (e.target as HTMLElement).closest("[data-testid^=vm-row-]") && vmItems.find((i) => i.testId === "connect" && !i.disabled)?.run?.()}>
            {host || all ? (
              <VmList vms={vms.data ?? []} selectedId={vmId} pending={statuses} servers={servers} onSelect={setVmId} onContextMenu={(e, v) => openMenu(e, itemsForVm(v))} onKey={onListKey} />
            ) : (
              <div className="flex h-full items-center justify-center bg-pane text-muted">{hosts.isLoading ? "Loading..." : "Connect to a server to manage its virtual machines (Action > Connect to Server...)."}</div>
            )}
          </div>
          <div className="min-h-0 flex-[2] border border-border">
            <VmDetails vm={vm} />
          </div>
          <div className="min-h-0 flex-[2] border border-border">
            <BottomPane hostId={host?.id} vm={vm} role={role} onlyVmRequest={eventsOfVm} />
          </div>
        </div>
        <div className="w-[230px] shrink-0 border border-border">
          <ActionsPane sections={[{ title: host?.name ?? "Hyper-V Manager", items: hostItems }, ...(vm ? [{ title: vm.name, items: vmItems }] : [])]} />
        </div>
      </div>
      <div className="flex h-[22px] items-center gap-4 border-t border-border bg-chrome px-2 text-muted" data-testid="status-bar">
        <span data-testid="live-status">{live.connected ? "Live updates connected" : "Live updates disconnected; reconnecting..."}</span>
        {host ? <span>{host.name}: {host.status === "connected" ? `${vms.data?.length ?? 0} virtual machines` : host.status}</span> : null}
        {host?.hypervisor ? <span data-testid="host-platform">{platformLabel(host)}</span> : null}
        {all ? <span>{hosts.data?.length ?? 0} servers, {vms.data?.length ?? 0} virtual machines</span> : null}
      </div>
      {menu ? <ContextMenu {...menu} onClose={() => setMenu(null)} /> : null}
      {modal?.kind === "connect" ? <ConnectServerDialog onClose={() => setModal(null)} onConnected={(id) => (setModal(null), setHostId(id))} /> : null}
      {modal?.kind === "new-vm" ? <NewVmWizard hostId={modal.host.id} hostName={modal.host.name} onClose={() => setModal(null)} onCreated={(id) => (setModal(null), setVmId(vmKey({ hostId: modal.host.id, vmId: id })))} /> : null}
      {modal?.kind === "settings" ? <HyperVSettingsDialog hostId={modal.host.id} hostName={modal.host.name} readOnly={role !== "Administrator"} onClose={() => setModal(null)} /> : null}
      {modal?.kind === "users" && me.data ? <UsersDialog me={me.data.name} onClose={() => setModal(null)} /> : null}
      {modal?.kind === "vm-settings" ? (
        <VmSettingsDialog vm={modal.vm} hostName={hosts.data?.find((h) => h.id === modal.vm.hostId)?.name ?? ""} canEdit={role === "Administrator"} onClose={() => setModal(null)} />
      ) : null}
      {modal?.kind === "audit" ? <AuditDialog onClose={() => setModal(null)} /> : null}
      {modal?.kind === "confirm" ? <ConfirmDialog request={modal.request} onClose={() => setModal(null)} /> : null}
      {modal?.kind === "replication" ? (
        <>
          <ReplicationDialogs request={modal.request} onClose={() => setModal(null)} />
          <FailoverDialogs request={modal.request} onClose={() => setModal(null)} />
          {modal.request.kind === "health" ? (
            <ReplicationHealthDialog
              vm={modal.request.vm}
              canReset={mayOperate(role)}
              onClose={() => setModal(null)}
              onViewEvents={() => {
                const v = modal.request.vm;
                setModal(null);
                setHostId(v.hostId);
                setVmId(vmKey(v));
                setEventsOfVm((n) => n + 1);
              }}
            />
          ) : null}
        </>
      ) : null}
      <Toasts toasts={ops.toasts} onDismiss={ops.dismiss} />
    </div>
  );
}
