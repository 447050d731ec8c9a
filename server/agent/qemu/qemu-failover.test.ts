/**
 * Issue test 4: test failover of a QEMU VM starts a second QEMU process on the replica host,
 * over overlays on the replica's point-in-time view that the agent serves to it over NBD;
 * its writes stay in the overlays, and replication goes on undisturbed meanwhile. Then the
 * primary host is lost and an unplanned failover runs the replica VM in QEMU on its point.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, startPair, type Pair, type VmView } from "../testing/harness.js";
import { killQemuUnder, operatorQmp, processName, qemuIoWrite, qemuPid } from "../testing/qemu.js";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { Qmp } from "../hypervisor/qemu/qmp.js";

const MiB = 1024 * 1024;

describe("QEMU hypervisor: test failover and unplanned failover", () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ hypervisor: "qemu" });
  });
  afterAll(async () => pair?.cleanup());

  it("runs '<VM> - Test' as a second QEMU process on the replica host without disturbing replication", async () => {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "web-01", memoryMiB: 128, disks: [{ sizeBytes: 32 * MiB }] });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    const qmp = await operatorQmp(primary, vm.id);
    await qemuIoWrite(qmp, 0, 0x61, 0, MiB);
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    expect((await primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).ok).toBe(true);
    const point = await diskHash(replica, vm.id);

    const test = await replica.ok<VmView & { testOf: { vmId: string } }>("POST", `/api/v1/vms/${vm.id}/replication/test-failover`, {});
    expect(test).toMatchObject({ name: "web-01 - Test", state: "Off", testOf: { vmId: vm.id } });
    expect((await replica.ok<VmView>("POST", `/api/v1/vms/${test.id}/power`, { action: "start" })).state).toBe("Running");
    // The test VM's folder lies in the replica's storage location.
    const testDir = join(replica.spec.dataDir, "replicas", vm.id, ".test");
    const testPid = Number((await readFile(join(testDir, "qemu.pid"), "utf8")).trim());
    expect(await processName(testPid)).toBe("qemu-system-x86");
    expect(testPid).not.toBe(await qemuPid(primary, vm.id));

    // The test VM's guest writes land in its overlay, not in the replica.
    const testQmp = await Qmp.connect(join(testDir, "qmp-operator.sock"));
    expect(await diskHash(replica, test.id)).toBe(point);
    await qemuIoWrite(testQmp, 0, 0x7e, 4 * MiB, 256 * 1024);
    expect(await diskHash(replica, test.id)).not.toBe(point);
    expect(await diskHash(replica, vm.id)).toBe(point);

    // Replication goes on meanwhile.
    await qemuIoWrite(qmp, 0, 0x62, 8 * MiB, 512 * 1024);
    const cycle = await primary.ok<{ ok: boolean; changedBytes: number }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
    expect(cycle).toMatchObject({ ok: true, changedBytes: 512 * 1024 });
    expect(await diskHash(replica, vm.id)).toBe(await diskHash(primary, vm.id));

    testQmp.close();
    await replica.ok("DELETE", `/api/v1/vms/${vm.id}/replication/test-failover`);
    expect(await processName(testPid)).toBeUndefined();
    expect((await replica.ok<VmView[]>("GET", "/api/v1/vms")).map((v) => v.name)).toEqual(["web-01"]);

    // A test VM's QEMU cannot outlive the agent that serves its disks: kill -9 of the agent ends it at the next start.
    const again = await replica.ok<VmView>("POST", `/api/v1/vms/${vm.id}/replication/test-failover`, {});
    await replica.ok("POST", `/api/v1/vms/${again.id}/power`, { action: "start" });
    const orphan = Number((await readFile(join(testDir, "qemu.pid"), "utf8")).trim());
    expect(await processName(orphan)).toBe("qemu-system-x86");
    await replica.kill();
    await replica.start();
    expect(await processName(orphan)).toBeUndefined();
    expect((await replica.ok<VmView[]>("GET", "/api/v1/vms")).map((v) => v.name)).toEqual(["web-01"]);
    qmp.close();
  });

  it("runs the replica VM in QEMU after an unplanned failover to its latest point, and completes it", async () => {
    const { primary, replica } = pair;
    const vm = (await replica.ok<VmView[]>("GET", "/api/v1/vms")).find((v) => v.name === "web-01")!;
    const point = await diskHash(replica, vm.id);
    // The primary host is lost: its agent and its QEMU processes die.
    await primary.kill();
    await killQemuUnder(primary.spec.dataDir);

    const res = await replica.api<{ steps: { step: string; ok: boolean }[] }>("POST", `/api/v1/vms/${vm.id}/replication/failover`, { pointId: "latest" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect((await replica.ok<VmView>("GET", `/api/v1/vms/${vm.id}`)).state).toBe("Running");
    const dir = join(replica.spec.dataDir, "replicas", vm.id);
    const pid = Number((await readFile(join(dir, "qemu.pid"), "utf8")).trim());
    expect(await processName(pid)).toBe("qemu-system-x86");
    expect(await diskHash(replica, vm.id)).toBe(point);

    // The guest's writes go to the failover's overlays, and Complete keeps them.
    const qmp = await Qmp.connect(join(dir, "qmp-operator.sock"));
    await qemuIoWrite(qmp, 0, 0x99, 12 * MiB, 128 * 1024);
    const written = await diskHash(replica, vm.id);
    expect(written).not.toBe(point);
    await replica.ok("POST", `/api/v1/vms/${vm.id}/replication/failover/complete`);
    expect(await processName(pid)).toBe("qemu-system-x86");
    await qemuIoWrite(qmp, 0, 0x9a, 14 * MiB, 64 * 1024);
    qmp.close();
    await replica.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "turn-off" });
    expect(await processName(pid)).toBeUndefined();
    const final = await diskHash(replica, vm.id);
    expect(final).not.toBe(written);
    const bytes = await replica.bytes(`/api/v1/vms/${vm.id}/disks/0/data?offset=${14 * MiB}&length=${64 * 1024}`);
    expect(bytes.equals(Buffer.alloc(64 * 1024, 0x9a))).toBe(true);
  });
});
