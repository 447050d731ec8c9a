/**
 * Starting the processes that hold a QEMU VM's disks: `qemu-system-x86_64` while the VM runs,
 * `qemu-storage-daemon` while it is off (so its qcow2 images, dirty bitmaps and NBD exports
 * are reached through the same QMP commands in both cases). Both are started detached: they
 * outlive an agent restart, which re-attaches to them by their QMP socket.
 */
import { spawn, execFile } from "node:child_process";
import { accessSync, constants, openSync, closeSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { VmConfig } from "../types.js";
import { Qmp } from "./qmp.js";

const run = promisify(execFile);

export const QEMU_SYSTEM = process.env.RM_QEMU_SYSTEM ?? "qemu-system-x86_64";
export const QEMU_STORAGE_DAEMON = process.env.RM_QEMU_STORAGE_DAEMON ?? "qemu-storage-daemon";
export const QEMU_IMG = process.env.RM_QEMU_IMG ?? "qemu-img";

/** Where a VM's process keeps its sockets and files, inside the VM's folder. */
export function vmPaths(dir: string) {
  return {
    qmp: join(dir, "qmp.sock"),
    /** A second QMP monitor for the operator (and tests): the agent holds the first. */
    qmpOperator: join(dir, "qmp-operator.sock"),
    nbd: join(dir, "nbd.sock"),
    vnc: join(dir, "vnc.sock"),
    pid: join(dir, "qemu.pid"),
    log: join(dir, "qemu.log"),
    savedState: join(dir, "saved-state.bin"),
    /** The agent's own NBD server for disks it serves to QEMU. */
    agentNbd: join(dir, "agent-nbd.sock"),
  };
}

/** KVM when /dev/kvm can be opened, TCG (emulation) otherwise. */
export function accelerator(): "kvm" | "tcg" {
  if (process.env.RM_QEMU_ACCEL === "tcg") return "tcg";
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    closeSync(openSync("/dev/kvm", "r+"));
    return "kvm";
  } catch {
    return "tcg";
  }
}

export async function qemuVersion(): Promise<string | null> {
  try {
    const { stdout } = await run(QEMU_SYSTEM, ["--version"]);
    return /version (\S+)/.exec(stdout)?.[1] ?? null;
  } catch {
    return null;
  }
}

export async function createQcow2(path: string, sizeBytes: number): Promise<void> {
  await run(QEMU_IMG, ["create", "-q", "-f", "qcow2", "-o", "cluster_size=65536", path, String(sizeBytes)]);
}

/**
 * The -blockdev definitions of a VM's disks: file node f<i> and qcow2 node d<i>, or (disks
 * the agent serves itself) an NBD client node d<i> on the agent's socket.
 */
function blockdevs(dir: string, config: VmConfig, agentNbd?: string): string[] {
  if (agentNbd) return config.disks.map((d) => JSON.stringify({ driver: "nbd", "node-name": `d${d.index}`, server: { type: "unix", path: agentNbd }, export: `disk${d.index}` }));
  return config.disks.flatMap((d) => [
    JSON.stringify({ driver: "file", "node-name": `f${d.index}`, filename: join(dir, d.file) }),
    JSON.stringify({ driver: "qcow2", "node-name": `d${d.index}`, file: `f${d.index}` }),
  ]);
}

export function systemArgs(dir: string, config: VmConfig, opts: { incoming: boolean; agentNbd?: string }): string[] {
  const p = vmPaths(dir);
  const accel = accelerator();
  const args = [
    "-name", config.name,
    "-machine", `q35,accel=${accel}`,
    "-cpu", accel === "kvm" ? "host" : "max",
    "-smp", String(config.cpus),
    "-m", String(config.memoryMiB),
    "-nodefaults",
    "-no-user-config",
    "-vga", "std",
    "-vnc", `unix:${p.vnc}`,
    "-chardev", `socket,id=qmp,path=${p.qmp},server=on,wait=off`,
    "-mon", "chardev=qmp,mode=control",
    "-chardev", `socket,id=qmp-operator,path=${p.qmpOperator},server=on,wait=off`,
    "-mon", "chardev=qmp-operator,mode=control",
    "-chardev", `socket,id=qga,path=${join(dir, "qga.sock")},server=on,wait=off`,
    "-device", "virtio-serial-pci,id=vser",
    "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0",
    "-serial", `file:${join(dir, "serial.log")}`,
    "-pidfile", p.pid,
  ];
  for (const b of blockdevs(dir, config, opts.agentNbd)) args.push("-blockdev", b);
  // virtio-scsi: each disk's scsi-hd device (vd<i>) owns its block backend, so the operator
  // monitor can write as the guest would (HMP qemu-io -d vd<i>) through any filter above d<i>.
  args.push("-device", "virtio-scsi-pci,id=scsi0");
  for (const d of config.disks) args.push("-device", `scsi-hd,bus=scsi0.0,scsi-id=${d.index},lun=0,drive=d${d.index},id=vd${d.index},share-rw=on`);
  if (!config.networkConnected) args.push("-nic", "none");
  else args.push("-nic", "user,model=virtio-net-pci,restrict=on");
  if (opts.incoming) args.push("-incoming", "defer");
  return args;
}

export function daemonArgs(dir: string, config: VmConfig): string[] {
  const p = vmPaths(dir);
  const args = ["--chardev", `socket,id=qmp,path=${p.qmp},server=on,wait=off`, "--monitor", "chardev=qmp", "--pidfile", p.pid];
  for (const b of blockdevs(dir, config)) args.push("--blockdev", b);
  return args;
}

/** Starts a detached process and connects to its QMP socket; the log says why when it fails. */
export async function launch(bin: string, args: string[], dir: string): Promise<Qmp> {
  const p = vmPaths(dir);
  const log = openSync(p.log, "a");
  const child = spawn(bin, args, { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `exited with ${signal ?? code}`));
  child.once("error", (err) => (exited = err.message));
  child.unref();
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) throw new Error(`${bin} ${exited}: ${tail(p.log)}`);
    try {
      return await Qmp.connect(p.qmp, 200);
    } catch (err) {
      if (Date.now() > deadline) {
        try {
          process.kill(child.pid!, "SIGKILL");
        } catch {
          /* gone */
        }
        throw new Error(`${bin} did not open its QMP socket: ${(err as Error).message}; ${tail(p.log)}`);
      }
    }
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-3).join(" | ");
  } catch {
    return "(no log)";
  }
}

/**
 * A QEMU process's CPU usage as a share of the guest's virtual processors (0-100), from the
 * process's user and system time in /proc; sampled on demand, at most once a second.
 */
export function cpuSampler(pid: number, cpus: number): () => number {
  const ticks = (): number => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100 per second)
    } catch {
      return 0;
    }
  };
  let sample = { at: performance.now(), ticks: ticks(), percent: 0 };
  return () => {
    const now = performance.now();
    if (now - sample.at >= 1000) {
      const t = ticks();
      const percent = Math.max(0, Math.min(100, Math.round(((t - sample.ticks) * 10) / (now - sample.at) / Math.max(1, cpus) * 100)));
      sample = { at: now, ticks: t, percent };
    }
    return sample.percent;
  };
}

/** The pid in a VM's pidfile (0 when there is none). */
export function pidOf(dir: string): number {
  try {
    return Number(readFileSync(vmPaths(dir).pid, "utf8").trim()) || 0;
  } catch {
    return 0;
  }
}

/** The pid in a VM's pidfile if that process is alive (a zombie is not). */
export async function livePid(dir: string): Promise<number | undefined> {
  const pid = Number((await readFile(vmPaths(dir).pid, "utf8").catch(() => "")).trim());
  return pid && (await alive(pid)) ? pid : undefined;
}

/**
 * Whether a process still holds its files. A killed QEMU's main thread turns zombie before its
 * other threads are gone, and the image locks go only with the last of them.
 */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (stat === undefined) return false;
  if (stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z") return true;
  const threads = await readdir(`/proc/${pid}/task`).catch(() => []);
  return threads.length > 1;
}

/** Waits until a process is gone (after quit), killing it after `timeoutMs`. */
export async function waitGone(pid: number | undefined, timeoutMs = 10_000): Promise<void> {
  if (!pid) return;
  const deadline = Date.now() + timeoutMs;
  let killed = false;
  while (await alive(pid)) {
    if (Date.now() > deadline + 10_000) throw new Error(`process ${pid} did not end, even after SIGKILL`);
    if (Date.now() > deadline && !killed) {
      killed = true;
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
