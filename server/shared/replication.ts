/**
 * The names Hyper-V administrators know, shared by the agent, the console and the CLI.
 * Keep the wording: users search documentation and runbooks for these exact strings.
 */
import { z } from "zod";

export const ReplicationMode = z.enum(["Primary", "Replica", "Extended Replica", "Test Replica"]);
export type ReplicationMode = z.infer<typeof ReplicationMode>;

export const ReplicationState = z.enum([
  "Ready for initial replication",
  "Initial replication in progress",
  "Waiting for initial replication",
  "Replicating",
  "Suspended",
  "Resynchronization required",
  "Resynchronizing",
  "Prepared for planned failover",
  "Failed over (waiting for completion)",
  "Failover complete",
  "Error",
]);
export type ReplicationState = z.infer<typeof ReplicationState>;

export const ReplicationHealth = z.enum(["Normal", "Warning", "Critical"]);
export type ReplicationHealth = z.infer<typeof ReplicationHealth>;

/** Hyper-V's three frequencies, in seconds. 300 is the default, as in Hyper-V. */
export const REPLICATION_FREQUENCIES = [30, 300, 900] as const;
/** Beyond Hyper-V: the same engine replicates as often as every 5 seconds. */
export const FAST_REPLICATION_FREQUENCIES = [5, 10, 15] as const;
export const ReplicationFrequency = z
  .number()
  .int()
  .refine((s) => ([...FAST_REPLICATION_FREQUENCIES, ...REPLICATION_FREQUENCIES] as number[]).includes(s), {
    message: "frequencySeconds must be 30, 300 or 900 (30 seconds, 5 or 15 minutes), or 5, 10 or 15 seconds",
  });

/** A replication bandwidth limit in MiB/s (token bucket); null: unlimited. */
export const BandwidthLimit = z.number().min(0.1, "bandwidth limit must be at least 0.1 MiB/s").max(100_000, "bandwidth limit must be at most 100000 MiB/s").nullable();

export const AuthMode = z.enum(["https", "http"]);
export type AuthMode = z.infer<typeof AuthMode>;

export const EventSeverity = z.enum(["info", "warning", "error"]);
export type EventSeverity = z.infer<typeof EventSeverity>;

export const VmState = z.enum(["Off", "Starting", "Running", "Stopping", "Saving", "Saved", "Paused"]);
export type VmState = z.infer<typeof VmState>;

export const WorkloadPattern = z.enum(["idle", "random-4k", "sequential-1m"]);
export type WorkloadPattern = z.infer<typeof WorkloadPattern>;
