"use client";

import { Field, inputClass } from "@/components/ui/dialog";
import { cn } from "@/components/lib/cn";

export const PAGES = ["Before You Begin", "Specify Name", "Assign Memory", "Configure Processor", "Connect Virtual Hard Disk", "Guest Workload", "Summary"] as const;
type Page = (typeof PAGES)[number];

export interface Draft {
  name: string;
  memoryMiB: number;
  cpus: number;
  /** Sizes in GB, one per disk (1 to 4 disks). */
  disks: number[];
  pattern: "idle" | "random-4k" | "sequential-1m";
  rateMiBps: number;
}

const num = (v: string) => (v.trim() === "" ? Number.NaN : Number(v));

export function WizardPage({ page, draft, setDraft, errors, hostName }: { page: Page; draft: Draft; setDraft(d: Draft): void; errors: Record<string, string[]>; hostName: string }) {
  const set = (patch: Partial<Draft>) => setDraft({ ...draft, ...patch });
  switch (page) {
    case "Before You Begin":
      return (
        <div className="space-y-2">
          <p>This wizard helps you create a virtual machine on {hostName}.</p>
          <p>A lab virtual machine has sparse virtual hard disks and a synthetic guest that writes to them, so replication sees real changes.</p>
          <p>To create a virtual machine with default values, click Finish.</p>
        </div>
      );
    case "Specify Name":
      return (
        <Field label="Name:" htmlFor="name" error={errors.name}>
          <input id="name" data-testid="wizard-name" className={inputClass} value={draft.name} onChange={(e) => set({ name: e.target.value })} aria-invalid={!!errors.name} />
        </Field>
      );
    case "Assign Memory":
      return (
        <Field label="Startup memory (MB):" htmlFor="memoryMiB" error={errors.memoryMiB}>
          <input id="memoryMiB" data-testid="wizard-memory" type="number" className={cn(inputClass, "w-[120px]")} value={Number.isNaN(draft.memoryMiB) ? "" : draft.memoryMiB} onChange={(e) => set({ memoryMiB: num(e.target.value) })} aria-invalid={!!errors.memoryMiB} />
        </Field>
      );
    case "Configure Processor":
      return (
        <Field label="Number of virtual processors:" htmlFor="cpus" error={errors.cpus}>
          <input id="cpus" data-testid="wizard-cpus" type="number" className={cn(inputClass, "w-[80px]")} value={Number.isNaN(draft.cpus) ? "" : draft.cpus} onChange={(e) => set({ cpus: num(e.target.value) })} aria-invalid={!!errors.cpus} />
        </Field>
      );
    case "Connect Virtual Hard Disk":
      return (
        <div>
          {draft.disks.map((size, i) => (
            <Field key={i} label={`Virtual hard disk ${i} size (GB):`} htmlFor={`disk${i}`} error={errors[`disks.${i}.sizeGiB`]}>
              <div className="flex gap-2">
                <input id={`disk${i}`} data-testid={`wizard-disk-${i}`} type="number" className={cn(inputClass, "w-[120px]")} value={Number.isNaN(size) ? "" : size} onChange={(e) => set({ disks: draft.disks.with(i, num(e.target.value)) })} />
                {draft.disks.length > 1 ? (
                  <button className="text-link hover:underline" onClick={() => set({ disks: draft.disks.filter((_, j) => j !== i) })}>
                    Remove
                  </button>
                ) : null}
              </div>
            </Field>
          ))}
          {errors.disks ? <div className="text-crit">{errors.disks.join(" ")}</div> : null}
          {draft.disks.length < 4 ? (
            <button className="text-link hover:underline" data-testid="wizard-add-disk" onClick={() => set({ disks: [...draft.disks, 40] })}>
              Add a virtual hard disk
            </button>
          ) : null}
        </div>
      );
    case "Guest Workload":
      return (
        <div>
          <Field label="What the guest writes:" htmlFor="pattern">
            <select id="pattern" data-testid="wizard-pattern" className={inputClass} value={draft.pattern} onChange={(e) => set({ pattern: e.target.value as Draft["pattern"] })}>
              <option value="idle">Idle</option>
              <option value="random-4k">Database-like (random 4 KB writes)</option>
              <option value="sequential-1m">File server-like (sequential 1 MB writes)</option>
            </select>
          </Field>
          <Field label="Write rate (MB/s):" htmlFor="rate" error={errors["workload.rateMiBps"]}>
            <input id="rate" type="number" className={cn(inputClass, "w-[100px]")} disabled={draft.pattern === "idle"} value={Number.isNaN(draft.rateMiBps) ? "" : draft.rateMiBps} onChange={(e) => set({ rateMiBps: num(e.target.value) })} />
          </Field>
        </div>
      );
    case "Summary":
      return (
        <table>
          <tbody>
            {[
              ["Name", draft.name],
              ["Server", hostName],
              ["Memory", `${draft.memoryMiB} MB`],
              ["Virtual processors", String(draft.cpus)],
              ["Virtual hard disks", draft.disks.map((d) => `${d} GB`).join(", ")],
              ["Guest workload", draft.pattern === "idle" ? "Idle" : `${draft.pattern}, ${draft.rateMiBps} MB/s`],
            ].map(([k, v]) => (
              <tr key={k}>
                <td className="pr-4 text-muted">{k}:</td>
                <td>{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
      );
  }
}
