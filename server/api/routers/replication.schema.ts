/**
 * Inputs of the replication router, with messages meant for the field they sit beside. Field
 * names are the agent's (replicaServer, frequencySeconds, initialReplication.startAt, ...), so
 * the agent's own field issues land on the same fields. Imports nothing but zod: the browser's
 * wizard validates its pages with the same rules.
 */
import { z } from "zod";

/** Hyper-V's 30 s, 5 and 15 min, and ★ 5, 10 and 15 s. */
export const FREQUENCIES = [30, 300, 900, 5, 10, 15] as const;
export const MAX_SCHEDULE_DAYS = 7;

export const HostRef = z.object({ hostId: z.string().min(1, "hostId is required") });
export const VmRef = HostRef.extend({ vmId: z.string().uuid("vmId must be a VM id as listed") });

export const ServerName = z
  .string()
  .trim()
  .toLowerCase()
  .min(1, "enter the name or FQDN of the Replica server")
  .max(253, "a server name is at most 253 characters")
  .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, "enter a server name or FQDN such as hv02.example.com (letters, digits, hyphens and dots)");

export const ReplicaPort = z.number({ error: "enter a port number" }).int("enter a whole port number").min(1, "the port is 1 to 65535").max(65535, "the port is 1 to 65535");
export const AuthMode = z.enum(["https", "http"], { error: "choose HTTPS (certificate) or HTTP authentication" });
export const Frequency = z
  .number({ error: "choose a replication frequency" })
  .refine((s) => (FREQUENCIES as readonly number[]).includes(s), "choose 30 seconds, 5 minutes or 15 minutes (or 5, 10 or 15 seconds)");
export const RecoveryHistory = z.number({ error: "enter 0 to 24 hourly recovery points" }).int("enter a whole number of hours").min(0, "additional recovery points cover 1 to 24 hours").max(24, "additional recovery points cover 1 to 24 hours");
export const AppConsistentHours = z.number({ error: "enter 1 to 12 hours" }).int("enter a whole number of hours").min(1, "an application-consistent snapshot is taken every 1 to 12 hours").max(12, "an application-consistent snapshot is taken every 1 to 12 hours");
export const BandwidthLimit = z
  .number({ error: "enter a limit in MB/s, or no limit" })
  .min(0.1, "the bandwidth limit is 0.1 to 100000 MB/s")
  .max(100_000, "the bandwidth limit is 0.1 to 100000 MB/s")
  .nullable();
export const Folder = z.string().trim().min(1, "enter a folder").startsWith("/", "enter an absolute folder path, such as /media/usb/sql-01");

/** A time in the future, at most 7 days ahead (checked when the request arrives). */
export const FutureTime = z.iso
  .datetime({ offset: true, message: "enter a date and time" })
  .refine((t) => Date.parse(t) > Date.now() - 60_000, "choose a time in the future")
  .refine((t) => Date.parse(t) <= Date.now() + MAX_SCHEDULE_DAYS * 24 * 3600_000, `choose a time at most ${MAX_SCHEDULE_DAYS} days ahead`);

const HhMm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "enter a time of day as HH:MM");
export const ResyncPolicy = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("manual") }),
  z.object({ mode: z.literal("automatic") }),
  z.object({ mode: z.literal("window"), start: HhMm, end: HhMm }),
]);

export const InitialReplication = z.discriminatedUnion("method", [
  z.object({ method: z.literal("network"), startAt: FutureTime.optional() }),
  z.object({ method: z.literal("external-media"), folder: Folder }),
  z.object({ method: z.literal("existing-copy") }),
]);

const appConsistentNeedsHistory = {
  check: (b: { recoveryHistory?: number; appConsistentFrequencyHours?: number | null }) => !(b.appConsistentFrequencyHours && b.recoveryHistory === 0),
  error: { message: "application-consistent snapshots need additional hourly recovery points", path: ["appConsistentFrequencyHours"] },
};

export const CheckReplicaServerInput = HostRef.extend({ replicaServer: ServerName });

export const EstimateInput = VmRef.extend({
  disks: z.array(z.number().int().min(0).max(3)).min(1, "choose at least one virtual hard disk").optional(),
  recoveryHistory: RecoveryHistory,
});

export const EnableInput = VmRef.extend({
  replicaServer: ServerName,
  replicaPort: ReplicaPort,
  authMode: AuthMode,
  compression: z.boolean(),
  disks: z.array(z.number().int().min(0).max(3)).min(1, "choose at least one virtual hard disk to replicate"),
  frequencySeconds: Frequency,
  bandwidthLimitMiBps: BandwidthLimit,
  recoveryHistory: RecoveryHistory,
  appConsistentFrequencyHours: AppConsistentHours.nullable(),
  resyncPolicy: ResyncPolicy.default({ mode: "manual" }),
  initialReplication: InitialReplication,
}).refine(appConsistentNeedsHistory.check, appConsistentNeedsHistory.error);
export type EnableInput = z.input<typeof EnableInput>;

export const SettingsInput = VmRef.extend({
  frequencySeconds: Frequency.optional(),
  compression: z.boolean().optional(),
  bandwidthLimitMiBps: BandwidthLimit.optional(),
  recoveryHistory: RecoveryHistory.optional(),
  appConsistentFrequencyHours: AppConsistentHours.nullable().optional(),
  resyncPolicy: ResyncPolicy.optional(),
})
  .refine(appConsistentNeedsHistory.check, appConsistentNeedsHistory.error)
  .refine((b) => Object.keys(b).some((k) => k !== "hostId" && k !== "vmId"), { message: "change at least one setting", path: ["frequencySeconds"] });

export const ResynchronizeInput = VmRef.extend({ at: FutureTime.optional() });
/** Start Replication: now (no initialStartAt), at a time, or null to cancel a schedule. */
export const StartInitialInput = VmRef.extend({ initialStartAt: FutureTime.nullable().optional() });
/** Test Replication Connection from the VM's host (the primary) with the Connection Parameters. */
export const TestConnectionInput = HostRef.extend({ replicaServer: ServerName, replicaPort: ReplicaPort, authMode: AuthMode });
export const ImportInput = VmRef.extend({ folder: Folder });
