"use client";

/** The audit log (Administrators): who changed what, when, and whether it worked; newest first. */
import { useQuery } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { errorMessage } from "@/components/lib/errors";
import { useTRPC } from "@/components/lib/trpc";

export function AuditDialog({ onClose }: { onClose(): void }) {
  const trpc = useTRPC();
  const entries = useQuery(trpc.events.audit.queryOptions({ limit: 500 }));
  return (
    <Dialog title="Audit Log" onClose={onClose} testId="audit-dialog" className="w-[900px]" footer={<Button onClick={onClose} data-autofocus>Close</Button>}>
      {entries.error ? <div className="text-crit">{errorMessage(entries.error)}</div> : null}
      <div className="max-h-[60vh] overflow-auto border border-border-light bg-white">
        <table className="w-full table-fixed border-collapse">
          <thead className="sticky top-0 bg-header text-left">
            <tr>
              {[["Date and Time", "w-[160px]"], ["User", "w-[110px]"], ["Action", "w-[150px]"], ["Target", ""], ["Result", "w-[70px]"]].map(([h, w]) => (
                <th key={h} className={`border-b border-border-light px-1 font-normal ${w}`}>
                  {h}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {(entries.data ?? []).map((e) => (
              <tr key={e.id} className="h-[18px] align-top hover:bg-hover" data-testid="audit-row">
                <td className="px-1 whitespace-nowrap">{e.at.toLocaleString()}</td>
                <td className="truncate px-1">{e.userName}</td>
                <td className="truncate px-1">{e.action}</td>
                <td className="truncate px-1" title={e.error ?? e.target ?? ""}>
                  {e.target}
                  {e.error ? <span className="text-crit"> {e.error}</span> : null}
                </td>
                <td className={e.result === "success" ? "px-1" : "px-1 text-crit"}>{e.result === "success" ? "Success" : "Failure"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Dialog>
  );
}
