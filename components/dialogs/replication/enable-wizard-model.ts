/**
 * The Enable Replication wizard's values, their rules (the server's own field schemas, so the
 * browser says what the server would), the page each field lives on, and the conversion to
 * the router's input. Reused by any wizard built from the same pages (Reverse Replication).
 */
import { z } from "zod";
import {
  AppConsistentHours,
  BandwidthLimit,
  Folder,
  FutureTime,
  RecoveryHistory,
  ReplicaPort,
  ServerName,
  Frequency,
  type EnableInput,
} from "@/server/api/routers/replication.schema";

export const WIZARD_PAGES = [
  "Before You Begin",
  "Specify Replica Server",
  "Specify Connection Parameters",
  "Choose Replication VHDs",
  "Configure Replication Frequency",
  "Configure Additional Recovery Points",
  "Choose Initial Replication Method",
  "Summary",
] as const;
export type WizardPageName = (typeof WIZARD_PAGES)[number];

export interface WizardValues {
  replicaServer: string;
  replicaPort: number;
  authMode: "https" | "http";
  compression: boolean;
  limitBandwidth: boolean;
  bandwidthLimitMiBps: number;
  disks: number[];
  frequencySeconds: number;
  additionalPoints: boolean;
  recoveryHistory: number;
  appConsistent: boolean;
  appConsistentFrequencyHours: number;
  initialMethod: "network" | "external-media" | "existing-copy";
  startLater: boolean;
  /** A datetime-local value (the browser's local time), e.g. 2026-11-23T02:00. */
  startAt: string;
  folder: string;
}
export type WizardField = keyof WizardValues;

/** Hyper-V's defaults: every disk, 5 minutes, compression on, latest point only, over the network now. */
export function wizardDefaults(disks: number[], prefill: Partial<WizardValues> = {}): WizardValues {
  return {
    replicaServer: "",
    replicaPort: 443,
    authMode: "https",
    compression: true,
    limitBandwidth: false,
    bandwidthLimitMiBps: 100,
    disks,
    frequencySeconds: 300,
    additionalPoints: false,
    recoveryHistory: 4,
    appConsistent: false,
    appConsistentFrequencyHours: 4,
    initialMethod: "network",
    startLater: false,
    startAt: "",
    folder: "",
    ...prefill,
  };
}

export const PAGE_FIELDS: Record<WizardPageName, WizardField[]> = {
  "Before You Begin": [],
  "Specify Replica Server": ["replicaServer"],
  "Specify Connection Parameters": ["replicaPort", "authMode", "compression", "limitBandwidth", "bandwidthLimitMiBps"],
  "Choose Replication VHDs": ["disks"],
  "Configure Replication Frequency": ["frequencySeconds"],
  "Configure Additional Recovery Points": ["additionalPoints", "recoveryHistory", "appConsistent", "appConsistentFrequencyHours"],
  "Choose Initial Replication Method": ["initialMethod", "startLater", "startAt", "folder"],
  Summary: [],
};

export function pageOf(field: string): WizardPageName | undefined {
  return WIZARD_PAGES.find((p) => PAGE_FIELDS[p].includes(field as WizardField));
}

/** A datetime-local value as an ISO time, or null when it is not a date. */
export function localToIso(local: string): string | null {
  const t = Date.parse(local);
  return local && !Number.isNaN(t) ? new Date(t).toISOString() : null;
}

/**
 * Every rule, field by field; the whole form is checked at once (react-hook-form keeps only
 * the messages of the fields a page asks about), so conditional fields are checked here too.
 */
export const wizardSchema = z.custom<WizardValues>((v) => typeof v === "object" && v !== null).superRefine((v, ctx) => {
  const check = (field: WizardField, schema: z.ZodType, value: unknown) => {
    const r = schema.safeParse(value);
    if (!r.success) ctx.addIssue({ code: "custom", path: [field], message: r.error.issues[0]!.message });
  };
  check("replicaServer", ServerName, v.replicaServer);
  check("replicaPort", ReplicaPort, Number.isNaN(v.replicaPort) ? undefined : v.replicaPort);
  if (v.limitBandwidth) check("bandwidthLimitMiBps", BandwidthLimit, Number.isNaN(v.bandwidthLimitMiBps) ? undefined : v.bandwidthLimitMiBps);
  if (v.disks.length === 0) ctx.addIssue({ code: "custom", path: ["disks"], message: "choose at least one virtual hard disk to replicate" });
  check("frequencySeconds", Frequency, v.frequencySeconds);
  if (v.additionalPoints) {
    check("recoveryHistory", RecoveryHistory.min(1, "additional recovery points cover 1 to 24 hours"), Number.isNaN(v.recoveryHistory) ? undefined : v.recoveryHistory);
    if (v.appConsistent) check("appConsistentFrequencyHours", AppConsistentHours, Number.isNaN(v.appConsistentFrequencyHours) ? undefined : v.appConsistentFrequencyHours);
  }
  if (v.initialMethod === "external-media") check("folder", Folder, v.folder);
  if (v.initialMethod === "network" && v.startLater) check("startAt", FutureTime, localToIso(v.startAt) ?? "");
});

/** The router's input from the wizard's values. */
export function toEnableInput(hostId: string, vmId: string, v: WizardValues): EnableInput {
  const startAt = v.initialMethod === "network" && v.startLater ? localToIso(v.startAt) : null;
  return {
    hostId,
    vmId,
    replicaServer: v.replicaServer.trim().toLowerCase(),
    replicaPort: v.replicaPort,
    authMode: v.authMode,
    compression: v.compression,
    disks: v.disks,
    frequencySeconds: v.frequencySeconds,
    bandwidthLimitMiBps: v.limitBandwidth ? v.bandwidthLimitMiBps : null,
    recoveryHistory: v.additionalPoints ? v.recoveryHistory : 0,
    appConsistentFrequencyHours: v.additionalPoints && v.appConsistent ? v.appConsistentFrequencyHours : null,
    initialReplication:
      v.initialMethod === "external-media" ? { method: "external-media", folder: v.folder.trim() } : v.initialMethod === "existing-copy" ? { method: "existing-copy" } : { method: "network", ...(startAt ? { startAt } : {}) },
  };
}

/** The server's field names (the agent's) as the wizard's. */
export function wizardFieldOf(serverField: string): WizardField | undefined {
  const map: Record<string, WizardField> = {
    "initialReplication.startAt": "startAt",
    "initialReplication.folder": "folder",
    initialReplication: "initialMethod",
  };
  const f = map[serverField] ?? serverField.split(".")[0];
  return f && pageOf(f) ? (f as WizardField) : undefined;
}
