import type { Toast } from "./use-vm-operations";

export function Toasts({ toasts, onDismiss }: { toasts: Toast[]; onDismiss(id: number): void }) {
  return (
    <div className="fixed right-3 bottom-8 z-40 flex w-[360px] flex-col gap-2">
      {toasts.map((t) => (
        <div key={t.id} role="alert" data-testid="toast" className="border border-[#707070] border-l-4 border-l-crit bg-white p-2 shadow-md">
          <div className="flex justify-between font-semibold">
            <span>{t.title}</span>
            <button aria-label="Dismiss" onClick={() => onDismiss(t.id)} className="px-1 hover:bg-hover">
              ✕
            </button>
          </div>
          <div className="mt-1">{t.message}</div>
        </div>
      ))}
    </div>
  );
}
