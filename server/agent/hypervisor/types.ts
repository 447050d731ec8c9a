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
}

/** One disk's frozen changed set, readable as of the freeze. */
export interface FrozenDisk {
  index: number;
  blockSize: number;
  changedBytes: number;
  runs(maxBlocks: number): Iterable<[number, number]>;
  read(fromBlock: number, toBlock: number): Promise<Buffer>;
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
