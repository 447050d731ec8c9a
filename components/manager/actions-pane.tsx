"use client";

import { useEffect, useRef, useState } from "react";
import { cn } from "@/components/lib/cn";

export interface ActionItem {
  label: string;
  testId: string;
  run?: () => void;
  disabled?: boolean;
  /** A submenu (Replication): shown as a flyout, in the pane and in the context menu. */
  children?: ActionItem[];
}

export interface ActionSection {
  title: string;
  items: ActionItem[];
}

/** A submenu opens only when one of its items can be used. */
const hasItems = (a: ActionItem) => !!a.children?.some((c) => !c.disabled && c.run);

/**
 * A flyout beside the item that opened it (to its right, or where `at` puts it in the window);
 * the first enabled entry takes the focus.
 */
function Flyout({ items, onDone, prefix, onEscape, at }: { items: ActionItem[]; onDone(): void; prefix: string; onEscape(): void; at?: React.CSSProperties }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => ref.current?.querySelector<HTMLButtonElement>("button:enabled")?.focus(), []);
  return (
    <div
      ref={ref}
      role="menu"
      data-testid={`${prefix}-submenu`}
      style={at}
      className={cn(at ? "fixed" : "absolute top-[-3px] left-full", "z-50 min-w-[210px] border border-[#a0a0a0] bg-[#f2f2f2] py-[2px] shadow-[2px_2px_4px_rgba(0,0,0,0.3)]")}
      onKeyDown={(e) => {
        // Back toward the item that opened it: left for a flyout on its right, right otherwise.
        if (e.key === "Escape" || e.key === (at ? "ArrowRight" : "ArrowLeft")) {
          e.stopPropagation();
          onEscape();
        }
        moveFocus(e, ref.current);
      }}
    >
      {items.map((a) => (
        <button
          key={a.testId}
          role="menuitem"
          data-testid={`${prefix}-${a.testId}`}
          disabled={a.disabled || !a.run}
          onClick={() => {
            onDone();
            a.run?.();
          }}
          className="flex h-[22px] w-full items-center px-6 text-left whitespace-nowrap outline-none enabled:hover:bg-[#91c9f7] enabled:focus:bg-[#91c9f7] disabled:text-muted"
        >
          {a.label}
        </button>
      ))}
    </div>
  );
}

function moveFocus(e: React.KeyboardEvent, root: HTMLElement | null) {
  if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
  e.preventDefault();
  e.stopPropagation();
  const buttons = [...(root?.querySelectorAll<HTMLButtonElement>(":scope > button:enabled, :scope > div > button:enabled") ?? [])];
  const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
  buttons[(i + (e.key === "ArrowDown" ? 1 : buttons.length - 1)) % buttons.length]?.focus();
}

/** The right-hand Actions pane: a section for the server and one for the selected VM. */
export function ActionsPane({ sections }: { sections: ActionSection[] }) {
  // The pane scrolls and sits at the window's right edge: a submenu opens to its left, placed
  // in the window (fixed) so that the pane's scrolling box does not clip it.
  const [menu, setMenu] = useState<{ id: string; at: React.CSSProperties } | null>(null);
  const open = menu?.id ?? null;
  const setOpen = (id: string | null, anchor?: HTMLElement) => {
    const r = anchor?.getBoundingClientRect();
    setMenu(id && r ? { id, at: { top: r.top - 3, right: window.innerWidth - r.left } } : null);
  };
  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => !(e.target as HTMLElement).closest("[data-submenu-root]") && setOpen(null);
    window.addEventListener("mousedown", close);
    return () => window.removeEventListener("mousedown", close);
  }, [open]);
  return (
    <div className="h-full overflow-auto bg-pane" data-testid="actions-pane">
      <div className="flex h-[22px] items-center border-b border-border-light bg-header px-2 font-semibold">Actions</div>
      {sections.map((s) => (
        <div key={s.title} className="mb-1">
          <div className="flex h-[20px] items-center bg-[#dfe8f3] px-2 font-semibold">{s.title}</div>
          {s.items.map((a) =>
            a.children ? (
              <div key={a.testId} className="relative" data-submenu-root>
                <button
                  data-testid={`action-${a.testId}`}
                  aria-haspopup="menu"
                  aria-expanded={open === a.testId}
                  disabled={a.disabled || !hasItems(a)}
                  onClick={(e) => setOpen(open === a.testId ? null : a.testId, e.currentTarget)}
                  onKeyDown={(e) => e.key === "ArrowLeft" && setOpen(a.testId, e.currentTarget)}
                  className={cn("flex h-[20px] w-full items-center px-4 text-left enabled:text-link enabled:hover:bg-hover disabled:text-muted", open === a.testId && "bg-hover")}
                >
                  {a.label}
                  <span className="ml-auto text-[9px]">▶</span>
                </button>
                {menu && open === a.testId ? <Flyout items={a.children} prefix="action" at={menu.at} onDone={() => setOpen(null)} onEscape={() => setOpen(null)} /> : null}
              </div>
            ) : (
              <button
                key={a.testId}
                data-testid={`action-${a.testId}`}
                disabled={a.disabled || !a.run}
                onClick={a.run}
                className="flex h-[20px] w-full items-center px-4 text-left enabled:text-link enabled:hover:bg-hover enabled:hover:underline disabled:text-muted"
              >
                {a.label}
              </button>
            ),
          )}
        </div>
      ))}
    </div>
  );
}

/** The same actions on right-click; closes on a click elsewhere or Escape. */
export function ContextMenu({ x, y, items, onClose }: { x: number; y: number; items: ActionItem[]; onClose(): void }) {
  const ref = useRef<HTMLDivElement>(null);
  const [sub, setSub] = useState<string | null>(null);
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
        moveFocus(e, ref.current);
      }}
    >
      {items.map((a) => (
        <div key={a.testId} className="relative" onMouseEnter={() => setSub(a.children ? a.testId : null)}>
          <button
            role="menuitem"
            data-testid={`menu-${a.testId}`}
            aria-haspopup={a.children ? "menu" : undefined}
            disabled={a.disabled || (a.children ? !hasItems(a) : !a.run)}
            onClick={() => {
              if (a.children) return setSub(a.testId);
              onClose();
              a.run?.();
            }}
            onKeyDown={(e) => a.children && e.key === "ArrowRight" && setSub(a.testId)}
            className={cn("flex h-[22px] w-full items-center px-6 text-left outline-none enabled:hover:bg-[#91c9f7] enabled:focus:bg-[#91c9f7] disabled:text-muted", sub === a.testId && "bg-[#91c9f7]")}
          >
            {a.label}
            {a.children ? <span className="ml-auto pl-4 text-[9px]">▶</span> : null}
          </button>
          {a.children && sub === a.testId ? <Flyout items={a.children} prefix="menu" onDone={onClose} onEscape={() => setSub(null)} /> : null}
        </div>
      ))}
    </div>
  );
}
