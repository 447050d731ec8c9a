/**
 * Test Replication Connection (Hyper-V's Test-VMReplicationConnection): from this host, reach a
 * Replica server's replication listener with the chosen port and authentication, and ask it the
 * harmless GET /replication/v1/server, which runs the same authentication and authorization as
 * enabling replication would. Nothing is created there. The answer lists each check and, for
 * the first one that failed, the request field to change and how.
 */
import type { TestConnectionBody } from "../../shared/agent-api.js";
import { PeerError, type PeerClient } from "../transport/peer-client.js";

export type ConnectionCheckName = "credentials" | "connection" | "certificate" | "authentication" | "authorization";
export type ConnectionField = "replicaServer" | "replicaPort" | "authMode";

export interface ConnectionCheck {
  name: ConnectionCheckName;
  status: "passed" | "failed" | "skipped";
  message: string;
}

export interface ConnectionTestResult {
  ok: boolean;
  replicaServer: string;
  replicaPort: number;
  authMode: "https" | "http";
  checks: ConnectionCheck[];
  /** The first failed check: which field of the request to change, and how. */
  failure: { check: ConnectionCheckName; field: ConnectionField; code: string; message: string } | null;
  /** The trust group a replica VM from this host would be created in. */
  trustGroup: string | null;
  durationMs: number;
}

const TIMEOUT_MS = 10_000;

/** TLS verification errors of the Replica server's certificate (Node's and OpenSSL's codes). */
const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);
const NOT_TLS = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_PACKET_LENGTH_TOO_LONG", "EPROTO"]);

interface Failure {
  check: ConnectionCheckName;
  field: ConnectionField;
  code: string;
  message: string;
}

/** What a refusal or a failed request means for the user, and what to change. */
function classify(err: unknown, t: TestConnectionBody): Failure {
  const where = `${t.replicaServer}:${t.replicaPort}`;
  const kind = t.authMode.toUpperCase();
  if (!(err instanceof PeerError)) return { check: "connection", field: "replicaServer", code: "UNREACHABLE", message: `cannot reach ${where}: ${(err as Error).message}` };
  if (err.code === "NO_CERTIFICATE" || err.code === "NO_TOKEN") {
    const other = t.authMode === "https" ? "http" : "https";
    return { check: "credentials", field: "authMode", code: err.code, message: `${err.message}, or choose authentication type ${other.toUpperCase()}` };
  }
  const peerSaid = err.message.replace(/^.*? answered \d+: /s, "");
  if (err.status === 401) {
    // The management API answers 401 too, with its own message: the port is the wrong listener.
    if (/management token/.test(peerSaid)) return { check: "connection", field: "replicaPort", code: "NOT_REPLICATION_PORT", message: `port ${t.replicaPort} is the management API of ${t.replicaServer}, not its replication listener: use the Replica server's ${kind} replication port` };
    return { check: "authentication", field: "authMode", code: "UNAUTHENTICATED", message: `the Replica server ${where} did not accept this host's ${t.authMode === "https" ? "certificate" : "replication token"}: ${peerSaid}` };
  }
  if (err.status === 403) return { check: "authorization", field: "replicaServer", code: "FORBIDDEN", message: `the Replica server ${t.replicaServer} does not authorize this host: ${peerSaid}` };
  if (err.status === 404) return { check: "connection", field: "replicaPort", code: "NOT_REPLICATION_PORT", message: `port ${t.replicaPort} of ${t.replicaServer} answers, but it is not a replication listener: use the Replica server's ${kind} replication port` };
  if (err.status > 0) return { check: "connection", field: "replicaPort", code: err.code, message: `${where} answered ${err.status}: ${peerSaid}` };
  const cause = String(err.details?.cause ?? "");
  if (cause === "ENOTFOUND" || cause === "EAI_AGAIN") return { check: "connection", field: "replicaServer", code: cause, message: `the name ${t.replicaServer} cannot be resolved on this host: check the name, or the host's DNS (or the agent's resolve map)` };
  if (cause === "ECONNREFUSED") return { check: "connection", field: "replicaPort", code: cause, message: `nothing listens on port ${t.replicaPort} of ${t.replicaServer}: use the ${kind} port of its Replication Configuration, and check that ${kind} is enabled there` };
  if (cause === "TIMEOUT" || cause === "ETIMEDOUT" || cause === "EHOSTUNREACH" || cause === "ENETUNREACH") {
    return { check: "connection", field: "replicaServer", code: cause, message: `no answer from ${where} within ${TIMEOUT_MS / 1000} s: check that ${t.replicaServer} is up and that a firewall lets port ${t.replicaPort} through` };
  }
  if (UNTRUSTED.has(cause)) return { check: "certificate", field: "authMode", code: cause, message: `the certificate of ${where} is not trusted by this host (${cause}): issue it from a CA listed in this host's replication.tls.ca, or add its CA there` };
  if (cause === "ERR_TLS_CERT_ALTNAME_INVALID") return { check: "certificate", field: "replicaServer", code: cause, message: `the certificate of ${where} is not issued to ${t.replicaServer}: enter the name its certificate carries, or issue it a certificate with that name` };
  if (cause === "CERT_HAS_EXPIRED" || cause === "CERT_NOT_YET_VALID") return { check: "certificate", field: "authMode", code: cause, message: `the certificate of ${where} ${cause === "CERT_HAS_EXPIRED" ? "has expired" : "is not valid yet"}: renew it (and check both hosts' clocks)` };
  if (NOT_TLS.has(cause) || /wrong version number|packet length too long/i.test(err.message)) {
    return { check: "connection", field: "replicaPort", code: "NOT_TLS", message: `port ${t.replicaPort} of ${t.replicaServer} does not speak TLS (it may be the HTTP port): use the Replica server's HTTPS port` };
  }
  if (t.authMode === "http" && (cause === "ECONNRESET" || /socket hang up/.test(err.message))) {
    return { check: "connection", field: "replicaPort", code: "NOT_HTTP", message: `port ${t.replicaPort} of ${t.replicaServer} closed the connection without an HTTP answer (it may be the HTTPS port): use the Replica server's HTTP port` };
  }
  return { check: "connection", field: "replicaPort", code: cause || err.code, message: err.message };
}

const ORDER: ConnectionCheckName[] = ["credentials", "connection", "certificate", "authentication", "authorization"];

function passedMessage(name: ConnectionCheckName, t: TestConnectionBody, trustGroup: string | null): string {
  const where = `${t.replicaServer}:${t.replicaPort}`;
  switch (name) {
    case "credentials":
      return t.authMode === "https" ? "this host has a replication certificate" : "this host has a replication token";
    case "connection":
      return `the replication listener at ${where} answers`;
    case "certificate":
      return `the certificate of ${where} is issued to ${t.replicaServer} by a CA this host trusts`;
    case "authentication":
      return t.authMode === "https" ? "the Replica server accepts this host's certificate" : "the Replica server accepts this host's signed token";
    case "authorization":
      return `the Replica server authorizes this host (trust group ${trustGroup})`;
  }
}

export async function testReplicationConnection(peers: PeerClient, t: TestConnectionBody): Promise<ConnectionTestResult> {
  const started = Date.now();
  const names = ORDER.filter((n) => n !== "certificate" || t.authMode === "https");
  let failure: Failure | null = null;
  let trustGroup: string | null = null;
  try {
    const answer = await peers.json<{ accepted: boolean; trustGroup: string }>({ server: t.replicaServer, port: t.replicaPort, mode: t.authMode }, "GET", "/replication/v1/server", undefined, undefined, TIMEOUT_MS);
    trustGroup = answer.trustGroup;
  } catch (err) {
    failure = classify(err, t);
  }
  const failedAt = failure ? names.indexOf(failure.check) : names.length;
  const checks = names.map((name, i): ConnectionCheck => {
    if (i < failedAt) return { name, status: "passed", message: passedMessage(name, t, trustGroup) };
    if (i === failedAt) return { name, status: "failed", message: failure!.message };
    return { name, status: "skipped", message: "not checked: an earlier check failed" };
  });
  return { ok: !failure, replicaServer: t.replicaServer, replicaPort: t.replicaPort, authMode: t.authMode, checks, failure, trustGroup, durationMs: Date.now() - started };
}
