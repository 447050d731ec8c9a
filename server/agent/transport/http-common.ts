/** What every agent listener shares: zod-checked input and one way of answering errors. */
import Fastify, { LogController, type FastifyInstance } from "fastify";
import type { SecureContextOptions } from "node:tls";
import type { Logger } from "pino";
import { z } from "zod";
import { AgentError } from "../errors.js";
import { PeerError } from "./peer-client.js";

export function parse<S extends z.ZodType>(schema: S, value: unknown, where: "body" | "query" | "params"): z.infer<S> {
  // Only a missing body or query counts as empty; an explicit null is bad input.
  const result = schema.safeParse(value === undefined ? {} : value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ field: [where, ...i.path.map(String)].join("."), message: i.message }));
  throw new AgentError(400, "VALIDATION", issues.map((i) => `${i.field}: ${i.message}`).join("; "), { issues });
}

export function installErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof AgentError) {
      // A peer's own status passes through; a peer that never answered is a bad gateway.
      const status = err instanceof PeerError && !(err.status >= 400 && err.status < 600) ? 502 : err.status;
      return reply.status(status).send({ error: { code: err.code, message: err.message, details: err.details } });
    }
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return reply.status(415).send({
        error: { code: "UNSUPPORTED_MEDIA_TYPE", message: `content-type '${req.headers["content-type"] ?? "none"}' is not accepted here: send application/json (or application/octet-stream for disk data and cycles)` },
      });
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // Fastify's own refusals: malformed JSON, wrong content type, body too large.
      return reply.status(e.statusCode).send({ error: { code: e.code ?? "BAD_REQUEST", message: e.message } });
    }
    if (err instanceof RangeError) return reply.status(400).send({ error: { code: "OUT_OF_RANGE", message: err.message } });
    log.error({ err, url: req.url }, "request failed");
    return reply.status(500).send({ error: { code: "INTERNAL", message: "the agent failed to handle this request; see its log" } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({ error: { code: "NOT_FOUND", message: `no route ${req.method} ${req.url.split("?")[0]}; see docs/agent-api.md` } }),
  );
}

/** A Fastify server logging through the agent's logger, plain HTTP or TLS. */
export function createServer(log: Logger, name: string, tls?: SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean }): FastifyInstance {
  const app = Fastify({ loggerInstance: log.child({ listener: name }), logController: new LogController({ disableRequestLogging: true }), ...(tls ? { https: tls } : {}) });
  const typed = app as unknown as FastifyInstance;
  installErrorHandler(typed, log);
  return typed;
}
