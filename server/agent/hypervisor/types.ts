/**
 * What the replication engine needs from a hypervisor driver. `lab` implements it with raw
 * sparse images and an in-agent guest; `qemu` will implement it with QMP and dirty bitmaps.
 */
import type { WorkloadSpec } from "../../shared/agent-api.js";
import type { VmState } from "../../shared/replication.js";
import type { TrackingLoss } from "../tracking/region-log.js";

export type { VmState };

export interface VmDiskInfo {
  index: number;
  sizeBytes: number;
  file: string;
}

export interface VmConfig {
  id: string;
  name: string;
  cpus: number;
  memoryMiB: number;
  disks: VmDiskInfo[];
  workload: WorkloadSpec;
  state: VmState;
  /** Set on replica VMs: they may not start until failed over. */
  replicaOf?: { primaryServer: string };
  /** Network adapters connected (false for test failover VMs, unless given a test network). */
  networkConnected: boolean;
  /** The network the adapters are connected to, when it is not the VM's usual one. */
  networkName?: string;
  /** Set on a test failover VM: the replica and recovery point it runs from. */
  testOf?: { vmId: string; pointId: string; pointAt: string | null; seq: number };
  createdAt: string;
  stateChangedAt: string;
  /** Set on VMs that QEMU runs (qcow2 disks); absent on lab VMs and on replicas' raw images. */
  driver?: "qemu";
}


/** Why change tracking was lost, as the reason of Resynchronization required says it. */
const LOSS_REASONS: Record<TrackingLoss, string> = {
  "host-crash": "the host restarted without a clean shutdown, so changes written just before may not be tracked",
  "disk-modified-while-off": "a disk image was modified while change tracking was off",
  "log-missing": "the change-tracking log is missing",
  "log-corrupt": "the change-tracking log is damaged",
  "qemu-crash": "the QEMU process ended without storing its dirty bitmaps (QEMU or the host crashed)",
  "bitmap-missing": "the disk's dirty bitmap is missing (QEMU or the host crashed before storing it, or the image was replaced outside the agent)",
};

export function describeLoss(lost: Map<number, TrackingLoss>): string {
  return [...lost].map(([disk, r]) => `disk ${disk}: ${LOSS_REASONS[r] ?? r}`).join("; ");
}

/** Thrown by a freeze when the hypervisor lost track of changes: a resynchronization is needed. */
export class TrackingLostError extends Error {}

/** One disk's frozen changed set, readable as of the freeze. */
export interface FrozenDisk {
  index: number;
  blockSize: number;
  changedBytes: number;
  runs(maxBlocks: number): Iterable<[number, number]>;
  /**
   * Reads blocks [fromBlock, toBlock) as of the freeze; may read them into `into` (large
   * enough) and return it, or return a buffer of its own.
   */
  read(fromBlock: number, toBlock: number, into?: Buffer): Promise<Buffer>;
}

export interface FrozenCycle {
  disks: FrozenDisk[];
  frozenAt: Date;
  /** The replica made this point durable: forget these changes. */
  commit(): Promise<void>;
  /** The cycle failed: these changes go into the next cycle. */
  release(): Promise<void>;
}

export interface ReplicableVm {
  readonly id: string;
  readonly config: VmConfig;
  startTracking(disks: number[], allDirty: boolean): Promise<void>;
  /** After a restart: which disks lost track of their changes, and why. */
  resumeTracking(disks: number[]): Promise<Map<number, TrackingLoss>>;
  stopTracking(): Promise<void>;
  freeze(disks: number[]): Promise<FrozenCycle>;
  /** Counts blocks [from, to) of a disk as changed, so that the next freeze covers them. */
  markChanged(disk: number, fromBlock: number, toBlock: number): Promise<void>;
  /** Forgets what changed on these disks (a resynchronization compares them whole instead). */
  clearChanged(disks: number[]): Promise<void>;
  /**
   * Asks the guest to quiesce (flush and hold its writes) for an application-consistent
   * point; resolves to the thaw, or rejects with why the guest could not.
   */
  quiesce(timeoutMs: number): Promise<() => void>;
  pendingBytes(): number;
}
