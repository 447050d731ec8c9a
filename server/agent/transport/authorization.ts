/**
 * Who may replicate to this Replica server, into which storage, in which trust group:
 * Hyper-V's authorization entries. A replica VM remembers the trust group it was created
 * under and accepts updates only from primaries in that group.
 */
import type { AuthorizationEntry, ReplicaServerSettings } from "../../shared/agent-api.js";
import { forbidden } from "../errors.js";

export function matchesPattern(pattern: string, server: string): boolean {
  const p = pattern.toLowerCase();
  const s = server.toLowerCase();
  if (p === "*") return true;
  if (p.startsWith("*.")) return s.endsWith(p.slice(1)) && s.length > p.length - 1;
  return p === s;
}

/** Exact names first, then narrower wildcards, then "*". */
function specificity(e: AuthorizationEntry): number {
  if (e.primaryServer === "*") return 0;
  if (e.primaryServer.startsWith("*.")) return e.primaryServer.length;
  return 10_000;
}

export interface Authorized {
  storageLocation: string;
  trustGroup: string;
}

export function authorizePrimary(settings: ReplicaServerSettings, primary: string, trustGroup?: string): Authorized {
  if (!settings.enabled) {
    throw forbidden(`this host is not enabled as a Replica server; enable it in Replication Configuration before replicating to it`);
  }
  const auth = settings.authorization;
  if (auth.mode === "any") {
    if (trustGroup !== undefined && trustGroup !== auth.trustGroup) {
      throw forbidden(`primary server '${primary}' is not in trust group '${trustGroup}' of this replica virtual machine`);
    }
    return { storageLocation: auth.defaultStorageLocation, trustGroup: auth.trustGroup ?? "DEFAULT" };
  }
  const matching = auth.entries.filter((e) => matchesPattern(e.primaryServer, primary)).sort((a, b) => specificity(b) - specificity(a));
  if (matching.length === 0) {
    throw forbidden(
      `primary server '${primary}' is not authorized: no authorization entry on this Replica server matches it; add an entry for it (or a wildcard such as *.${primary.split(".").slice(1).join(".") || "example.com"})`,
    );
  }
  const entry = trustGroup === undefined ? matching[0] : matching.find((e) => e.trustGroup === trustGroup);
  if (!entry) {
    throw forbidden(`primary server '${primary}' is not in trust group '${trustGroup}' of this replica virtual machine; its entries are in ${[...new Set(matching.map((e) => e.trustGroup))].join(", ")}`);
  }
  return { storageLocation: entry.storageLocation, trustGroup: entry.trustGroup };
}
