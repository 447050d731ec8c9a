/**
 * QEMU driver basics with real qemu-system processes: create (qcow2), start, pause, resume,
 * save and start from Saved, turn off, a refused ACPI shutdown of a guest without an OS, an
 * agent restart that re-attaches to the running process, and delete.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, startPair, type Pair, type VmView } from "../testing/harness.js";
import { operatorQmp, processName, qemuIoWrite, qemuPid, vmDir } from "../testing/qemu.js";

const MiB = 1024 * 1024;

describe("QEMU hypervisor: VM lifecycle", () => {
  let pair: Pair;
  beforeAll(async () => {
    process.env.RM_QEMU_SHUTDOWN_TIMEOUT_MS = "1500";
    pair = await startPair({ hypervisor: "qemu" });
  });
  afterAll(async () => pair?.cleanup());

  it("runs a VM as a qemu-system process through every power state, and re-attaches after an agent restart", async () => {
    const { primary } = pair;
    const host = await primary.ok<{ hypervisor: string; accelerator: string }>("GET", "/api/v1/host");
    expect(host.hypervisor).toBe("qemu");
    expect(["kvm", "tcg"]).toContain(host.accelerator);

    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "qemu-01", memoryMiB: 128, disks: [{ sizeBytes: 32 * MiB }] });
    expect(vm.state).toBe("Off");
    const dir = vmDir(primary, vm.id);
    expect(existsSync(join(dir, "disk0.qcow2"))).toBe(true);
    // Off: the disks are held by qemu-storage-daemon, and the agent reads and writes them.
    expect(await processName(await qemuPid(primary, vm.id))).toBe("qemu-storage-da");
    await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=${MiB}`, Buffer.alloc(64 * 1024, 0x5a));
    const before = await diskHash(primary, vm.id);

    const power = (action: string) => primary.ok<VmView>("POST", `/api/v1/vms/${vm.id}/power`, { action });
    expect((await power("start")).state).toBe("Running");
    const pid = await qemuPid(primary, vm.id);
    expect(await processName(pid)).toBe("qemu-system-x86");
    const qmp = await operatorQmp(primary, vm.id);
    expect(await qmp.execute("query-status")).toMatchObject({ status: "running" });
    expect(await diskHash(primary, vm.id)).toBe(before);
    // CPU usage of a running VM comes from its QEMU process's CPU time.
    await new Promise((r) => setTimeout(r, 1100));
    const usage = (await primary.ok<{ cpuUsagePercent: number | null }>("GET", `/api/v1/vms/${vm.id}`)).cpuUsagePercent;
    expect(usage).toBeGreaterThanOrEqual(0);
    expect(usage).toBeLessThanOrEqual(100);

    expect((await power("pause")).state).toBe("Paused");
    expect(await qmp.execute("query-status")).toMatchObject({ status: "paused" });
    expect((await power("resume")).state).toBe("Running");

    // ACPI shutdown: a guest with no OS does not answer; the VM keeps running, with a reason.
    const refused = await primary.api<{ error: { message: string } }>("POST", `/api/v1/vms/${vm.id}/power`, { action: "shutdown" });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/did not shut down within .*Turn Off/);
    expect((await primary.ok<VmView>("GET", `/api/v1/vms/${vm.id}`)).state).toBe("Running");

    // A guest write through QEMU's block layer, then the agent restarts: QEMU keeps running.
    await qemuIoWrite(qmp, 0, 0xab, 0, 128 * 1024);
    qmp.close();
    await primary.kill();
    await primary.start();
    expect(await qemuPid(primary, vm.id)).toBe(pid);
    expect((await primary.ok<VmView>("GET", `/api/v1/vms/${vm.id}`)).state).toBe("Running");
    const written = await diskHash(primary, vm.id);
    expect(written).not.toBe(before);

    expect((await power("save")).state).toBe("Saved");
    expect(existsSync(join(dir, "saved-state.bin"))).toBe(true);
    expect(await processName(await qemuPid(primary, vm.id))).toBe("qemu-storage-da");
    expect((await power("start")).state).toBe("Running");
    const restored = await operatorQmp(primary, vm.id);
    expect(await restored.execute("query-status")).toMatchObject({ status: "running" });
    restored.close();
    expect(existsSync(join(dir, "saved-state.bin"))).toBe(false);

    expect((await power("turn-off")).state).toBe("Off");
    expect(await diskHash(primary, vm.id)).toBe(written);
    const del = await primary.api("DELETE", `/api/v1/vms/${vm.id}`);
    expect(del.status).toBe(204);
    expect(existsSync(dir)).toBe(false);
  });
});
