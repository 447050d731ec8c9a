"use client";

/**
 * Settings for a VM, after Hyper-V's: the hardware as configured (read only: the lab agent
 * fixes it at creation) and the lab guest's workload, which Administrators can change.
 */
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Dialog, Field, inputClass } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";
import { errorMessage, fieldErrors } from "@/components/lib/errors";
import { formatBytes } from "@/components/lib/format";
import { useTRPC, type Vm } from "@/components/lib/trpc";

const SECTIONS = ["Processor", "Memory", "Hard Drives", "Guest Workload"] as const;
type Section = (typeof SECTIONS)[number];
type Pattern = "idle" | "random-4k" | "sequential-1m";

export function VmSettingsDialog({ vm, hostName, canEdit, onClose }: { vm: Vm; hostName: string; canEdit: boolean; onClose(): void }) {
  const trpc = useTRPC();
  const [section, setSection] = useState<Section>("Guest Workload");
  const [pattern, setPattern] = useState<Pattern>(vm.workload.pattern as Pattern);
  const [rate, setRate] = useState(String(vm.workload.rateMiBps));
  const save = useMutation(trpc.vms.setWorkload.mutationOptions({ onSuccess: () => onClose() }));
  const errors = fieldErrors(save.error);
  const rows: Record<Exclude<Section, "Guest Workload">, [string, string][]> = {
    Processor: [["Number of virtual processors", String(vm.cpus)]],
    Memory: [["Startup RAM", `${vm.memoryMiB} MB`], ["Dynamic Memory", "Not enabled"]],
    "Hard Drives": vm.disks.map((d) => [`Virtual hard disk ${d.index}`, formatBytes(d.sizeBytes)]),
  };
  return (
    <Dialog
      title={`Settings for ${vm.name} on ${hostName}`}
      onClose={onClose}
      testId="vm-settings"
      className="w-[640px]"
      footer={
        <>
          <Button
            variant="primary"
            data-testid="vm-settings-ok"
            disabled={!canEdit || save.isPending}
            onClick={() => save.mutate({ hostId: vm.hostId, vmId: vm.vmId, workload: { pattern, rateMiBps: rate.trim() === "" ? Number.NaN : Number(rate) } })}
          >
            OK
          </Button>
          <Button onClick={onClose}>Cancel</Button>
        </>
      }
    >
      <div className="flex min-h-[260px] gap-3">
        <nav className="w-[170px] shrink-0 border-r border-border-light pr-2">
          <div className="font-semibold">Hardware</div>
          {SECTIONS.map((s) => (
            <button key={s} onClick={() => setSection(s)} data-testid={`vm-settings-${s}`} className={cn("block w-full px-2 py-[3px] text-left", s === section ? "bg-select" : "hover:bg-hover")}>
              {s}
            </button>
          ))}
        </nav>
        <div className="flex-1">
          <h2 className="mb-3 text-[15px]">{section}</h2>
          {section === "Guest Workload" ? (
            <fieldset disabled={!canEdit}>
              <Field label="What the guest writes:" htmlFor="vm-pattern">
                <select id="vm-pattern" data-testid="vm-settings-pattern" className={inputClass} value={pattern} onChange={(e) => setPattern(e.target.value as Pattern)}>
                  <option value="idle">Idle</option>
                  <option value="random-4k">Database-like (random 4 KB writes)</option>
                  <option value="sequential-1m">File server-like (sequential 1 MB writes)</option>
                </select>
              </Field>
              <Field label="Write rate (MB/s):" htmlFor="vm-rate" error={errors["workload.rateMiBps"]}>
                <input id="vm-rate" data-testid="vm-settings-rate" type="number" className={cn(inputClass, "w-[100px]")} value={rate} onChange={(e) => setRate(e.target.value)} />
              </Field>
              <p className="text-muted">Takes effect at once while the virtual machine runs.</p>
            </fieldset>
          ) : (
            <table>
              <tbody>
                {rows[section].map(([k, v]) => (
                  <tr key={k}>
                    <td className="pr-4 text-muted">{k}:</td>
                    <td>{v}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {save.error && !Object.keys(errors).length ? <div className="mt-2 text-crit" role="alert">{errorMessage(save.error)}</div> : null}
        </div>
      </div>
    </Dialog>
  );
}
