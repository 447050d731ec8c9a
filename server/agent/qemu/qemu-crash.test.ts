/**
 * Issue test 3: kill -9 of QEMU, and of QEMU and the agent together, during a cycle. The
 * qcow2 dirty bitmaps were in use, so they are inconsistent when the disks are opened again:
 * the next cycle (or the agent's next start) reports Resynchronization required, and the
 * resynchronization sends exactly the differing blocks, never a silent full copy or a gap.
 * The same for an image replaced while the agent was stopped (its bitmap is missing).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, startPair, waitFor, type Pair, type VmView } from "../testing/harness.js";
import { operatorQmp, qemuIoWrite, qemuPid, vmDir } from "../testing/qemu.js";
import { execFile } from "node:child_process";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

const MiB = 1024 * 1024;

interface Rel {
  state: string;
  reason: string | null;
}
interface Ev {
  id: number;
  kind: string;
  data: { comparedBytes?: number; differingBytes?: number } | null;
}

describe("QEMU hypervisor: crashes during a cycle", () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair({ hypervisor: "qemu" });
  });
  afterAll(async () => pair?.cleanup());

  const rel = async (vmId: string) => (await pair.primary.ok<Rel[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!;
  const events = (vmId: string) => pair.primary.ok<Ev[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);

  /** A running VM replicated once, then 3 MiB written by the guest and a slow cycle under way (its freeze taken). */
  async function crashReady(name: string): Promise<{ vmId: string; pid: number; cycle: Promise<{ status: number; body: { ok: boolean } }> }> {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name, memoryMiB: 128, disks: [{ sizeBytes: 32 * MiB }] });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    const qmp = await operatorQmp(primary, vm.id);
    await qemuIoWrite(qmp, 0, 0x11, 0, MiB);
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: replica.ports.https,
      authMode: "https",
      frequencySeconds: 900,
      compression: false,
      bandwidthLimitMiBps: 1,
      startInitialReplication: false,
    });
    expect((await primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).ok).toBe(true);
    await qemuIoWrite(qmp, 0, 0x22, 4 * MiB, 2 * MiB);
    await qemuIoWrite(qmp, 0, 0x33, 20 * MiB + 64 * 1024, MiB);
    const cycle = primary.api<{ ok: boolean }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
    cycle.catch(() => undefined); // the agent may be killed before it answers
    await waitFor("the cycle's freeze", async () => (await qmp.execute<{ id: string }[]>("query-block-exports")).some((e) => e.id.startsWith("fx")), 10_000, 5);
    await new Promise((r) => setTimeout(r, 300));
    qmp.close();
    return { vmId: vm.id, pid: await qemuPid(primary, vm.id), cycle };
  }

  async function resync(vmId: string): Promise<Ev> {
    const mark = (await events(vmId)).at(-1)?.id ?? 0;
    await pair.primary.ok("PATCH", `/api/v1/vms/${vmId}/replication`, { bandwidthLimitMiBps: null });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
    return waitFor("resynchronization to complete", async () => (await events(vmId)).find((e) => e.id > mark && e.kind === "replication.resync-complete"), 60_000, 200);
  }

  it("kill -9 of QEMU: the next cycle reports Resynchronization required; the resync sends only the differing blocks", async () => {
    const { vmId, pid, cycle } = await crashReady("crash-qemu");
    process.kill(pid, "SIGKILL");
    // The cycle may have read its frozen extents before QEMU died (then it completes), or not.
    const survived = (await cycle).body.ok;
    await waitFor("the VM to be Off", async () => (await pair.primary.ok<VmView>("GET", `/api/v1/vms/${vmId}`)).state === "Off");
    // Written while off (through the storage daemon), after tracking was lost.
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${30 * MiB}`, Buffer.alloc(8192, 0x44));
    const next = await pair.primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(next.ok).toBe(false);
    const r = await rel(vmId);
    expect(r.state).toBe("Resynchronization required");
    expect(r.reason).toMatch(/dirty bitmap/);
    const done = await resync(vmId);
    expect(done.data).toMatchObject({ comparedBytes: 32 * MiB, differingBytes: (survived ? 0 : 3 * MiB) + 8192 });
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    expect((await rel(vmId)).state).toBe("Replicating");
  });

  it("kill -9 of QEMU and of the agent: the agent's next start reports Resynchronization required; the resync sends only the differing blocks", async () => {
    const { vmId, pid } = await crashReady("crash-both");
    await pair.primary.kill();
    process.kill(pid, "SIGKILL");
    await pair.primary.start();
    expect((await pair.primary.ok<VmView>("GET", `/api/v1/vms/${vmId}`)).state).toBe("Off");
    const r = await rel(vmId);
    expect(r.state).toBe("Resynchronization required");
    expect(r.reason).toMatch(/dirty bitmap/);
    const done = await resync(vmId);
    expect(done.data).toMatchObject({ comparedBytes: 32 * MiB, differingBytes: 3 * MiB });
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("kill -9 of the agent alone during a cycle: QEMU keeps running and tracking, nothing is lost, no resynchronization", async () => {
    const { vmId, pid } = await crashReady("crash-agent");
    await pair.primary.kill();
    await pair.primary.start();
    expect(await qemuPid(pair.primary, vmId)).toBe(pid);
    expect((await pair.primary.ok<VmView>("GET", `/api/v1/vms/${vmId}`)).state).toBe("Running");
    await pair.primary.ok("PATCH", `/api/v1/vms/${vmId}/replication`, { bandwidthLimitMiBps: null });
    const next = await pair.primary.ok<{ ok: boolean; changedBytes: number }>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(next.ok).toBe(true);
    expect((await rel(vmId)).state).toBe("Replicating");
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("an image replaced while the agent was stopped: Resynchronization required at its next start, not a silent gap", async () => {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "replaced", memoryMiB: 128, disks: [{ sizeBytes: 16 * MiB }] });
    await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=0`, Buffer.alloc(64 * 1024, 0x10));
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    expect((await primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).ok).toBe(true);
    await primary.stop();
    // Someone restores the image from elsewhere (here: the same bytes plus a change, without bitmaps).
    const image = join(vmDir(primary, vm.id), "disk0.qcow2");
    await run("qemu-io", ["-f", "qcow2", "-c", "write -P 0x77 1M 128k", image]);
    await run("qemu-img", ["convert", "-O", "qcow2", image, `${image}.new`]);
    await rename(`${image}.new`, image);
    await primary.start();
    const r = await rel(vm.id);
    expect(r.state).toBe("Resynchronization required");
    expect(r.reason).toMatch(/dirty bitmap is missing/);
    const done = await resync(vm.id);
    expect(done.data).toMatchObject({ comparedBytes: 16 * MiB, differingBytes: 128 * 1024 });
    expect(await diskHash(replica, vm.id)).toBe(await diskHash(primary, vm.id));
  });
});
