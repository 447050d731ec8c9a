/**
 * Agent-to-agent calls: HTTPS with this host's certificate as the client certificate
 * (mutual TLS), or plain HTTP with requests signed by the shared token.
 */
import { createHmac, randomBytes } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import type { AuthMode } from "../../shared/replication.js";
import { AgentError } from "../errors.js";

export interface PeerTarget {
  server: string;
  port: number;
  mode: AuthMode;
}

export interface PeerClientOptions {
  hostName: string;
  tls?: { cert: string; key: string; ca: string };
  token?: string;
  /** Static name → address map, like /etc/hosts (lab hosts on loopback). */
  resolve: Record<string, string>;
}

/** An error answered by a peer (status is the peer's HTTP status; 0 when it never answered). */
export class PeerError extends AgentError {
  override readonly name = "PeerError";
}

export const TOKEN_SCHEME = "RM-Token";

/** HTTP mode's request signature; the nonce makes every request unique and unreplayable. */
export function signRequest(token: string, method: string, path: string, primary: string, ts: number, nonce: string): string {
  return createHmac("sha256", token).update(`${method}\n${path}\n${primary}\n${ts}\n${nonce}`).digest("hex");
}

export class PeerClient {
  private readonly httpsAgent: https.Agent | undefined;
  // No keep-alive: a pooled socket to a peer that restarted fails the next cycle for
  // nothing, and one handshake per cycle is negligible next to the cycle itself.
  private readonly httpAgent = new http.Agent({ keepAlive: false });

  constructor(private readonly opts: PeerClientOptions) {
    if (opts.tls) this.httpsAgent = new https.Agent({ keepAlive: false, ...opts.tls });
  }

  private lookup = (hostname: string, options: { all?: boolean }, cb: (...args: unknown[]) => void): void => {
    const fixed = this.opts.resolve[hostname];
    if (!fixed) return void dnsLookup(hostname, options as never, cb as never);
    const family = fixed.includes(":") ? 6 : 4;
    if (options.all) cb(null, [{ address: fixed, family }] satisfies LookupAddress[]);
    else cb(null, fixed, family);
  };

  private request(target: PeerTarget, method: string, path: string, headers: Record<string, string>, nonce = randomBytes(16).toString("hex"), timeout = 60_000): http.ClientRequest {
    const base = { host: target.server, port: target.port, method, path, lookup: this.lookup as never, timeout };
    if (target.mode === "https") {
      if (!this.httpsAgent) throw new PeerError(0, "NO_CERTIFICATE", "this host has no certificate configured; HTTPS replication needs replication.tls in the agent config");
      return https.request({ ...base, agent: this.httpsAgent, servername: target.server, headers });
    }
    if (!this.opts.token) throw new PeerError(0, "NO_TOKEN", "this host has no replication token configured; HTTP replication needs replication.token in the agent config");
    const ts = Date.now();
    const sig = signRequest(this.opts.token, method, path, this.opts.hostName, ts, nonce);
    return http.request({
      ...base,
      agent: this.httpAgent,
      headers: { ...headers, authorization: `${TOKEN_SCHEME} ${this.opts.hostName}:${ts}:${nonce}:${sig}` },
    });
  }

  /** A JSON request; an error answer becomes a PeerError with the peer's own message. */
  async json<T>(target: PeerTarget, method: string, path: string, body?: unknown, nonce?: string, timeoutMs?: number): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = this.request(target, method, path, payload ? { "content-type": "application/json" } : {}, nonce, timeoutMs);
    return this.exchange<T>(target, req, async () => {
      req.end(payload);
    });
  }

  /**
   * Streams a body (a replication cycle), then reads the JSON answer. Each chunk is written
   * before the next is asked for, so the source may reuse a chunk's memory at that point.
   */
  async stream<T>(target: PeerTarget, path: string, source: AsyncIterable<Buffer>, nonce?: string, signal?: AbortSignal): Promise<T> {
    const req = this.request(target, "POST", path, { "content-type": "application/octet-stream" }, nonce);
    const stop = () => req.destroy(new Error("the transfer was stopped because the agent is shutting down"));
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop, { once: true });
    // An error of our own (reading the disk, compressing) must not be reported as the
    // peer hanging up, which is only its consequence.
    let localError: Error | undefined;
    async function* guarded(): AsyncGenerator<Buffer> {
      try {
        yield* source;
      } catch (err) {
        localError = err as Error;
        throw err;
      }
    }
    // A request that fails before its socket connects may never call back its writes.
    const closed = new Promise<never>((_, reject) => req.once("close", () => reject(new Error("the connection closed during the transfer"))));
    closed.catch(() => undefined);
    const send = async (): Promise<void> => {
      for await (const chunk of guarded()) {
        await Promise.race([closed, new Promise<void>((resolve, reject) => req.write(chunk, (err) => (err ? reject(err) : resolve())))]);
      }
      await Promise.race([closed, new Promise<void>((resolve) => req.end(resolve))]);
    };
    return this.exchange<T>(target, req, send, () => localError);
  }

  private exchange<T>(target: PeerTarget, req: http.ClientRequest, send: () => Promise<void>, localError: () => Error | undefined = () => undefined): Promise<T> {
    const where = `${target.server}:${target.port} (${target.mode.toUpperCase()})`;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        req.destroy();
        const own = localError();
        if (own) return reject(own);
        // The system's or TLS's code (ECONNREFUSED, SELF_SIGNED_CERT_IN_CHAIN, …) says what to fix.
        const cause = (err as NodeJS.ErrnoException).code ?? (err.message === "no answer in time" ? "TIMEOUT" : undefined);
        reject(err instanceof PeerError ? err : new PeerError(0, "UNREACHABLE", `cannot reach ${where}: ${err.message}`, cause ? { cause } : undefined));
      };
      req.on("timeout", () => fail(new Error("no answer in time")));
      req.on("error", fail);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", fail);
        res.on("end", () => {
          if (settled) return;
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            parsed = { error: { message: text.slice(0, 300) } };
          }
          if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) {
            settled = true;
            resolve(parsed as T);
          } else {
            const e = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } }).error ?? {};
            settled = true;
            reject(new PeerError(res.statusCode ?? 0, e.code ?? "PEER_ERROR", `${where} answered ${res.statusCode}: ${e.message ?? "no message"}`, e.details));
          }
        });
      });
      send().catch((err: Error) => {
        // The peer may answer (and close) before the upload ends, e.g. a refusal: let the
        // answer win, and report a broken upload only if no answer comes.
        setTimeout(() => fail(err), 2000).unref();
      });
    });
  }

  close(): void {
    this.httpsAgent?.destroy();
    this.httpAgent.destroy();
  }
}
