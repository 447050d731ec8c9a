/** Test helpers for QEMU hosts: the VM's operator QMP monitor, and ending a test's QEMU processes. */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Qmp } from "../hypervisor/qemu/qmp.js";
import type { AgentProcess } from "./harness.js";

export function vmDir(agent: AgentProcess, vmId: string): string {
  return join(agent.spec.dataDir, "vms", vmId);
}

/** The second QMP monitor of a running QEMU VM (the agent holds the first). */
export function operatorQmp(agent: AgentProcess, vmId: string): Promise<Qmp> {
  return Qmp.connect(join(vmDir(agent, vmId), "qmp-operator.sock"), 5000);
}

/** The pid of the process holding a VM's disks (qemu-system or qemu-storage-daemon). */
export async function qemuPid(agent: AgentProcess, vmId: string): Promise<number> {
  return Number((await readFile(join(vmDir(agent, vmId), "qemu.pid"), "utf8")).trim());
}

/** A live process's name (a zombie, ended but not yet reaped by its parent, has none). */
export async function processName(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (!stat || stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z") return undefined;
  return stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
}

/** Kills every QEMU process whose pidfile lies under `dir` (QEMU outlives its agent by design). */
export async function killQemuUnder(dir: string): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.name !== "qemu.pid") continue;
    const pid = Number((await readFile(join(e.parentPath, e.name), "utf8").catch(() => "")).trim());
    if (!pid) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** Writes a pattern and flushes, as the guest would: HMP qemu-io on the VM's disk device (vd<disk>). */
export async function qemuIoWrite(qmp: Qmp, disk: number, pattern: number, offset: number, length: number): Promise<void> {
  const out = await qmp.hmp(`qemu-io -d vd${disk} "write -P 0x${pattern.toString(16)} ${offset} ${length}"`);
  if (/error|fail|denied|not found|conflict/i.test(out)) throw new Error(`qemu-io write failed: ${out}`);
  // As a guest's fsync: without it, a killed QEMU may lose the write (qcow2 metadata in its cache).
  await qmp.hmp(`qemu-io -d vd${disk} "flush"`);
}
