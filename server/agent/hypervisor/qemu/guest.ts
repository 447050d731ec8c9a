/**
 * What the power actions need of a VM whose guest QEMU runs: a QemuVm (qcow2 disks held by
 * QEMU) or a ServedGuest (disks the agent keeps and serves to QEMU over NBD).
 */
import type { Qmp } from "./qmp.js";

export interface QemuGuest {
  readonly dir: string;
  /** qemu-system is running the guest. */
  readonly running: boolean;
  qmp(): Promise<Qmp>;
  /** Starts qemu-system (`incoming`: waiting for a saved memory state). */
  startSystem(incoming: boolean): Promise<Qmp>;
  /** After qemu-system ended: who holds the disks now takes them back. */
  stopped(): Promise<void>;
  /** Before the memory state is saved: what keeps the disks active lets go. */
  beforeSave(): Promise<void>;
  quit(): Promise<void>;
  /** The process is about to end by the guest's own shutdown: not a crash. */
  expectExit(on: boolean): void;
}
