/**
 * Refused peers: a primary whose certificate comes from an unknown CA, one that no
 * authorization entry matches, one outside the replica VM's trust group, and one with the
 * wrong replication token. Each is refused with an error naming the cause and an error
 * event on the Replica server, and nothing is written there.
 */
import https from "node:https";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFrame, FrameType } from "./replication/frames.js";
import {
  defineAgent,
  diskHash,
  freePort,
  makeSite,
  MGMT_TOKEN,
  REPL_TOKEN,
  tempDir,
  type AgentProcess,
  type VmView,
} from "./testing/harness.js";

const MiB = 1024 * 1024;
const HOSTS = ["hv01.lab.test", "hv02.lab.test", "hv03.lab.test", "hv04.lab.test", "hv05.nowhere.test", "hv07.lab.test", "hv09.other.test"];
const resolveMap = Object.fromEntries(HOSTS.map((h) => [h, "127.0.0.1"]));

interface AgentEvent {
  id: number;
  severity: string;
  kind: string;
  vmId: string | null;
  relationshipId: string | null;
  message: string;
}
interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}
interface Tls {
  cert: string;
  key: string;
  ca: string;
}

let dir: string;
let goldStorage: string;
let silverStorage: string;
let replica: AgentProcess;
/** Certificates (file paths) of hosts that only forge requests, without an agent of their own. */
let forgerTls: { hv09: Tls; hv04: Tls };
let primaries: Record<"hv01" | "hv03" | "hv05" | "hv07", AgentProcess>;

async function eventsAfter(agent: AgentProcess, after: number): Promise<AgentEvent[]> {
  return agent.ok<AgentEvent[]>("GET", `/api/v1/events?after=${after}&limit=1000`);
}

async function lastEventId(agent: AgentProcess): Promise<number> {
  let last = 0;
  for (let batch = await eventsAfter(agent, 0); batch.length; batch = await eventsAfter(agent, last)) last = batch.at(-1)!.id;
  return last;
}

/** Every file and folder under the storage locations, with size and modification time. */
async function storageListing(): Promise<string[]> {
  const out: string[] = [];
  async function walk(root: string, rel: string): Promise<void> {
    for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
      const p = join(rel, entry.name);
      if (entry.isDirectory()) {
        out.push(`${root}:${p}/`);
        await walk(root, p);
      } else {
        const s = await stat(join(root, p));
        out.push(`${root}:${p} ${s.size} ${s.mtimeMs}`);
      }
    }
  }
  await walk(goldStorage, "");
  await walk(silverStorage, "");
  return out.sort();
}

/** What a refusal must leave untouched on the Replica server. */
async function replicaSnapshot() {
  return {
    vms: await replica.ok<VmView[]>("GET", "/api/v1/vms"),
    replication: await replica.ok<unknown[]>("GET", "/api/v1/replication"),
    files: await storageListing(),
  };
}

async function newVm(agent: AgentProcess, name: string): Promise<VmView> {
  return agent.ok<VmView>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: MiB }] });
}

function enableBody(authMode: "https" | "http") {
  return {
    replicaServer: "hv02.lab.test",
    replicaPort: authMode === "https" ? replica.ports.https : replica.ports.http,
    authMode,
    frequencySeconds: 30,
    startInitialReplication: false,
  };
}

/**
 * Enables replication from `primary` and checks the whole refusal: a 4xx on the primary
 * naming the cause, nothing half-enabled there, exactly one error event on the replica
 * naming the cause, and the replica's VMs, relationships and storage unchanged.
 */
async function expectEnableRefused(primary: AgentProcess, authMode: "https" | "http", want: { peerStatus: number; cause: RegExp }): Promise<void> {
  const vm = await newVm(primary, `refused-${primary.spec.hostName}-${authMode}`);
  const before = await replicaSnapshot();
  const after = await lastEventId(replica);

  const res = await primary.api<ErrorBody>("POST", `/api/v1/vms/${vm.id}/replication`, enableBody(authMode));
  expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
  expect(res.body.error.code).toBe("REPLICA_REFUSED");
  expect(res.body.error.details?.peerStatus).toBe(want.peerStatus);
  expect(res.body.error.message).toMatch(want.cause);

  // A refused enable must not leave a relationship behind on the primary either.
  expect(await primary.ok<unknown[]>("GET", `/api/v1/vms/${vm.id}/replication`)).toEqual([]);

  const refused = (await eventsAfter(replica, after)).filter((e) => e.kind === "replica.refused");
  expect(refused).toHaveLength(1);
  expect(refused[0]!.severity).toBe("error");
  expect(refused[0]!.message).toMatch(want.cause);

  expect(await replicaSnapshot()).toEqual(before);
  expect(before.vms.some((v) => v.id === vm.id)).toBe(false);
}

/** A request to the replica's HTTPS replication listener with a certificate of our choosing, as a primary's agent would send it. */
async function forge(tls: Tls, method: string, path: string, body?: { type: string; data: Buffer }): Promise<{ status: number; body: Partial<ErrorBody> & Record<string, unknown> }> {
  const [cert, key, ca] = await Promise.all([readFile(tls.cert, "utf8"), readFile(tls.key, "utf8"), readFile(tls.ca, "utf8")]);
  return new Promise((ok, fail) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        servername: "hv02.lab.test",
        port: replica.ports.https,
        method,
        path,
        cert,
        key,
        ca,
        agent: false,
        headers: body ? { "content-type": body.type, "content-length": String(body.data.length) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", fail);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          ok({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Partial<ErrorBody> & Record<string, unknown>) : {} });
        });
      },
    );
    req.on("error", fail);
    req.end(body?.data);
  });
}

/**
 * A well-formed cycle `seq` (based on seq - 1) writing 4 KiB of 0xEE at offset 0 of disk 0:
 * if a refusal let it through, the replica's disk would visibly change.
 */
function cycleBytes(relationshipId: string, seq: number): Buffer {
  const payload = Buffer.alloc(4096, 0xee);
  const data = encodeFrame({ type: FrameType.Data, flags: 0, disk: 0, seq, index: 0, offset: 0, length: payload.length }, payload);
  const end = Buffer.from(JSON.stringify({ frames: 1, dataBytes: payload.length, relationshipId, base: seq - 1, marks: { point: null, recoveryHistory: 0, frequencySeconds: 300, resync: null, prepared: false, returnPath: null }, mac: null }));
  const endHeader = encodeFrame({ type: FrameType.End, flags: 0, disk: 0, seq, index: 1, offset: 0, length: 0 }, end);
  return Buffer.concat([data, payload, endHeader, end]);
}

beforeAll(async () => {
  dir = await tempDir("rm-refused-");
  const site = await makeSite(join(dir, "site"), "Lab Site CA");
  const foreign = await makeSite(join(dir, "foreign"), "Foreign CA");
  goldStorage = join(dir, "storage-gold");
  silverStorage = join(dir, "storage-silver");
  await Promise.all([mkdir(goldStorage), mkdir(silverStorage)]);

  const ports = { management: await freePort(), http: await freePort(), https: await freePort() };
  replica = await defineAgent({
    hostName: "hv02.lab.test",
    dataDir: join(dir, "hv02"),
    tls: await site.hostTls("hv02.lab.test"),
    replicationToken: REPL_TOKEN,
    resolve: resolveMap,
    ports,
    replicaServer: {
      enabled: true,
      http: { enabled: true, port: ports.http },
      https: { enabled: true, port: ports.https },
      authorization: {
        mode: "entries",
        entries: [
          { primaryServer: "*.lab.test", storageLocation: goldStorage, trustGroup: "GOLD" },
          { primaryServer: "hv09.other.test", storageLocation: silverStorage, trustGroup: "SILVER" },
        ],
      },
    },
  });

  // hv07 trusts the replica's CA (so it can verify hv02), but its own certificate comes
  // from a CA that hv02 does not know: only the client certificate can be the cause.
  const foreignTls = await foreign.hostTls("hv07.lab.test");
  const bothCas = join(foreign.dir, "site-and-foreign-ca.pem");
  await writeFile(bothCas, [await readFile(site.caFile, "utf8"), await readFile(foreign.caFile, "utf8")].join("\n"));

  primaries = {
    hv01: await defineAgent({ hostName: "hv01.lab.test", dataDir: join(dir, "hv01"), tls: await site.hostTls("hv01.lab.test"), resolve: resolveMap }),
    // Named under *.lab.test, so only the token can be the cause.
    hv03: await defineAgent({ hostName: "hv03.lab.test", dataDir: join(dir, "hv03"), replicationToken: "a-different-replication-token-42", resolve: resolveMap }),
    hv05: await defineAgent({ hostName: "hv05.nowhere.test", dataDir: join(dir, "hv05"), tls: await site.hostTls("hv05.nowhere.test"), resolve: resolveMap }),
    hv07: await defineAgent({ hostName: "hv07.lab.test", dataDir: join(dir, "hv07"), tls: { ...foreignTls, ca: bothCas }, resolve: resolveMap }),
  };
  forgerTls = { hv09: await site.hostTls("hv09.other.test"), hv04: await site.hostTls("hv04.lab.test") };

  await Promise.all([replica.start(), ...Object.values(primaries).map((p) => p.start())]);
});

afterAll(async () => {
  await Promise.all([replica?.kill(), ...Object.values(primaries ?? {}).map((p) => p.kill())]);
  if (dir && !process.env.RM_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
});

describe("refused peers", () => {
  it("refuses a primary whose client certificate comes from an unknown CA", async () => {
    await expectEnableRefused(primaries.hv07, "https", { peerStatus: 401, cause: /certificate of 'hv07\.lab\.test' is not trusted by this Replica server/ });
  });

  it("refuses a primary with a valid certificate that no authorization entry matches", async () => {
    await expectEnableRefused(primaries.hv05, "https", { peerStatus: 403, cause: /'hv05\.nowhere\.test' is not authorized: no authorization entry/ });
  });

  it("refuses a primary over HTTP whose replication token differs from the replica's", async () => {
    await expectEnableRefused(primaries.hv03, "http", { peerStatus: 401, cause: /token signature from 'hv03\.lab\.test' does not match/ });
  });

  describe("a replica VM created for trust group GOLD", () => {
    let vmId: string;
    let relationshipId: string;

    beforeAll(async () => {
      const hv01 = primaries.hv01;
      const vm = await newVm(hv01, "gold-vm");
      vmId = vm.id;
      await hv01.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=0`, Buffer.alloc(8192, 0x5a));
      const rel = await hv01.ok<{ id: string }>("POST", `/api/v1/vms/${vmId}/replication`, enableBody("https"));
      relationshipId = rel.id;
      expect(await hv01.ok("POST", `/api/v1/vms/${vmId}/replication/replicate-now`)).toMatchObject({ ok: true, seq: 0 });
      // No scheduled cycle of hv01 may touch the replica while the refusals are checked.
      await hv01.ok("POST", `/api/v1/vms/${vmId}/replication/pause`);
      const onReplica = await replica.ok<VmView>("GET", `/api/v1/vms/${vmId}`);
      expect(onReplica.replication[0]).toMatchObject({ id: relationshipId, role: "replica", lastAppliedSeq: 0 });
      expect((await readdir(join(goldStorage, vmId))).length).toBeGreaterThan(0);
    });

    it("refuses a cycle from a primary in another trust group, naming the group", async () => {
      const before = await replicaSnapshot();
      const hashBefore = await diskHash(replica, vmId);
      const after = await lastEventId(replica);

      const res = await forge(forgerTls.hv09, "POST", `/replication/v1/relationships/${relationshipId}/cycles/1?base=0`, {
        type: "application/octet-stream",
        data: cycleBytes(relationshipId, 1),
      });
      expect(res.status).toBe(403);
      expect(res.body.error?.message).toMatch(/'hv09\.other\.test' is not in trust group 'GOLD'/);

      const refused = (await eventsAfter(replica, after)).filter((e) => e.kind === "replica.refused");
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ severity: "error", vmId, relationshipId });
      expect(refused[0]!.message).toMatch(/hv09\.other\.test.*trust group 'GOLD'/);

      expect(await replicaSnapshot()).toEqual(before);
      expect(await diskHash(replica, vmId)).toBe(hashBefore);
    });

    it("does not let a primary in another trust group read or re-register the relationship", async () => {
      const before = await replicaSnapshot();
      const after = await lastEventId(replica);

      const status = await forge(forgerTls.hv09, "GET", `/replication/v1/relationships/${relationshipId}`);
      expect(status.status).toBe(403);
      expect(status.body.error?.message).toMatch(/trust group 'GOLD'/);

      // Re-sending the create request for an existing relationship must be checked against
      // the relationship's trust group like any other request about it.
      const create = await forge(forgerTls.hv09, "POST", "/replication/v1/relationships", {
        type: "application/json",
        data: Buffer.from(
          JSON.stringify({ relationshipId, vmId, vmName: "gold-vm", cpus: 1, memoryMiB: 1024, disks: [{ index: 0, sizeBytes: MiB }], frequencySeconds: 30 }),
        ),
      });
      expect(create.status, `answer: ${JSON.stringify(create.body)}`).toBe(403);
      expect(create.body.error?.message).toMatch(/trust group 'GOLD'/);

      const refused = (await eventsAfter(replica, after)).filter((e) => e.kind === "replica.refused");
      expect(refused.map((e) => e.relationshipId)).toEqual([relationshipId, relationshipId]);
      expect(await replicaSnapshot()).toEqual(before);
    });

    // Last: it changes the replica. It shows the refused stream was valid, so the trust
    // group alone caused the refusal above.
    it("accepts the same cycle from another primary in GOLD", async () => {
      const res = await forge(forgerTls.hv04, "POST", `/replication/v1/relationships/${relationshipId}/cycles/1?base=0`, {
        type: "application/octet-stream",
        data: cycleBytes(relationshipId, 1),
      });
      expect(res.status, `answer: ${JSON.stringify(res.body)}`).toBe(200);
      expect(res.body).toMatchObject({ relationshipId, seq: 1, dataBytes: 4096 });
      const bytes = await fetch(`${replica.url}/api/v1/vms/${vmId}/disks/0/data?offset=0&length=8192`, {
        headers: { authorization: `Bearer ${MGMT_TOKEN}` },
      });
      const data = Buffer.from(await bytes.arrayBuffer());
      expect(data.subarray(0, 4096).equals(Buffer.alloc(4096, 0xee))).toBe(true);
      expect(data.subarray(4096).equals(Buffer.alloc(4096, 0x5a))).toBe(true);
    });
  });
});
