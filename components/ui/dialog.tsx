"use client";

import { useEffect, useRef, type ReactNode } from "react";
import { cn } from "@/components/lib/cn";

/** A modal window in the Windows manner: title bar, body, button row; Escape closes it. */
export function Dialog({ title, onClose, children, footer, className, testId }: { title: string; onClose(): void; children: ReactNode; footer: ReactNode; className?: string; testId?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const first = ref.current?.querySelector<HTMLElement>("input, select, button[data-autofocus]");
    first?.focus();
  }, []);
  // Escape closes the dialog wherever the focus went (a button that got disabled drops it).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <div className="fixed inset-0 z-50 flex items-center justify-center bg-black/10" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        ref={ref}
        role="dialog"
        aria-label={title}
        data-testid={testId}
        className={cn("flex max-h-[90vh] w-[480px] flex-col border border-[#707070] bg-chrome shadow-[0_4px_16px_rgba(0,0,0,0.25)]", className)}
      >
        <div className="flex h-[30px] items-center justify-between bg-white px-2">
          <span>{title}</span>
          <button aria-label="Close" className="h-[22px] w-[30px] hover:bg-[#e81123] hover:text-white" onClick={onClose}>
            ✕
          </button>
        </div>
        <div className="min-h-0 flex-1 overflow-auto p-3">{children}</div>
        <div className="flex justify-end gap-2 border-t border-border-light px-3 py-2">{footer}</div>
      </div>
    </div>
  );
}

export function Field({ label, error, children, htmlFor }: { label: string; error?: string[]; children: ReactNode; htmlFor: string }) {
  return (
    <div className="mb-2">
      <label htmlFor={htmlFor} className="mb-[2px] block">
        {label}
      </label>
      {children}
      {error?.length ? (
        <div className="mt-[2px] text-crit" data-testid={`error-${htmlFor}`}>
          {error.join(" ")}
        </div>
      ) : null}
    </div>
  );
}

export const inputClass = "h-[23px] w-full border border-[#7a7a7a] bg-white px-1 outline-none focus:border-select-strong aria-invalid:border-crit";
