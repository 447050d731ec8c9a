/**
 * The replication listeners (/replication/v1), agent to agent. Every request is first
 * authenticated (mutual TLS on HTTPS, the signed shared token on HTTP) and then authorized
 * against the Replica server settings; a refusal is answered with the reason and logged
 * as an event. Nothing is written before both checks pass.
 */
import type { TLSSocket } from "node:tls";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { BlockHashesBody, CreateReplicaBody, CycleParams, CycleQuery, FailoverOptionsBody, HandoverBody } from "../../shared/agent-api.js";
import type { Peer } from "../replication/peer-gate.js";
import { macMatches } from "../replication/stream-auth.js";
import type { ReplicationManager } from "../replication/manager.js";
import { AgentError } from "../errors.js";
import { parse } from "./http-common.js";
import { signRequest, TOKEN_SCHEME } from "./peer-client.js";

const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Nonces seen within the clock-skew window: a request replayed verbatim is refused. */
class NonceCache {
  private readonly seen = new Map<string, number>();

  /** False when the nonce was already used. */
  remember(nonce: string, now = Date.now()): boolean {
    if (this.seen.size > 10_000) for (const [n, exp] of this.seen) if (exp < now) this.seen.delete(n);
    if (this.seen.has(nonce)) return false;
    this.seen.set(nonce, now + 2 * MAX_CLOCK_SKEW_MS);
    return true;
  }
}

declare module "fastify" {
  interface FastifyRequest {
    peer?: Peer;
  }
}

function unauthenticated(message: string): AgentError {
  return new AgentError(401, "UNAUTHENTICATED", message);
}

function peerFromCertificate(req: FastifyRequest): Peer {
  const socket = req.raw.socket as TLSSocket;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) {
    throw unauthenticated("no client certificate: HTTPS replication requires mutual TLS; configure replication.tls on the primary");
  }
  if (!socket.authorized) {
    throw unauthenticated(`client certificate of '${cert.subject?.CN ?? "unknown"}' is not trusted by this Replica server (${String(socket.authorizationError)}); issue it from a CA listed in replication.tls.ca`);
  }
  const dns = (cert.subjectaltname ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
  const name = dns[0] ?? (typeof cert.subject?.CN === "string" ? cert.subject.CN.toLowerCase() : undefined);
  if (!name) throw unauthenticated("client certificate names no server (no DNS subject alternative name or CN)");
  return { name, via: "https" };
}

function peerFromToken(req: FastifyRequest, token: string | undefined, nonces: NonceCache): Peer {
  if (!token) throw unauthenticated("this Replica server has no replication token configured, so HTTP replication is off; use HTTPS");
  const header = req.headers.authorization ?? "";
  const m = new RegExp(`^${TOKEN_SCHEME} ([^:\\s]+):(\\d+):([0-9a-f]{32}):([0-9a-f]{64})$`).exec(header);
  if (!m) throw unauthenticated(`missing signed token: HTTP replication requires 'Authorization: ${TOKEN_SCHEME} <primary>:<time>:<nonce>:<signature>'`);
  const [, name, tsText, nonce, sig] = m as unknown as [string, string, string, string, string];
  const ts = Number(tsText);
  if (Math.abs(Date.now() - ts) > MAX_CLOCK_SKEW_MS) throw unauthenticated(`signed token from '${name}' is more than 5 minutes old or ahead: check both hosts' clocks`);
  if (!macMatches(signRequest(token, req.method, req.url, name, ts, nonce), sig)) {
    throw unauthenticated(`token signature from '${name}' does not match: the primary and the Replica server must share the same replication.token`);
  }
  if (!nonces.remember(nonce)) throw unauthenticated(`request from '${name}' was already received once: a replayed request is refused`);
  return { name: name.toLowerCase(), via: "http", auth: { token, nonce } };
}

export function registerReplicationApi(app: FastifyInstance, via: "https" | "http", manager: ReplicationManager, token: string | undefined): void {
  const store = manager.replicas;
  // Cycle bodies are streamed straight into the receiver, never buffered whole.
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));

  const nonces = new NonceCache();
  app.addHook("onRequest", async (req) => {
    try {
      req.peer = via === "https" ? peerFromCertificate(req) : peerFromToken(req, token, nonces);
    } catch (err) {
      store.gate.refused({ name: "unauthenticated peer", via }, `${(err as Error).message} (from ${req.ip})`);
      throw err;
    }
  });

  app.get("/replication/v1/server", async (req) => {
    const authorized = store.gate.authorize(req.peer!);
    return { accepted: true, trustGroup: authorized.trustGroup };
  });

  app.post("/replication/v1/relationships", async (req, reply) => {
    const rec = await store.createReplica(parse(CreateReplicaBody, req.body, "body"), req.peer!);
    return reply.status(201).send({ relationshipId: rec.id, vmId: rec.vmId, lastAppliedSeq: rec.lastAppliedSeq, state: rec.state });
  });

  app.get("/replication/v1/relationships/:id", async (req) => {
    const { id } = parse(z.object({ id: z.string().uuid() }), req.params, "params");
    const rec = store.status(id, req.peer!);
    return { relationshipId: rec.id, vmId: rec.vmId, lastAppliedSeq: rec.lastAppliedSeq, state: rec.state };
  });

  /** From the primary: the one-call planned failover asks its replica to fail over. */
  app.post("/replication/v1/relationships/:id/planned-failover", async (req) => {
    const { id } = parse(z.object({ id: z.string().uuid() }), req.params, "params");
    const rec = store.status(id, req.peer!);
    return manager.planned.failOver(rec.vmId, parse(FailoverOptionsBody, req.body ?? {}, "body"), req.peer!);
  });

  /** From the replica: the failover's handover on the (former) primary. */
  app.post("/replication/v1/relationships/:id/handover", async (req) => {
    const { id } = parse(z.object({ id: z.string().uuid() }), req.params, "params");
    const { seq, reverse, unplanned } = parse(HandoverBody, req.body, "body");
    return manager.planned.handover(id, seq, reverse, req.peer!, unplanned);
  });

  /** From the replica, before an unplanned failover: is the primary VM running here? */
  app.get("/replication/v1/relationships/:id/primary", async (req) => {
    const { id } = parse(z.object({ id: z.string().uuid() }), req.params, "params");
    return manager.primaryStatus(id, req.peer!.name);
  });

  app.post("/replication/v1/relationships/:id/block-hashes", async (req) => {
    const { id } = parse(z.object({ id: z.string().uuid() }), req.params, "params");
    return store.blockHashes(id, parse(BlockHashesBody, req.body, "body"), req.peer!);
  });

  app.post("/replication/v1/relationships/:id/cycles/:seq", async (req) => {
    const { id, seq } = parse(CycleParams, req.params, "params");
    const { base, resync } = parse(CycleQuery, req.query, "query");
    const body = req.body as AsyncIterable<Buffer> | undefined;
    if (!body || typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== "function") {
      throw new AgentError(415, "UNSUPPORTED_MEDIA_TYPE", "a cycle must be sent as application/octet-stream");
    }
    return store.receive(id, seq, base, body, req.peer!, resync === "1");
  });
}
