/**
 * Initial replication by external media: the disks are exported to a folder as of one freeze,
 * with a manifest of their hashes, for Import Initial Replica on the Replica server; what the
 * guest writes afterwards is tracked and follows as ordinary cycles once the copy is imported.
 */
import type { LabVm } from "../hypervisor/lab/lab-vm.js";
import type { EventLog } from "../state/events.js";
import type { PrimaryRecord } from "../state/relationships.js";
import { AgentError, badRequest } from "../errors.js";
import { nowIso } from "../util/clock.js";
import { exportView } from "./recovery/export.js";

/** Exports the initial copy to a folder for Import Initial Replica; commit() once the relationship exists. */
export async function exportInitialCopy(rec: PrimaryRecord, vm: LabVm, folder: string, events: EventLog): Promise<{ commit(): Promise<void>; release(): Promise<void> }> {
  const frozen = await vm.freeze(rec.disks.map((d) => d.index));
  const source = {
    read: (disk: number, offset: number, length: number) => {
      const d = frozen.disks.find((x) => x.index === disk)!;
      return d.read(offset / d.blockSize, (offset + length) / d.blockSize);
    },
  };
  const started = Date.now();
  try {
    await exportView(source, { vmId: rec.vmId, vmName: rec.vmName, point: { id: "initial-copy", kind: "initial", at: nowIso(), seq: 0 }, relationshipId: rec.id }, rec.disks, folder, (done, total) => {
      const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
      events.emit({
        severity: "info",
        kind: "replication.export-progress",
        vmId: rec.vmId,
        message: `Exporting the initial copy of '${rec.vmName}' to ${folder}: ${Math.round((100 * done) / total)}%.`,
        data: { done, total, bytesPerSecond: Math.round(rate), etaSeconds: Math.round((total - done) / Math.max(rate, 1)) },
      });
    });
  } catch (err) {
    await frozen.release();
    throw err instanceof AgentError ? err : badRequest(`initialReplication.folder: the initial copy could not be exported to ${folder}: ${(err as Error).message}`);
  }
  return frozen;
}
