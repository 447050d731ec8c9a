/**
 * Resynchronization in HTTP mode with a man in the middle that rewrites the replica's
 * block-hashes answers or the primary's requests to make the primary skip blocks: every
 * altered answer must be refused, nothing sent on its strength, and the resynchronization
 * must complete with equal disks once the tampering stops.
 *
 * The shared TamperProxy (testing/tamper-proxy.ts) only intercepts cycle uploads of the form
 * `cycles/N?base=M` and passes every other request through untouched, so it cannot rewrite a
 * block-hashes answer; this file has its own small proxy for that.
 */
import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockHashesMac, hashBlocks, HASH_BYTES } from "./replication/block-hashes.js";
import { signRequest } from "./transport/peer-client.js";
import type { CycleOutcome } from "./replication/primary.js";
import { diskHash, REPL_TOKEN, startPair, waitFor, type Pair, type VmView } from "./testing/harness.js";
import { replicationHelpers } from "./testing/replication-helpers.js";

const MiB = 1024 * 1024;

type BlockReq = { disk: number; blockSize: number; ranges: [number, number][] };
type Rewrite = (req: BlockReq, answer: { hashes: string; mac: string | null }) => { req?: BlockReq; answer?: unknown };

/** Forwards everything to the replica's HTTP port; block-hashes requests and answers can be rewritten. */
class HashProxy {
  rewrite: Rewrite | undefined;
  /** Rewrite the request body before forwarding (the answer is then the replica's honest one). */
  rewriteRequest: ((req: BlockReq) => BlockReq) | undefined;
  seen = 0;
  tampered = 0;
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<HashProxy> {
    let proxy: HashProxy | undefined;
    const agent = new http.Agent({ keepAlive: false });
    const server = http.createServer(async (req, res) => {
      const body = Buffer.concat((await req.toArray()) as Buffer[]);
      const isHashes = req.method === "POST" && /\/block-hashes$/.test(req.url ?? "");
      const headers = { ...req.headers };
      delete headers["content-length"];
      delete headers["transfer-encoding"];
      delete headers.connection;
      let sendBody = body;
      let parsed: BlockReq | undefined;
      if (isHashes) {
        proxy!.seen++;
        parsed = JSON.parse(body.toString()) as BlockReq;
        if (proxy!.rewriteRequest) {
          proxy!.tampered++;
          sendBody = Buffer.from(JSON.stringify(proxy!.rewriteRequest(parsed)));
        }
      }
      const up = http.request({ host: "127.0.0.1", port: target, method: req.method, path: req.url, headers: { ...headers, "content-length": String(sendBody.length) }, agent });
      up.on("error", () => req.socket.destroy());
      up.on("response", async (r) => {
        let answer = Buffer.concat((await r.toArray()) as Buffer[]);
        if (isHashes && r.statusCode === 200 && proxy!.rewrite) {
          const out = proxy!.rewrite(parsed!, JSON.parse(answer.toString()));
          if (out.answer !== undefined) {
            proxy!.tampered++;
            answer = Buffer.from(JSON.stringify(out.answer));
          }
        }
        res.writeHead(r.statusCode ?? 502, { "content-type": r.headers["content-type"] ?? "application/json", "content-length": String(answer.length) });
        res.end(answer);
      });
      up.end(sendBody);
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    proxy = new HashProxy(server, (server.address() as AddressInfo).port);
    return proxy;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }
}

describe("resynchronization over HTTP, adversarially", () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => pair?.cleanup());

  const { rel, events, lastEventId, writeBehindTheAgentsBack, completion } = replicationHelpers(() => pair);




  it("answers bad block-hashes requests with a 4xx naming the field, and good ones with hashes of the replica's blocks, signed", async () => {
    const vm = await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "hashes-direct", disks: [{ sizeBytes: 4 * MiB }] });
    const content = randomBytes(4 * MiB);
    await pair.primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=0`, content);
    const created = await pair.primary.ok<{ id: string }>("POST", `/api/v1/vms/${vm.id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: pair.replica.ports.http,
      authMode: "http",
      frequencySeconds: 900,
      startInitialReplication: false,
    });
    expect((await pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).ok).toBe(true);
    const path = `/replication/v1/relationships/${created.id}/block-hashes`;
    const call = async (body: unknown, p = path) => {
      const nonce = randomBytes(16).toString("hex");
      const ts = Date.now();
      const sig = signRequest(REPL_TOKEN, "POST", p, "hv01.lab.test", ts, nonce);
      const res = await fetch(`http://127.0.0.1:${pair.replica.ports.http}${p}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `RM-Token hv01.lab.test:${ts}:${nonce}:${sig}` },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { hashes?: string; mac?: string; error?: { message: string; details?: { issues?: { field: string }[] } } }, nonce };
    };
    const bad = async (body: unknown, status: number, field: string) => {
      const r = await call(body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      const fields = (r.body.error?.details?.issues ?? []).map((i) => i.field);
      expect(fields.includes(field) || (r.body.error?.message ?? "").includes(field), `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`).toBe(true);
    };
    await bad({ blockSize: 4096, ranges: [[0, 4096]] }, 400, "body.disk");
    await bad({ disk: 4, blockSize: 4096, ranges: [[0, 4096]] }, 400, "body.disk");
    await bad({ disk: 1, blockSize: 4096, ranges: [[0, 4096]] }, 400, "body.disk");
    await bad({ disk: 0, blockSize: 512, ranges: [[0, 4096]] }, 400, "body.blockSize");
    await bad({ disk: 0, blockSize: 4096, ranges: [] }, 400, "body.ranges");
    await bad({ disk: 0, blockSize: 4096, ranges: [[0, 0]] }, 400, "body.ranges");
    await bad({ disk: 0, blockSize: 4096, ranges: [[-4096, 4096]] }, 400, "body.ranges");
    await bad({ disk: 0, blockSize: 4096, ranges: [[100, 4096]] }, 400, "body");
    await bad({ disk: 0, blockSize: 65536, ranges: [[0, 4096]] }, 400, "body");
    await bad({ disk: 0, blockSize: 4096, ranges: [[4 * MiB - 4096, 8192]] }, 400, "body.ranges");
    await bad({ disk: 0, blockSize: 4096, ranges: [[4 * MiB, 4096]] }, 400, "body.ranges");
    await bad({ disk: 0, blockSize: 65536, ranges: [[0, 2048 * MiB]] }, 400, "body");
    await bad({ disk: 0, blockSize: 4096, ranges: [[0, 4096, 4096]] }, 400, "body.ranges");
    expect((await call({ disk: 0, blockSize: 4096, ranges: [[0, 4096]] }, `/replication/v1/relationships/${randomUUID()}/block-hashes`)).status).toBe(404);

    // Overlapping and out-of-order ranges are answered in the order asked, signed for this request.
    const req = { disk: 0, blockSize: 4096 as const, ranges: [[8192, 8192], [0, 12288], [4 * MiB - 4096, 4096]] as [number, number][] };
    const ok = await call(req);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const want = Buffer.alloc(6 * HASH_BYTES);
    let slot = 0;
    for (const [o, l] of req.ranges) slot = hashBlocks(content.subarray(o, o + l), 4096, want, slot);
    const got = Buffer.from(ok.body.hashes!, "base64");
    expect(got.equals(want)).toBe(true);
    expect(ok.body.mac).toBe(blockHashesMac(REPL_TOKEN, created.id, ok.nonce, req, got));
  });

  describe("HTTP mode: block hashes altered in transit", () => {
    let proxy: HashProxy;
    beforeAll(async () => {
      proxy = await HashProxy.start(pair.replica.ports.http);
    });
    afterAll(async () => proxy?.close());

    /** What the proxy can compute by itself: the hashes of the primary's own blocks. */
    async function primaryHashes(vmId: string, req: BlockReq): Promise<string> {
      const fh = await open(join(pair.dir, "hv01", "vms", vmId, `disk${req.disk}.raw`), "r");
      try {
        const total = req.ranges.reduce((n, [, l]) => n + l, 0);
        const out = Buffer.alloc((total / req.blockSize) * HASH_BYTES);
        let slot = 0;
        for (const [offset, length] of req.ranges) {
          const buf = Buffer.alloc(length);
          await fh.read(buf, 0, length, offset);
          slot = hashBlocks(buf, req.blockSize, out, slot);
        }
        return out.toString("base64");
      } finally {
        await fh.close();
      }
    }

    async function viaProxy(name: string): Promise<string> {
      const size = 32 * MiB;
      const vm = await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: size }] });
      await pair.primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=0`, randomBytes(MiB));
      await pair.primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, {
        replicaServer: "hv02.lab.test",
        replicaPort: proxy.port,
        authMode: "http",
        frequencySeconds: 900,
        startInitialReplication: false,
      });
      expect((await pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).ok).toBe(true);
      return vm.id;
    }

    const attacks: [string, (vmId: string) => Promise<Rewrite>][] = [
      // The perfect attack: the replica's hashes replaced by the primary's own, so every block "matches".
      ["hashes replaced by the primary's own, mac kept", async (vmId) => {
        const own = await primaryHashes(vmId, { disk: 0, blockSize: 65536, ranges: [[0, 32 * MiB]] });
        return (req, a) => ({ answer: { hashes: req.blockSize === 65536 ? own : a.hashes, mac: a.mac } });
      }],
      ["hashes replaced, mac removed", async (vmId) => {
        const own = await primaryHashes(vmId, { disk: 0, blockSize: 65536, ranges: [[0, 32 * MiB]] });
        return () => ({ answer: { hashes: own, mac: null } });
      }],
      ["hashes replaced, mac field missing", async (vmId) => {
        const own = await primaryHashes(vmId, { disk: 0, blockSize: 65536, ranges: [[0, 32 * MiB]] });
        return () => ({ answer: { hashes: own } });
      }],
      ["one hash flipped to 'equal', mac kept", async (vmId) => {
        const own = Buffer.from(await primaryHashes(vmId, { disk: 0, blockSize: 65536, ranges: [[0, 32 * MiB]] }), "base64");
        return (_req, a) => {
          const h = Buffer.from(a.hashes, "base64");
          // The first differing 64 KiB block made to look equal.
          for (let i = 0; i < h.length; i += HASH_BYTES) {
            if (!h.subarray(i, i + HASH_BYTES).equals(own.subarray(i, i + HASH_BYTES))) {
              own.copy(h, i, i, i + HASH_BYTES);
              break;
            }
          }
          return { answer: { hashes: h.toString("base64"), mac: a.mac } };
        };
      }],
      ["hashes truncated", async () => (_req, a) => ({ answer: { hashes: Buffer.from(a.hashes, "base64").subarray(0, 16).toString("base64"), mac: a.mac } })],
      ["hashes not a string", async () => (_req, a) => ({ answer: { hashes: 12345, mac: a.mac } })],
      ["a signed answer of an earlier request replayed", async () => {
        let first: { hashes: string; mac: string | null } | undefined;
        return (_req, a) => {
          if (!first) {
            first = a;
            return {};
          }
          return { answer: first };
        };
      }],
    ];

    it.each(attacks)("refuses %s, sends nothing on their strength, and completes once the tampering stops", async (_name, makeAttack) => {
      const vmId = await viaProxy(`mitm-${attacks.findIndex(([n]) => n === _name)}`);
      await writeBehindTheAgentsBack(vmId, [
        [4096, 4096],
        [5 * MiB, 65536],
        [20 * MiB, 8192],
      ]);
      proxy.rewrite = await makeAttack(vmId);
      proxy.tampered = 0;
      const mark = await lastEventId(vmId);
      await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
      // The primary tries, refuses the answer, and retries; the range is never applied meanwhile.
      await waitFor("a refused range", async () => (await events(vmId)).find((e) => e.id > mark && e.kind === "replication.cycle-failed"), 30_000, 100);
      expect(proxy.tampered).toBeGreaterThan(0);
      expect((await events(vmId)).some((e) => e.id > mark && e.kind === "replication.resync-complete"), "completed on tampered hashes").toBe(false);
      expect((await rel(vmId)).state).toBe("Resynchronizing");
      proxy.rewrite = undefined;
      const done = await completion(vmId, mark, 60_000);
      expect(done.data?.differingBytes).toBe(4096 + 65536 + 8192);
      expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    });

    it("refuses hashes of other ranges than it asked for (request rewritten in transit)", async () => {
      const vmId = await viaProxy("mitm-request");
      await writeBehindTheAgentsBack(vmId, [[6 * MiB, 4096]]);
      // The replica is asked about a range of zeros it has too; honest hashes of the wrong blocks.
      proxy.rewriteRequest = (req) => ({ ...req, ranges: req.ranges.map(([o, l]) => [Math.min(o + 16 * MiB, 32 * MiB - l), l] as [number, number]) });
      proxy.tampered = 0;
      const mark = await lastEventId(vmId);
      await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
      await waitFor("a refused range", async () => (await events(vmId)).find((e) => e.id > mark && e.kind === "replication.cycle-failed"), 30_000, 100);
      expect(proxy.tampered).toBeGreaterThan(0);
      expect((await events(vmId)).some((e) => e.id > mark && e.kind === "replication.resync-complete")).toBe(false);
      proxy.rewriteRequest = undefined;
      const done = await completion(vmId, mark, 60_000);
      expect(done.data?.differingBytes).toBe(4096);
      expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    });
  });
});
