"use client";

import { useState } from "react";
import { AlertsDialog } from "@/components/dialogs/alerts-dialog";
import { DashboardLinksDialog } from "@/components/dialogs/dashboard-links-dialog";
import type { ActionItem } from "./actions-pane";
import { ContextMenu } from "./actions-pane";

/** File / Action / View / Help in the MMC manner; Action opens the current actions. */
export function MenuBar({ user, onSignOut, actions, onConnect, onUsers, onAudit }: { user: { name: string; role: string } | null; onSignOut(): void; actions: ActionItem[]; onConnect(): void; onUsers(): void; onAudit(): void }) {
  const admin = user?.role === "Administrator";
  const [open, setOpen] = useState<{ x: number; y: number; items: ActionItem[] } | null>(null);
  const [dialog, setDialog] = useState<"alerts" | "dashboard-links" | null>(null);
  const show = (e: React.MouseEvent, items: ActionItem[]) => {
    const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
    setOpen({ x: r.left, y: r.bottom, items });
  };
  const fileItems: ActionItem[] = [
    { label: "Connect to Server...", testId: "file-connect", run: onConnect, disabled: !admin },
    { label: "Users...", testId: "file-users", run: onUsers, disabled: !admin },
    { label: "Audit Log...", testId: "file-audit", run: onAudit, disabled: !admin },
    { label: "Alerts...", testId: "file-alerts", run: () => setDialog("alerts"), disabled: !admin },
    { label: "Dashboard Links...", testId: "file-dashboard-links", run: () => setDialog("dashboard-links"), disabled: !admin },
    { label: "Wall Dashboard", testId: "file-wall-dashboard", run: () => void window.open("/dashboard", "_blank") },
    { label: "Sign Out", testId: "file-sign-out", run: onSignOut },
  ];
  return (
    <div className="flex h-[24px] items-center border-b border-border-light bg-white px-1" role="menubar">
      <span className="mr-3 pl-1 font-semibold">Hyper-V Manager</span>
      <button className="px-2 hover:bg-hover" onClick={(e) => show(e, fileItems)} data-testid="menubar-file">
        File
      </button>
      <button className="px-2 hover:bg-hover" onClick={(e) => show(e, actions)} data-testid="menubar-action">
        Action
      </button>
      <button className="px-2 text-muted" disabled>
        View
      </button>
      <button className="px-2 text-muted" disabled>
        Help
      </button>
      {user ? (
        <span className="ml-auto flex items-center gap-2 pr-1" data-testid="signed-in-user">
          <span>
            {user.name} ({user.role})
          </span>
          <button className="text-link hover:underline" onClick={onSignOut} data-testid="sign-out">
            Sign out
          </button>
        </span>
      ) : null}
      {open ? <ContextMenu {...open} onClose={() => setOpen(null)} /> : null}
      {dialog === "alerts" ? <AlertsDialog onClose={() => setDialog(null)} /> : null}
      {dialog === "dashboard-links" ? <DashboardLinksDialog onClose={() => setDialog(null)} /> : null}
    </div>
  );
}
