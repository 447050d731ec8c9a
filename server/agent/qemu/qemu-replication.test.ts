/**
 * Issue test 1: a QEMU VM with no guest OS, writes injected through QMP (HMP qemu-io), and
 * replication over several cycles while writing: at each cycle the replica equals the
 * primary as it was at the cycle's freeze point, even though the guest wrote during the
 * cycle (fleecing keeps the frozen point readable).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, startPair, waitFor, type Pair, type VmView } from "../testing/harness.js";
import { operatorQmp, qemuIoWrite } from "../testing/qemu.js";

const MiB = 1024 * 1024;

describe("QEMU hypervisor: replication with dirty bitmaps and fleecing", () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ hypervisor: "qemu" });
  });
  afterAll(async () => pair?.cleanup());

  it("replicates only changed extents, and the replica equals each cycle's freeze point while the guest writes", async () => {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "qemu-repl", memoryMiB: 128, disks: [{ sizeBytes: 64 * MiB }, { sizeBytes: 16 * MiB }] });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    const qmp = await operatorQmp(primary, vm.id);
    await qemuIoWrite(qmp, 0, 0x11, 8 * MiB, MiB);
    await qemuIoWrite(qmp, 1, 0x22, 0, 256 * 1024);

    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: replica.ports.https,
      authMode: "https",
      frequencySeconds: 30,
      startInitialReplication: false,
    });
    const initial = await primary.ok<{ ok: boolean; seq: number }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
    expect(initial).toMatchObject({ ok: true, seq: 0 });
    for (const disk of [0, 1]) expect(await diskHash(replica, vm.id, disk)).toBe(await diskHash(primary, vm.id, disk));

    for (let i = 1; i <= 4; i++) {
      // Writes before the freeze: they belong to this cycle.
      await qemuIoWrite(qmp, 0, 0x30 + i, (i * 5) * MiB + 4096 * i, 192 * 1024);
      await qemuIoWrite(qmp, 1, 0x40 + i, i * MiB, 64 * 1024);
      const atFreeze = [await diskHash(primary, vm.id, 0), await diskHash(primary, vm.id, 1)];
      const cycle = primary.ok<{ ok: boolean; seq: number; changedBytes: number }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
      // Once the fleecing export exists the point is frozen: these writes belong to the next cycle.
      await waitFor("the cycle's freeze", async () => (await qmp.execute<{ id: string }[]>("query-block-exports")).some((e) => e.id.startsWith("fx")), 10_000, 5);
      await qemuIoWrite(qmp, 0, 0x50 + i, 40 * MiB + i * MiB, 128 * 1024);
      const result = await cycle;
      expect(result).toMatchObject({ ok: true, seq: i });
      // Only what changed travels: 192 KiB + 64 KiB (+ the previous cycle's late write), in 64 KiB clusters.
      expect(result.changedBytes).toBeGreaterThan(0);
      expect(result.changedBytes).toBeLessThanOrEqual(768 * 1024);
      expect([await diskHash(replica, vm.id, 0), await diskHash(replica, vm.id, 1)]).toEqual(atFreeze);
      expect(await diskHash(primary, vm.id, 0)).not.toBe(atFreeze[0]);
    }
    // Quiet now: one more cycle brings the late writes across.
    const last = await primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
    expect(last.ok).toBe(true);
    for (const disk of [0, 1]) expect(await diskHash(replica, vm.id, disk)).toBe(await diskHash(primary, vm.id, disk));
    qmp.close();
  });

  it("falls back to a crash-consistent point with a warning when the guest has no qemu-guest-agent", async () => {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "no-agent", memoryMiB: 128, disks: [{ sizeBytes: 16 * MiB }] });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: replica.ports.https,
      frequencySeconds: 900,
      recoveryHistory: 1,
      appConsistentFrequencyHours: 1,
      startInitialReplication: false,
    });
    expect((await primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).ok).toBe(true);
    await pair.advanceClock(3600_000);
    await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=0`, Buffer.alloc(4096, 1));
    expect((await primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).ok).toBe(true);
    const events = await primary.ok<{ kind: string; message: string }[]>("GET", `/api/v1/events?vmId=${vm.id}&limit=1000`);
    expect(events.find((e) => e.kind === "replication.quiesce-failed")?.message).toMatch(/crash-consistent .*guest agent/);
    expect(await diskHash(replica, vm.id)).toBe(await diskHash(primary, vm.id));
  });
});
