/**
 * Issue test 2: a tiny real guest (Debian's kernel and a busybox initramfs, booted by
 * syslinux from its own disk) writes a marker to its disk on the primary; after replication
 * and a planned failover it boots on the replica host, over the replica's disks that the
 * agent serves to QEMU, and reads the same marker back.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPair, waitFor, type Pair, type VmView } from "../testing/harness.js";
import { vmDir } from "../testing/qemu.js";
import { buildTinyGuest } from "../testing/tiny-guest.js";

const MiB = 1024 * 1024;

describe("QEMU hypervisor: a tiny real guest across a planned failover", () => {
  let pair: Pair;
  beforeAll(async () => {
    // Nested KVM (as on CI machines) may not run a real guest: emulate, it boots in ~20 s.
    process.env.RM_QEMU_ACCEL = "tcg";
    pair = await startPair({ hypervisor: "qemu" });
  });
  afterAll(async () => {
    delete process.env.RM_QEMU_ACCEL;
    await pair?.cleanup();
  });

  it("boots on the replica host after a planned failover and reads the marker its primary wrote", { timeout: 300_000 }, async () => {
    const { primary, replica } = pair;
    const image = await readFile(await buildTinyGuest(join(pair.dir, "tiny-guest")));
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "tiny-01", memoryMiB: 256, disks: [{ sizeBytes: 64 * MiB }] });
    for (let off = 0; off < image.length; off += 8 * MiB) await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=${off}`, image.subarray(off, off + 8 * MiB));
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    expect((await primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).ok).toBe(true);

    // On the primary: the guest boots, writes its marker, and powers off.
    await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    const state = (a: typeof primary) => a.ok<VmView>("GET", `/api/v1/vms/${vm.id}`).then((v) => v.state);
    await waitFor("the guest on the primary to power off", async () => (await state(primary)) === "Off", 120_000, 500);
    const written = /MARKER-WRITTEN: (RM-MARKER \S+)/.exec(await readFile(join(vmDir(primary, vm.id), "serial.log"), "utf8"))?.[1];
    expect(written).toBeDefined();

    // Planned failover: the last changes go across, the replica VM starts and boots.
    const run = await primary.ok<{ steps: { step: string; ok: boolean; detail: string }[] }>("POST", `/api/v1/vms/${vm.id}/replication/planned-failover`, {});
    expect(run.steps.filter((s) => !s.ok)).toEqual([]);
    await waitFor("the guest on the replica host to power off", async () => (await state(replica)) === "Off", 120_000, 500);
    const serial = await readFile(join(replica.spec.dataDir, "replicas", vm.id, "serial.log"), "utf8");
    expect(serial).toContain(`MARKER-FOUND: ${written}`);

    // The old primary is the replica now, on raw images, fenced.
    const old = await primary.ok<VmView & { isReplica: boolean }>("GET", `/api/v1/vms/${vm.id}`);
    expect(old).toMatchObject({ isReplica: true, state: "Off" });
    expect(old.replication[0]).toMatchObject({ role: "replica", state: "Replicating" });
  });
});
