/**
 * Bodies of the agent's management API (/api/v1) and of the agent-to-agent replication API
 * (/replication/v1). The console and the CLI import these same schemas, so a field renamed
 * here breaks their build rather than their users.
 */
import { z } from "zod";
import { AuthMode, BandwidthLimit, ReplicationFrequency, WorkloadPattern } from "./replication.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const VmName = z
  .string()
  .trim()
  .min(1, "name must not be empty")
  .max(100, "name must be at most 100 characters")
  .regex(/^[^/\\\0]+$/, "name must not contain slashes or NUL characters");

export const VmId = z.string().uuid("vmId must be a UUID as returned by GET /api/v1/vms");

/** FQDN or single-label host name, lower-cased. */
export const HostName = z
  .string()
  .trim()
  .toLowerCase()
  .min(1, "server name must not be empty")
  .max(253)
  .regex(
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
    "server name must be a host name or FQDN such as hv02.example.com",
  );

export const Port = z.number().int().min(1, "port must be 1-65535").max(65535, "port must be 1-65535");

export const WorkloadSpec = z.object({
  pattern: WorkloadPattern.default("idle"),
  /** Guest write rate in MiB/s; ignored when idle. */
  rateMiBps: z.number().min(0).max(2048, "rateMiBps must be at most 2048").default(1),
  /**
   * How the lab guest answers a quiesce request (application-consistent recovery points):
   * "works", or "fails" / "hangs" to rehearse a guest whose writers misbehave.
   */
  quiesce: z.enum(["works", "fails", "hangs"]).default("works"),
});
export type WorkloadSpec = z.infer<typeof WorkloadSpec>;

export const DiskSpec = z.object({
  sizeBytes: z
    .number()
    .int()
    .min(MiB, "disk size must be at least 1 MiB")
    .max(4096 * GiB, "disk size must be at most 4 TiB")
    .refine((n) => n % 4096 === 0, "disk size must be a multiple of 4096 bytes"),
});

export const CreateVmBody = z.object({
  name: VmName,
  cpus: z.number().int().min(1, "cpus must be 1-64").max(64, "cpus must be 1-64").default(1),
  memoryMiB: z.number().int().min(32, "memoryMiB must be 32-1048576").max(1048576).default(1024),
  disks: z.array(DiskSpec).min(1, "a VM needs 1 to 4 disks").max(4, "a VM needs 1 to 4 disks"),
  workload: WorkloadSpec.default({ pattern: "idle", rateMiBps: 1, quiesce: "works" }),
});
export type CreateVmBody = z.infer<typeof CreateVmBody>;

export const PowerAction = z.enum(["start", "shutdown", "turn-off", "save", "pause", "resume"]);
export type PowerAction = z.infer<typeof PowerAction>;

/** A query-string integer: digits only, so "" or "1e3" is an error rather than 0 or 1000. */
const QueryInt = (name: string) =>
  z
    .string({ message: `${name} is required` })
    .regex(/^\d{1,16}$/, `${name} must be a whole number of bytes`)
    .transform(Number);

export const DiskWriteQuery = z.object({ offset: QueryInt("offset") });
export const DiskReadQuery = z.object({
  offset: QueryInt("offset"),
  length: QueryInt("length").pipe(z.number().min(1, "length must be at least 1").max(64 * MiB, "length must be at most 64 MiB")),
});

export const AuthorizationEntry = z.object({
  /** FQDN, or one leading wildcard label such as *.example.com, or * for any. */
  primaryServer: z
    .string()
    .trim()
    .toLowerCase()
    .min(1, "primaryServer must not be empty")
    .regex(
      /^(\*|(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$/,
      "primaryServer must be an FQDN or one wildcard like *.example.com",
    ),
  storageLocation: z.string().trim().min(1, "storageLocation must be an absolute folder path").startsWith("/", "storageLocation must be an absolute folder path"),
  trustGroup: z.string().trim().min(1, "trustGroup must not be empty").max(64).regex(/^[A-Za-z0-9_.-]+$/, "trustGroup may use letters, digits, '.', '_' and '-'"),
});
export type AuthorizationEntry = z.infer<typeof AuthorizationEntry>;

export const ReplicaServerSettings = z
  .object({
    enabled: z.boolean(),
    http: z.object({ enabled: z.boolean(), port: Port }),
    https: z.object({ enabled: z.boolean(), port: Port }),
    authorization: z.discriminatedUnion("mode", [
      z.object({
        mode: z.literal("any"),
        defaultStorageLocation: z.string().trim().startsWith("/", "defaultStorageLocation must be an absolute folder path"),
        trustGroup: z.string().trim().min(1).max(64).default("DEFAULT"),
      }),
      z.object({ mode: z.literal("entries"), entries: z.array(AuthorizationEntry).max(1000) }),
    ]),
    /** Replication health is judged over this interval (View Replication Health), as in Hyper-V. */
    monitoring: z
      .object({
        intervalHours: z
          .number()
          .int()
          .refine((h) => (h >= 1 && h <= 24) || [48, 72, 96, 120, 144, 168].includes(h), "intervalHours must be 1-24 hours, or 2-7 days (48, 72, ... 168)"),
        startTime: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "startTime must be a time of day as HH:MM"),
      })
      .default({ intervalHours: 12, startTime: "09:00" }),
  })
  .refine((s) => !s.enabled || s.http.enabled || s.https.enabled, {
    message: "a Replica server needs HTTP or HTTPS (or both) enabled",
    path: ["https", "enabled"],
  })
  .refine((s) => !(s.http.enabled && s.https.enabled && s.http.port === s.https.port), {
    message: "HTTP and HTTPS need different ports",
    path: ["http", "port"],
  });
/** Input shape: `monitoring` may be left out (stored settings of earlier versions lack it). */
export type ReplicaServerSettings = z.input<typeof ReplicaServerSettings>;

const HhMm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "a time of day as HH:MM (00:00-23:59)");

/** When a relationship resynchronizes by itself once resynchronization is required. */
export const ResyncPolicy = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("manual") }),
  z.object({ mode: z.literal("automatic") }),
  z.object({ mode: z.literal("window"), start: HhMm, end: HhMm }),
]);

/** Additional recovery points, as in the wizard's "Additional Recovery Points" page. */
const RecoveryHistoryFields = {
  /** Additional hourly recovery points to keep: 0 keeps the latest point only. */
  recoveryHistory: z.number().int().min(0, "recoveryHistory must be 0-24 hourly points").max(24, "recoveryHistory must be 0-24 hourly points").default(0),
  /** Every how many hours a point is application-consistent (the guest quiesces); null: never. */
  appConsistentFrequencyHours: z
    .number()
    .int()
    .min(1, "appConsistentFrequencyHours must be 1-12 hours")
    .max(12, "appConsistentFrequencyHours must be 1-12 hours")
    .nullable()
    .default(null),
};
const appConsistentNeedsHistory = (b: { recoveryHistory?: number; appConsistentFrequencyHours?: number | null }) =>
  !(b.appConsistentFrequencyHours && b.recoveryHistory === 0);
const appConsistentNeedsHistoryError = {
  message: "application-consistent points need additional hourly recovery points (recoveryHistory 1-24)",
  path: ["appConsistentFrequencyHours"],
};

/** The wizard's Initial Replication page. */
export const InitialReplication = z.discriminatedUnion("method", [
  z.object({
    method: z.literal("network"),
    /** Start at this time (up to 7 days ahead) instead of now. */
    startAt: z.iso.datetime({ offset: true, message: "startAt must be an ISO 8601 date and time such as 2026-11-23T02:00:00Z" }).optional(),
  }),
  z.object({
    method: z.literal("external-media"),
    /** A new or empty folder on this host: the initial copy is exported there, to be imported on the Replica server. */
    folder: z.string().trim().min(1, "folder must be an absolute path").startsWith("/", "folder must be an absolute path"),
  }),
  /** The Replica server already has this VM (restored from a backup): only differences are sent. */
  z.object({ method: z.literal("existing-copy") }),
]);
export type InitialReplication = z.infer<typeof InitialReplication>;

export const EnableReplicationBody = z.object({
  replicaServer: HostName,
  replicaPort: Port,
  authMode: AuthMode.default("https"),
  compression: z.boolean().default(true),
  /** Indexes of the disks to replicate; default all (exclude a swap disk here). */
  disks: z
    .array(z.number().int().min(0).max(3))
    .min(1, "choose at least one disk")
    .refine((ds) => new Set(ds).size === ds.length, "each disk may be chosen once")
    .optional(),
  frequencySeconds: ReplicationFrequency.default(300),
  /** Per-VM limit in MiB/s on what this relationship sends; null: unlimited. */
  bandwidthLimitMiBps: BandwidthLimit.default(null),
  ...RecoveryHistoryFields,
  resyncPolicy: ResyncPolicy.default({ mode: "manual" }),
  initialReplication: InitialReplication.default({ method: "network" }),
  /** false: enable only; the initial copy waits for replicate-now (network method). */
  startInitialReplication: z.boolean().default(true),
}).refine(appConsistentNeedsHistory, appConsistentNeedsHistoryError);
export type EnableReplicationBody = z.infer<typeof EnableReplicationBody>;

/** Test Replication Connection: the Replica server, port and authentication of the Connection Parameters. */
export const TestConnectionBody = z.object({
  replicaServer: HostName,
  replicaPort: Port,
  authMode: AuthMode.default("https"),
});
export type TestConnectionBody = z.infer<typeof TestConnectionBody>;

export const ResynchronizeBody = z.object({
  /** Start at this time (up to 7 days ahead) instead of now. */
  at: z.iso.datetime({ offset: true, message: "at must be an ISO 8601 date and time such as 2026-11-23T02:00:00Z" }).optional(),
});

export const UpdateReplicationBody = z
  .object({
    frequencySeconds: ReplicationFrequency,
    compression: z.boolean(),
    bandwidthLimitMiBps: BandwidthLimit,
    recoveryHistory: RecoveryHistoryFields.recoveryHistory.removeDefault(),
    appConsistentFrequencyHours: RecoveryHistoryFields.appConsistentFrequencyHours.removeDefault(),
    resyncPolicy: ResyncPolicy,
    /** Reschedules an initial copy that has not started (at most 7 days ahead); null cancels the schedule. */
    initialStartAt: z.iso.datetime({ offset: true, message: "initialStartAt must be an ISO 8601 date and time such as 2026-11-23T02:00:00Z, or null" }).nullable(),
  })
  .partial()
  .refine((b) => Object.keys(b).length > 0, "give at least one setting to change");
export type UpdateReplicationBody = z.infer<typeof UpdateReplicationBody>;

export const ExportPointBody = z.object({
  /** A new or empty folder on the Replica server: raw disk images and manifest.json go there. */
  folder: z.string().trim().min(1, "folder must be an absolute path").startsWith("/", "folder must be an absolute path"),
});

export const TestFailoverBody = z.object({
  /** A recovery point id from GET .../recovery-points, or "latest". */
  pointId: z.union([z.literal("latest"), z.string().uuid("pointId must be 'latest' or a point id from GET .../recovery-points")]).default("latest"),
  /** Connect the test VM to this network; null keeps its network adapters disconnected. */
  network: z.string().trim().min(1, "network must not be empty").max(64, "network must be at most 64 characters").nullable().default(null),
});

export const FailoverOptionsBody = z.object({
  /** "Reverse the replication direction after failover". */
  reverse: z.boolean().default(true),
  /** "Start the Replica virtual machine after failover". */
  start: z.boolean().default(true),
});

export const HandoverBody = z.object({ seq: z.number().int().min(0), reverse: z.boolean(), unplanned: z.boolean().default(false) });

export const UnplannedFailoverBody = z.object({
  /** A recovery point id from GET .../recovery-points, or "latest". */
  pointId: z.union([z.literal("latest"), z.string().uuid("pointId must be 'latest' or a point id from GET .../recovery-points")]).default("latest"),
  start: z.boolean().default(true),
});

export const ReverseReplicationBody = z.object({ replicaPort: Port.optional(), authMode: AuthMode.optional() });

export const ImportInitialReplicaBody = z.object({
  /** The folder the primary exported the initial copy to (disk images and manifest.json). */
  folder: z.string().trim().min(1, "folder must be an absolute path").startsWith("/", "folder must be an absolute path"),
});

/** Settings of replication on this host as a primary: a limit shared by all its relationships. */
export const HostReplicationSettings = z.object({ bandwidthLimitMiBps: BandwidthLimit });
export type HostReplicationSettings = z.infer<typeof HostReplicationSettings>;

export const EventsQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
  vmId: VmId.optional(),
  /** Event stream only: also send `metrics` (CPU usage of running VMs) every this many seconds. */
  metricsSeconds: z.coerce.number().int().min(1, "metricsSeconds must be 1-60").max(60, "metricsSeconds must be 1-60").optional(),
});

/** What an event stream's `metrics` message carries (not stored, no id: a snapshot). */
export interface VmMetrics {
  ts: string;
  vms: { id: string; cpuUsagePercent: number }[];
}

/** Agent to agent: the primary asks the replica server to create the replica VM. */
export const CreateReplicaBody = z.object({
  relationshipId: z.string().uuid(),
  vmId: VmId,
  vmName: VmName,
  cpus: z.number().int().min(1).max(64),
  memoryMiB: z.number().int().min(32).max(1048576),
  disks: z
    .array(z.object({ index: z.number().int().min(0).max(3), sizeBytes: DiskSpec.shape.sizeBytes }))
    .min(1)
    .max(4)
    .refine((ds) => new Set(ds.map((d) => d.index)).size === ds.length, "disk indexes must be unique"),
  frequencySeconds: z.number().int().min(1).max(86400),
  recoveryHistory: z.number().int().min(0).max(24).default(0),
  initialMethod: z.enum(["network", "external-media", "existing-copy"]).default("network"),
});
export type CreateReplicaBody = z.infer<typeof CreateReplicaBody>;

export const CycleParams = z.object({
  id: z.string().uuid(),
  seq: z.coerce.number().int().min(0),
});
export const CycleQuery = z.object({
  /** The replica must hold exactly this cycle before applying; -1 for the initial copy. */
  base: z.coerce.number().int().min(-1),
  /** "1": a resynchronization cycle, which may skip sequence numbers the replica never saw. */
  resync: z.enum(["0", "1"]).default("0"),
});

/** Agent to agent: a resynchronization asks the replica for hashes of its blocks. */
export const BlockHashesBody = z
  .object({
    disk: z.number().int().min(0).max(3),
    blockSize: z.union([z.literal(4096), z.literal(65536)]),
    /** [offset, length] pairs in bytes, aligned to blockSize. */
    ranges: z
      .array(z.tuple([z.number().int().min(0), z.number().int().min(1)]))
      .min(1)
      .max(65536),
  })
  .refine((b) => b.ranges.every(([o, l]) => o % b.blockSize === 0 && l % b.blockSize === 0), "ranges must be aligned to blockSize")
  .refine((b) => b.ranges.reduce((n, [, l]) => n + l, 0) <= 1024 * MiB, "at most 1 GiB of ranges per request");
export type BlockHashesBody = z.infer<typeof BlockHashesBody>;
