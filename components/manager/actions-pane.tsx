"use client";

import { useEffect, useRef } from "react";
import { cn } from "@/components/lib/cn";

export interface ActionItem {
  label: string;
  testId: string;
  run?: () => void;
  disabled?: boolean;
  /** Shown as a heading row with a submenu arrow (filled by later issues). */
  submenu?: boolean;
}

export interface ActionSection {
  title: string;
  items: ActionItem[];
}

/** The right-hand Actions pane: a section for the server and one for the selected VM. */
export function ActionsPane({ sections }: { sections: ActionSection[] }) {
  return (
    <div className="h-full overflow-auto bg-pane" data-testid="actions-pane">
      <div className="flex h-[22px] items-center border-b border-border-light bg-header px-2 font-semibold">Actions</div>
      {sections.map((s) => (
        <div key={s.title} className="mb-1">
          <div className="flex h-[20px] items-center bg-[#dfe8f3] px-2 font-semibold">{s.title}</div>
          {s.items.map((a) => (
            <button
              key={a.testId}
              data-testid={`action-${a.testId}`}
              disabled={a.disabled || !a.run}
              onClick={a.run}
              className="flex h-[20px] w-full items-center px-4 text-left enabled:text-link enabled:hover:bg-hover enabled:hover:underline disabled:text-muted"
            >
              {a.label}
              {a.submenu ? <span className="ml-auto text-[9px]">▶</span> : null}
            </button>
          ))}
        </div>
      ))}
    </div>
  );
}

/** The same actions on right-click; closes on a click elsewhere or Escape. */
export function ContextMenu({ x, y, items, onClose }: { x: number; y: number; items: ActionItem[]; onClose(): void }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.querySelector<HTMLButtonElement>("button:enabled")?.focus();
    const close = (e: MouseEvent) => !ref.current?.contains(e.target as Node) && onClose();
    window.addEventListener("mousedown", close);
    return () => window.removeEventListener("mousedown", close);
  }, [onClose]);
  return (
    <div
      ref={ref}
      role="menu"
      data-testid="context-menu"
      style={{ left: x, top: y }}
      className="fixed z-50 min-w-[180px] border border-[#a0a0a0] bg-[#f2f2f2] py-[2px] shadow-[2px_2px_4px_rgba(0,0,0,0.3)]"
      onKeyDown={(e) => {
        if (e.key === "Escape") onClose();
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          const buttons = [...(ref.current?.querySelectorAll<HTMLButtonElement>("button:enabled") ?? [])];
          const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
          buttons[(i + (e.key === "ArrowDown" ? 1 : buttons.length - 1)) % buttons.length]?.focus();
        }
      }}
    >
      {items.map((a) => (
        <button
          key={a.testId}
          role="menuitem"
          data-testid={`menu-${a.testId}`}
          disabled={a.disabled || !a.run}
          onClick={() => {
            onClose();
            a.run?.();
          }}
          className={cn("flex h-[22px] w-full items-center px-6 text-left outline-none enabled:hover:bg-[#91c9f7] enabled:focus:bg-[#91c9f7] disabled:text-muted")}
        >
          {a.label}
          {a.submenu ? <span className="ml-auto pl-4 text-[9px]">▶</span> : null}
        </button>
      ))}
    </div>
  );
}
