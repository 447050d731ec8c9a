/**
 * The QEMU driver against rsync: one delta cycle of a QEMU VM's qcow2 disk after 1% of it
 * changed (dirty bitmap, fleecing, NBD), against `rsync --inplace --no-whole-file` of the
 * qcow2 image file onto a copy made at the same starting point.
 */
import { randomFillSync } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { diskHash, startPair, type VmView } from "../server/agent/testing/harness.js";
import { changeOnePercent, deltaCycle, MiB, rsyncInPlace, run } from "./tools.js";

export interface QemuDeltaResult {
  diskGiB: number;
  accelerator: string;
  changedBytes: number;
  deltaSeconds: number;
  deltaWireBytes: number;
  rsyncSeconds: number;
  rsyncSentBytes: number;
  equal: boolean;
}

export async function benchQemuDelta(dir: string, diskGiB: number, log: (s: string) => void): Promise<QemuDeltaResult> {
  const size = diskGiB * 1024 * MiB;
  const pair = await startPair({ dir: join(dir, "qemu-pair"), hypervisor: "qemu" });
  const copy = join(dir, "rsync-copy.qcow2");
  try {
    const { primary, replica } = pair;
    const host = await primary.ok<{ accelerator: string }>("GET", "/api/v1/host");
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "bench-qemu", memoryMiB: 128, disks: [{ sizeBytes: size }] });
    const image = join(pair.dir, "hv01", "vms", vm.id, "disk0.qcow2");
    log(`QEMU: filling a ${diskGiB} GiB qcow2 disk with guest-like data through the agent (NBD)...`);
    const chunk = Buffer.allocUnsafe(32 * MiB);
    const text = Buffer.alloc(2048, "invoice 2026-11-22 customer=ACME total=1234.56 status=paid ");
    for (let pos = 0; pos < size; pos += chunk.length) {
      randomFillSync(chunk);
      for (let b = 2048; b < chunk.length; b += 4096) text.copy(chunk, b);
      await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=${pos}`, chunk);
    }
    await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: replica.ports.https,
      authMode: "https",
      frequencySeconds: 900,
    });
    // Started by enabling, and waited for (a request open for minutes would time out).
    log("QEMU: initial replication...");
    for (;;) {
      const [rel] = await primary.ok<{ state: string; reason: string | null }[]>("GET", `/api/v1/vms/${vm.id}/replication`);
      if (rel?.state === "Replicating") break;
      if (rel?.state === "Error") throw new Error(`initial replication failed: ${rel.reason}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    log("QEMU: copying the qcow2 image as rsync's starting point...");
    await run("cp", ["--sparse=always", image, copy]);

    log(`QEMU: changing 1% of the disk: ${Math.floor((size * 0.01) / (64 * 1024))} random 64 KiB blocks of incompressible data...`);
    const changedBytes = await changeOnePercent(primary, vm.id, size);
    log("QEMU: one delta cycle...");
    const delta = await deltaCycle(primary, vm.id);
    log("QEMU: rsync --inplace --no-whole-file (+ sync) of the qcow2 image...");
    const rsynced = await rsyncInPlace(image, copy, ["--ignore-times"]);
    log("QEMU: comparing primary and replica (SHA-256)...");
    const equal = (await diskHash(primary, vm.id)) === (await diskHash(replica, vm.id));
    return {
      diskGiB,
      accelerator: host.accelerator,
      changedBytes,
      deltaSeconds: delta.seconds,
      deltaWireBytes: delta.wireBytes,
      rsyncSeconds: rsynced.seconds,
      rsyncSentBytes: rsynced.sentBytes,
      equal,
    };
  } finally {
    await pair.cleanup();
    await rm(copy, { force: true });
  }
}
