/**
 * Bad input on every management endpoint: each answer is a 4xx whose message names the
 * offending field (or the state that forbids the action), and nothing stored changes.
 */
import { rm } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineAgent, diskHash, MGMT_TOKEN, REPL_TOKEN, tempDir, type AgentProcess, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const UNKNOWN = "0b7c4a3e-5d1f-4c2a-9e8b-123456789abc";

interface ErrorBody {
  error: { code: string; message: string; details?: { issues?: { field: string; message: string }[]; state?: string } };
}

interface Case {
  name: string;
  method: string;
  /** {A}: a 2-disk VM that is Off; {B}: a 1-disk VM that is Saved; {X}: a UUID of no VM. */
  path: string;
  /** JSON body (sent as application/json). */
  json?: unknown;
  /** A JSON body built when sent: the agent's current Replica server settings with one change. */
  settings?: () => Record<string, unknown>;
  /** Raw body with its own content type (or none). */
  raw?: { type?: string; data: string | Buffer };
  /** Authorization header; default the right bearer token, null for none. */
  auth?: string | null;
  /** The exact status, or "4xx" where any client error is right. */
  status: number | "4xx";
  /** A validation error: the message and details.issues name this field. */
  field?: string;
  /** Otherwise (or also): what the message must say. */
  message?: RegExp;
}

function settings(patch: (s: Record<string, unknown>) => void): () => Record<string, unknown> {
  return () => {
    const s = structuredClone(current.replicaServer) as Record<string, unknown>;
    patch(s);
    return s;
  };
}

const cases: Case[] = [
  // Authentication comes before anything else.
  { name: "no bearer token", method: "GET", path: "/api/v1/vms", auth: null, status: 401, message: /Authorization: Bearer/ },
  { name: "wrong bearer token", method: "POST", path: "/api/v1/vms", auth: "Bearer not-the-token-0123456789ab", json: { name: "x", disks: [{ sizeBytes: MiB }] }, status: 401, message: /management token/ },
  { name: "another scheme", method: "GET", path: "/api/v1/replica-server", auth: `Basic ${MGMT_TOKEN}`, status: 401, message: /Authorization: Bearer/ },

  // POST /api/v1/vms
  { name: "empty object", method: "POST", path: "/api/v1/vms", json: {}, status: 400, field: "body.disks", message: /body\.name/ },
  { name: "name of the wrong type", method: "POST", path: "/api/v1/vms", json: { name: 42, disks: [{ sizeBytes: MiB }] }, status: 400, field: "body.name" },
  { name: "name with a slash", method: "POST", path: "/api/v1/vms", json: { name: "a/b", disks: [{ sizeBytes: MiB }] }, status: 400, field: "body.name", message: /slashes/ },
  { name: "blank name", method: "POST", path: "/api/v1/vms", json: { name: "   ", disks: [{ sizeBytes: MiB }] }, status: 400, field: "body.name" },
  { name: "disks not an array", method: "POST", path: "/api/v1/vms", json: { name: "x", disks: "big" }, status: 400, field: "body.disks" },
  { name: "no disks", method: "POST", path: "/api/v1/vms", json: { name: "x", disks: [] }, status: 400, field: "body.disks", message: /1 to 4 disks/ },
  { name: "5 disks", method: "POST", path: "/api/v1/vms", json: { name: "x", disks: Array.from({ length: 5 }, () => ({ sizeBytes: MiB })) }, status: 400, field: "body.disks", message: /1 to 4 disks/ },
  { name: "disk size not a multiple of 4096", method: "POST", path: "/api/v1/vms", json: { name: "x", disks: [{ sizeBytes: MiB + 512 }] }, status: 400, field: "body.disks.0.sizeBytes", message: /multiple of 4096/ },
  { name: "disk too small", method: "POST", path: "/api/v1/vms", json: { name: "x", disks: [{ sizeBytes: MiB }, { sizeBytes: 4096 }] }, status: 400, field: "body.disks.1.sizeBytes", message: /at least 1 MiB/ },
  { name: "disk size as a string", method: "POST", path: "/api/v1/vms", json: { name: "x", disks: [{ sizeBytes: "1M" }] }, status: 400, field: "body.disks.0.sizeBytes" },
  { name: "0 cpus", method: "POST", path: "/api/v1/vms", json: { name: "x", cpus: 0, disks: [{ sizeBytes: MiB }] }, status: 400, field: "body.cpus" },
  { name: "fractional cpus", method: "POST", path: "/api/v1/vms", json: { name: "x", cpus: 1.5, disks: [{ sizeBytes: MiB }] }, status: 400, field: "body.cpus" },
  { name: "too little memory", method: "POST", path: "/api/v1/vms", json: { name: "x", memoryMiB: 16, disks: [{ sizeBytes: MiB }] }, status: 400, field: "body.memoryMiB" },
  { name: "unknown workload pattern", method: "POST", path: "/api/v1/vms", json: { name: "x", disks: [{ sizeBytes: MiB }], workload: { pattern: "chaos" } }, status: 400, field: "body.workload.pattern" },
  { name: "workload rate too high", method: "POST", path: "/api/v1/vms", json: { name: "x", disks: [{ sizeBytes: MiB }], workload: { rateMiBps: 4096 } }, status: 400, field: "body.workload.rateMiBps" },
  { name: "a JSON array", method: "POST", path: "/api/v1/vms", json: [], status: 400, field: "body", message: /expected object/ },
  { name: "malformed JSON", method: "POST", path: "/api/v1/vms", raw: { type: "application/json", data: '{"name": "x", "disks": [' }, status: 400, message: /body.*JSON/i },
  { name: "empty JSON body", method: "POST", path: "/api/v1/vms", raw: { type: "application/json", data: "" }, status: 400, message: /body/i },
  // Fastify reads text/plain as a string, which is then not an object.
  { name: "text/plain body", method: "POST", path: "/api/v1/vms", raw: { type: "text/plain", data: '{"name":"x","disks":[{"sizeBytes":1048576}]}' }, status: 400, field: "body", message: /expected object/ },
  { name: "unsupported content type", method: "POST", path: "/api/v1/vms", raw: { type: "application/xml", data: "<vm><name>x</name></vm>" }, status: 415, message: /content-type/i },

  // GET and DELETE /api/v1/vms/:vmId
  { name: "malformed VM id", method: "GET", path: "/api/v1/vms/not-a-uuid", status: 400, field: "params.vmId", message: /UUID/ },
  { name: "unknown VM", method: "GET", path: "/api/v1/vms/{X}", status: 404, message: new RegExp(UNKNOWN) },
  { name: "delete: malformed VM id", method: "DELETE", path: "/api/v1/vms/123", status: 400, field: "params.vmId" },
  { name: "delete: unknown VM", method: "DELETE", path: "/api/v1/vms/{X}", status: 404, message: new RegExp(UNKNOWN) },
  { name: "delete a Saved VM", method: "DELETE", path: "/api/v1/vms/{B}", status: 409, message: /is Saved/ },

  // POST /api/v1/vms/:vmId/power
  { name: "malformed VM id", method: "POST", path: "/api/v1/vms/not-a-uuid/power", json: { action: "start" }, status: 400, field: "params.vmId" },
  { name: "unknown VM", method: "POST", path: "/api/v1/vms/{X}/power", json: { action: "start" }, status: 404, message: new RegExp(UNKNOWN) },
  { name: "no action", method: "POST", path: "/api/v1/vms/{A}/power", json: {}, status: 400, field: "body.action" },
  { name: "unknown action", method: "POST", path: "/api/v1/vms/{A}/power", json: { action: "explode" }, status: 400, field: "body.action" },
  { name: "action of the wrong type", method: "POST", path: "/api/v1/vms/{A}/power", json: { action: 3 }, status: 400, field: "body.action" },
  ...(["shutdown", "turn-off", "save", "pause", "resume"] as const).map((action) => ({
    name: `${action} while Off`,
    method: "POST",
    path: "/api/v1/vms/{A}/power",
    json: { action },
    status: 409,
    message: /while it is Off/,
  })),
  ...(["shutdown", "pause", "resume", "save"] as const).map((action) => ({ name: `${action} while Saved`, method: "POST", path: "/api/v1/vms/{B}/power", json: { action }, status: 409, message: /while it is Saved/ })),

  // PUT /api/v1/vms/:vmId/workload
  { name: "malformed VM id", method: "PUT", path: "/api/v1/vms/xyz/workload", json: { pattern: "idle" }, status: 400, field: "params.vmId" },
  { name: "unknown VM", method: "PUT", path: "/api/v1/vms/{X}/workload", json: { pattern: "idle" }, status: 404, message: new RegExp(UNKNOWN) },
  { name: "unknown pattern", method: "PUT", path: "/api/v1/vms/{A}/workload", json: { pattern: "chaos", rateMiBps: 1 }, status: 400, field: "body.pattern" },
  { name: "negative rate", method: "PUT", path: "/api/v1/vms/{A}/workload", json: { pattern: "random-4k", rateMiBps: -1 }, status: 400, field: "body.rateMiBps" },
  { name: "rate as a string", method: "PUT", path: "/api/v1/vms/{A}/workload", json: { pattern: "random-4k", rateMiBps: "fast" }, status: 400, field: "body.rateMiBps" },
  { name: "rate too high", method: "PUT", path: "/api/v1/vms/{A}/workload", json: { pattern: "random-4k", rateMiBps: 5000 }, status: 400, field: "body.rateMiBps" },
  { name: "a JSON string", method: "PUT", path: "/api/v1/vms/{A}/workload", json: "idle", status: 400, field: "body" },
  // null is not a workload: it must not be read as {} (which would reset the workload to its defaults).
  { name: "JSON null", method: "PUT", path: "/api/v1/vms/{A}/workload", raw: { type: "application/json", data: "null" }, status: 400, field: "body" },

  // PUT /api/v1/vms/:vmId/disks/:disk/data
  { name: "malformed VM id", method: "PUT", path: "/api/v1/vms/nope/disks/0/data?offset=0", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 400, field: "params.vmId" },
  { name: "unknown VM", method: "PUT", path: "/api/v1/vms/{X}/disks/0/data?offset=0", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 404, message: new RegExp(UNKNOWN) },
  { name: "disk index 4", method: "PUT", path: "/api/v1/vms/{A}/disks/4/data?offset=0", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 400, field: "params.disk", message: /0-3/ },
  { name: "disk index not a number", method: "PUT", path: "/api/v1/vms/{A}/disks/first/data?offset=0", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 400, field: "params.disk" },
  { name: "a disk the VM does not have", method: "PUT", path: "/api/v1/vms/{A}/disks/2/data?offset=0", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 400, message: /no disk 2/ },
  { name: "no offset", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 400, field: "query.offset" },
  // An empty value is not offset 0.
  { name: "empty offset", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data?offset=", raw: { type: "application/octet-stream", data: Buffer.alloc(512, 0xff) }, status: 400, field: "query.offset" },
  { name: "negative offset", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data?offset=-4096", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 400, field: "query.offset" },
  { name: "offset not a number", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data?offset=abc", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 400, field: "query.offset" },
  { name: "fractional offset", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data?offset=1.5", raw: { type: "application/octet-stream", data: Buffer.alloc(512) }, status: 400, field: "query.offset" },
  { name: "empty body", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data?offset=0", raw: { type: "application/octet-stream", data: Buffer.alloc(0) }, status: 400, message: /^body:/ },
  { name: "JSON instead of bytes", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data?offset=0", json: { data: "AAAA" }, status: 400, message: /^body:.*octet-stream/ },
  { name: "text/plain instead of bytes", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data?offset=0", raw: { type: "text/plain", data: "hello" }, status: 400, message: /^body:.*octet-stream/ },
  { name: "unsupported content type", method: "PUT", path: "/api/v1/vms/{A}/disks/0/data?offset=0", raw: { type: "image/png", data: Buffer.alloc(512) }, status: 415, message: /content-type/i },
  // Partly inside the disk: a write must not be clipped or half applied.
  { name: "write past the end of the disk", method: "PUT", path: `/api/v1/vms/{A}/disks/0/data?offset=${MiB - 2048}`, raw: { type: "application/octet-stream", data: Buffer.alloc(4096, 0xff) }, status: 400, message: /offset/ },
  { name: "write starting at the end of the disk", method: "PUT", path: `/api/v1/vms/{A}/disks/1/data?offset=${2 * MiB}`, raw: { type: "application/octet-stream", data: Buffer.alloc(512, 0xff) }, status: 400, message: /offset/ },

  // GET /api/v1/vms/:vmId/disks/:disk/data
  { name: "no length", method: "GET", path: "/api/v1/vms/{A}/disks/0/data?offset=0", status: 400, field: "query.length" },
  { name: "length 0", method: "GET", path: "/api/v1/vms/{A}/disks/0/data?offset=0&length=0", status: 400, field: "query.length" },
  { name: "length over 64 MiB", method: "GET", path: `/api/v1/vms/{A}/disks/0/data?offset=0&length=${64 * MiB + 1}`, status: 400, field: "query.length", message: /64 MiB/ },
  { name: "negative offset", method: "GET", path: "/api/v1/vms/{A}/disks/0/data?offset=-1&length=512", status: 400, field: "query.offset" },
  { name: "disk index 9", method: "GET", path: "/api/v1/vms/{A}/disks/9/data?offset=0&length=512", status: 400, field: "params.disk" },
  { name: "read past the end of the disk", method: "GET", path: `/api/v1/vms/{A}/disks/0/data?offset=${MiB - 512}&length=4096`, status: 400, message: /offset/ },

  // GET /api/v1/vms/:vmId/disks/:disk/hash
  { name: "malformed VM id", method: "GET", path: "/api/v1/vms/abc/disks/0/hash", status: 400, field: "params.vmId" },
  { name: "unknown VM", method: "GET", path: "/api/v1/vms/{X}/disks/0/hash", status: 404, message: new RegExp(UNKNOWN) },
  { name: "disk index -1", method: "GET", path: "/api/v1/vms/{A}/disks/-1/hash", status: 400, field: "params.disk" },
  { name: "disk index not a number", method: "GET", path: "/api/v1/vms/{A}/disks/x/hash", status: 400, field: "params.disk" },
  { name: "a disk the VM does not have", method: "GET", path: "/api/v1/vms/{B}/disks/1/hash", status: 400, message: /no disk 1/ },

  // PUT /api/v1/replica-server (a valid body with one thing wrong)
  { name: "port 70000", method: "PUT", path: "/api/v1/replica-server", settings: settings((s) => ((s.http as { port: unknown }).port = 70000)), status: 400, field: "body.http.port", message: /1-65535/ },
  { name: "port 0", method: "PUT", path: "/api/v1/replica-server", settings: settings((s) => ((s.https as { port: unknown }).port = 0)), status: 400, field: "body.https.port" },
  { name: "port as a string", method: "PUT", path: "/api/v1/replica-server", settings: settings((s) => ((s.http as { port: unknown }).port = "9080")), status: 400, field: "body.http.port" },
  { name: "enabled as a string", method: "PUT", path: "/api/v1/replica-server", settings: settings((s) => (s.enabled = "yes")), status: 400, field: "body.enabled" },
  { name: "no authorization", method: "PUT", path: "/api/v1/replica-server", settings: settings((s) => delete s.authorization), status: 400, field: "body.authorization" },
  { name: "unknown authorization mode", method: "PUT", path: "/api/v1/replica-server", settings: settings((s) => (s.authorization = { mode: "everyone" })), status: 400, field: "body.authorization.mode" },
  { name: "relative default storage", method: "PUT", path: "/api/v1/replica-server", settings: settings((s) => (s.authorization = { mode: "any", defaultStorageLocation: "replicas", trustGroup: "G" })), status: 400, field: "body.authorization.defaultStorageLocation" },
  {
    name: "bad primary server pattern",
    method: "PUT",
    path: "/api/v1/replica-server",
    settings: settings((s) => (s.authorization = { mode: "entries", entries: [{ primaryServer: "bad name!", storageLocation: "/srv/r", trustGroup: "G" }] })),
    status: 400,
    field: "body.authorization.entries.0.primaryServer",
  },
  {
    name: "relative storage location",
    method: "PUT",
    path: "/api/v1/replica-server",
    settings: settings((s) => (s.authorization = { mode: "entries", entries: [{ primaryServer: "*.lab.test", storageLocation: "srv/r", trustGroup: "G" }] })),
    status: 400,
    field: "body.authorization.entries.0.storageLocation",
  },
  {
    name: "trust group with a space",
    method: "PUT",
    path: "/api/v1/replica-server",
    settings: settings((s) => (s.authorization = { mode: "entries", entries: [{ primaryServer: "*.lab.test", storageLocation: "/srv/r", trustGroup: "GOLD GROUP" }] })),
    status: 400,
    field: "body.authorization.entries.0.trustGroup",
  },
  {
    name: "HTTP and HTTPS on one port",
    method: "PUT",
    path: "/api/v1/replica-server",
    settings: settings((s) => {
      s.http = { enabled: true, port: 9555 };
      s.https = { enabled: true, port: 9555 };
    }),
    status: 400,
    field: "body.http.port",
    message: /different ports/,
  },
  {
    name: "enabled without a transport",
    method: "PUT",
    path: "/api/v1/replica-server",
    settings: settings((s) => {
      s.enabled = true;
      s.http = { enabled: false, port: 9080 };
      s.https = { enabled: false, port: 9443 };
    }),
    status: 400,
    field: "body.https.enabled",
  },
  // Valid on paper, but the management listener holds that port: the old settings must stay.
  { name: "a port already in use", method: "PUT", path: "/api/v1/replica-server", settings: settings((s) => ((s.http as { port: unknown }).port = agent.ports.management)), status: "4xx", message: /body\.http\.port/ },
  { name: "malformed JSON", method: "PUT", path: "/api/v1/replica-server", raw: { type: "application/json", data: "{enabled: true}" }, status: 400, message: /body.*JSON/i },

  // POST /api/v1/vms/:vmId/replication
  ...(
    [
      ["frequencySeconds 60", { frequencySeconds: 60 }, "body.frequencySeconds", /30, 300 or 900/],
      ["port 70000", { replicaPort: 70000 }, "body.replicaPort", /1-65535/],
      ["port as a string", { replicaPort: "9443" }, "body.replicaPort", undefined],
      ["no port", { replicaPort: undefined }, "body.replicaPort", undefined],
      ["no server", { replicaServer: undefined }, "body.replicaServer", undefined],
      ["server not a host name", { replicaServer: "not a host!" }, "body.replicaServer", /host name or FQDN/],
      ["unknown auth mode", { authMode: "ftp" }, "body.authMode", undefined],
      ["no disks chosen", { disks: [] }, "body.disks", /at least one disk/],
      ["disk index 7", { disks: [7] }, "body.disks.0", undefined],
      ["compression as a string", { compression: "yes" }, "body.compression", undefined],
      ["startInitialReplication as a string", { startInitialReplication: "no" }, "body.startInitialReplication", undefined],
    ] as const
  ).map(([name, patch, field, message]) => ({
    name,
    method: "POST",
    path: "/api/v1/vms/{A}/replication",
    json: { replicaServer: "hv02.lab.test", replicaPort: 9443, authMode: "https", frequencySeconds: 30, startInitialReplication: false, ...patch },
    status: 400,
    field,
    message,
  })),
  { name: "a disk the VM does not have", method: "POST", path: "/api/v1/vms/{A}/replication", json: { replicaServer: "hv02.lab.test", replicaPort: 9443, disks: [0, 2] }, status: 400, message: /^disks: .*no disk 2/ },
  { name: "HTTPS on a host without a replication certificate", method: "POST", path: "/api/v1/vms/{A}/replication", json: { replicaServer: "hv02.lab.test", replicaPort: 9443 }, status: 400, message: /^authMode: .*no replication certificate/ },
  { name: "the same disk twice", method: "POST", path: "/api/v1/vms/{A}/replication", json: { replicaServer: "hv02.lab.test", replicaPort: 9443, disks: [0, 0] }, status: 400, field: "body.disks" },
  { name: "this host as the Replica server", method: "POST", path: "/api/v1/vms/{A}/replication", json: { replicaServer: "HV01.lab.test", replicaPort: 9443 }, status: 400, message: /replicaServer 'hv01\.lab\.test' is this host/ },
  { name: "malformed VM id", method: "POST", path: "/api/v1/vms/42/replication", json: { replicaServer: "hv02.lab.test", replicaPort: 9443 }, status: 400, field: "params.vmId" },
  { name: "unknown VM", method: "POST", path: "/api/v1/vms/{X}/replication", json: { replicaServer: "hv02.lab.test", replicaPort: 9443 }, status: 404, message: new RegExp(UNKNOWN) },

  // PATCH /api/v1/vms/:vmId/replication: the body is checked before the relationship.
  { name: "nothing to change", method: "PATCH", path: "/api/v1/vms/{A}/replication", json: {}, status: 400, field: "body", message: /at least one setting/ },
  { name: "frequencySeconds 60", method: "PATCH", path: "/api/v1/vms/{A}/replication", json: { frequencySeconds: 60 }, status: 400, field: "body.frequencySeconds" },
  { name: "compression as a string", method: "PATCH", path: "/api/v1/vms/{A}/replication", json: { compression: "off" }, status: 400, field: "body.compression" },
  { name: "a VM that is not replicated", method: "PATCH", path: "/api/v1/vms/{A}/replication", json: { frequencySeconds: 300 }, status: 409, message: /not a primary of replication/ },
  { name: "initialStartAt not a time", method: "PATCH", path: "/api/v1/vms/{A}/replication", json: { initialStartAt: "tomorrow" }, status: 400, field: "body.initialStartAt" },
  // POST /api/v1/replication/test-connection
  { name: "test connection without a server", method: "POST", path: "/api/v1/replication/test-connection", json: { replicaPort: 9443 }, status: 400, field: "body.replicaServer" },
  { name: "test connection to port 70000", method: "POST", path: "/api/v1/replication/test-connection", json: { replicaServer: "hv02.lab.test", replicaPort: 70000 }, status: 400, field: "body.replicaPort" },
  { name: "test connection by FTP", method: "POST", path: "/api/v1/replication/test-connection", json: { replicaServer: "hv02.lab.test", replicaPort: 9443, authMode: "ftp" }, status: 400, field: "body.authMode" },
  { name: "malformed VM id", method: "PATCH", path: "/api/v1/vms/zzz/replication", json: { frequencySeconds: 300 }, status: 400, field: "params.vmId" },
  { name: "unknown VM", method: "PATCH", path: "/api/v1/vms/{X}/replication", json: { frequencySeconds: 300 }, status: 404, message: new RegExp(UNKNOWN) },

  // DELETE /api/v1/vms/:vmId/replication and the replication actions
  ...(
    [
      ["DELETE", "/replication", 404, /replication is not enabled/],
      ["POST", "/replication/pause", 404, /replication is not enabled/],
      ["POST", "/replication/resume", 404, /replication is not enabled/],
      ["POST", "/replication/replicate-now", 409, /not a primary of replication/],
    ] as const
  ).flatMap(([method, suffix, status, message]) => [
    { name: "a VM that is not replicated", method, path: `/api/v1/vms/{A}${suffix}`, status, message },
    { name: "malformed VM id", method, path: `/api/v1/vms/not-a-vm${suffix}`, status: 400, field: "params.vmId" },
    { name: "unknown VM", method, path: `/api/v1/vms/{X}${suffix}`, status: 404, message: new RegExp(UNKNOWN) },
  ]),
  { name: "malformed VM id", method: "GET", path: "/api/v1/vms/nope/replication", status: 400, field: "params.vmId" },

  // GET /api/v1/events (and its stream, which checks its query before streaming)
  { name: "negative after", method: "GET", path: "/api/v1/events?after=-1", status: 400, field: "query.after" },
  { name: "after not a number", method: "GET", path: "/api/v1/events?after=abc", status: 400, field: "query.after" },
  { name: "limit 0", method: "GET", path: "/api/v1/events?limit=0", status: 400, field: "query.limit" },
  { name: "limit 5000", method: "GET", path: "/api/v1/events?limit=5000", status: 400, field: "query.limit" },
  { name: "malformed vmId", method: "GET", path: "/api/v1/events?vmId=abc", status: 400, field: "query.vmId" },
  { name: "stream: limit 0", method: "GET", path: "/api/v1/events/stream?limit=0", status: 400, field: "query.limit" },
];

let dir: string;
let agent: AgentProcess;
const ids = { A: "", B: "" };

interface Stored {
  vms: VmView[];
  replicaServer: unknown;
  replication: unknown[];
  hashes: string[];
}
let current: Stored;

async function stored(): Promise<Stored> {
  return {
    vms: await agent.ok<VmView[]>("GET", "/api/v1/vms"),
    replicaServer: await agent.ok("GET", "/api/v1/replica-server"),
    replication: await agent.ok<unknown[]>("GET", "/api/v1/replication"),
    hashes: await Promise.all([diskHash(agent, ids.A, 0), diskHash(agent, ids.A, 1), diskHash(agent, ids.B, 0)]),
  };
}

async function send(c: Case): Promise<{ status: number; body: unknown; text: string }> {
  const headers: Record<string, string> = {};
  const auth = c.auth === undefined ? `Bearer ${MGMT_TOKEN}` : c.auth;
  if (auth !== null) headers.authorization = auth;
  let body: string | Buffer | undefined;
  const json = c.settings ? c.settings() : c.json;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  } else if (c.raw) {
    if (c.raw.type) headers["content-type"] = c.raw.type;
    body = c.raw.data;
  }
  const path = c.path.replace("{A}", ids.A).replace("{B}", ids.B).replace("{X}", UNKNOWN);
  // A bug that answered the event stream with 200 would otherwise never end.
  const res = await fetch(agent.url + path, { method: c.method, headers, body: body as BodyInit | undefined, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

beforeAll(async () => {
  dir = await tempDir("rm-bad-input-");
  agent = await defineAgent({ hostName: "hv01.lab.test", dataDir: join(dir, "hv01"), replicationToken: REPL_TOKEN, resolve: { "hv02.lab.test": "127.0.0.1" } });
  await agent.start();
  // A non-default workload, so that resetting it to its defaults would show.
  const a = await agent.ok<VmView>("POST", "/api/v1/vms", { name: "disk-vm", cpus: 2, disks: [{ sizeBytes: MiB }, { sizeBytes: 2 * MiB }], workload: { pattern: "random-4k", rateMiBps: 3 } });
  ids.A = a.id;
  await agent.ok("PUT", `/api/v1/vms/${ids.A}/disks/0/data?offset=4096`, Buffer.alloc(64 * 1024, 0x3c));
  await agent.ok("PUT", `/api/v1/vms/${ids.A}/disks/1/data?offset=${2 * MiB - 8192}`, Buffer.alloc(8192, 0xc3));
  const b = await agent.ok<VmView>("POST", "/api/v1/vms", { name: "saved-vm", disks: [{ sizeBytes: MiB }] });
  ids.B = b.id;
  await agent.ok("POST", `/api/v1/vms/${ids.B}/power`, { action: "start" });
  await agent.ok("POST", `/api/v1/vms/${ids.B}/power`, { action: "save" });
  current = await stored();
  expect(current.vms.map((v) => [v.name, v.state])).toEqual([
    ["disk-vm", "Off"],
    ["saved-vm", "Saved"],
  ]);
});

afterAll(async () => {
  await agent?.kill();
  if (dir && !process.env.RM_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
});

describe("bad input on the management API", () => {
  it.each(cases)("$method $path: $name → $status", async (c) => {
    const res = await send(c);
    const detail = `answer ${res.status}: ${res.text.slice(0, 500)}`;
    if (c.status === "4xx") {
      expect(res.status, detail).toBeGreaterThanOrEqual(400);
      expect(res.status, detail).toBeLessThan(500);
    } else expect(res.status, detail).toBe(c.status);
    const err = (res.body as ErrorBody | undefined)?.error;
    expect(err, detail).toBeDefined();
    expect(typeof err!.code).toBe("string");
    if (c.field) {
      expect(err!.code, detail).toBe("VALIDATION");
      expect(err!.message, detail).toContain(`${c.field}: `);
      expect(err!.details?.issues?.map((i) => i.field), detail).toContain(c.field);
    }
    if (c.message) expect(err!.message, detail).toMatch(c.message);
    if (c.status === 409 && /while it is/.test(String(c.message))) {
      // Power refusals also say which state refused them, for programs.
      expect(err!.details?.state).toBe(/Saved/.test(String(c.message)) ? "Saved" : "Off");
    }
  });

  it("PUT /api/v1/vms/{A}/disks/1/data: a body over 64 MiB → 413", async () => {
    // Only the headers are sent: the agent refuses on Content-Length alone, and a body still
    // being uploaded when it closes the connection would make the answer a race to read.
    const answer = await new Promise<{ status: number; text: string }>((ok, fail) => {
      const req = http.request(`${agent.url}/api/v1/vms/${ids.A}/disks/1/data?offset=0`, {
        method: "PUT",
        headers: { authorization: `Bearer ${MGMT_TOKEN}`, "content-type": "application/octet-stream", "content-length": String(64 * MiB + 1) },
        timeout: 10_000,
      });
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          ok({ status: res.statusCode ?? 0, text });
          req.destroy();
        });
      });
      req.on("timeout", () => fail(new Error("no answer to the headers of an oversized body")));
      req.on("error", fail);
      req.flushHeaders();
    });
    expect(answer.status, answer.text).toBe(413);
    expect((JSON.parse(answer.text) as ErrorBody).error.message).toMatch(/body/i);
  });

  // Runs after the table (tests in a file run in order): the sum of all the refusals.
  it("changed nothing stored: VMs, Replica server settings, relationships and disk contents", async () => {
    expect(await stored()).toEqual(current);
  });

  it("left the Replica server's HTTP listener running on its configured port", async () => {
    // An unsigned request is refused by a listener that is there; a closed port would not answer.
    const res = await fetch(`http://127.0.0.1:${agent.ports.http}/replication/v1/server`, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => err);
    expect(res instanceof Response ? res.status : String((res.cause as { code?: string } | undefined)?.code ?? res.message)).toBe(401);
  });
});
