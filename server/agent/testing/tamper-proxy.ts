/**
 * A man in the middle for the plain-HTTP replication port, for tests: forwards every
 * request untouched, except that the next cycle upload can be tampered with once armed.
 * Cycle bodies are buffered whole (test cycles are small), so frames can be rewritten and
 * re-sent with an honest content-length; the primary's signed headers are kept as they are,
 * since the request signature covers method, path, primary name and time, not the body.
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeHeader, encodeFrame, HEADER_SIZE, type FrameHeader } from "../replication/frames.js";

const CYCLE_PATH = /^\/replication\/v1\/relationships\/([^/?]+)\/cycles\/(\d+)\?base=(-?\d+)$/;
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "content-length"];

export interface CycleUpload {
  relationshipId: string;
  seq: number;
  base: number;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as the primary sent it. */
  body: Buffer;
  fate: "forwarded" | "tampered" | "cut" | "dropped" | "answered";
  /** The Replica server's answer, when one came back. */
  status?: number;
  answer?: string;
  /** Why the proxy hung up without a verdict (a tamper function that failed). */
  error?: string;
}

export type Verdict =
  /** Send this body instead of the original one. */
  | { action: "forward"; body: Buffer }
  /** Announce the whole body, send only its first `after` bytes, then hang up on both agents. */
  | { action: "cut"; body: Buffer; after: number }
  /** Never reach the Replica server; hang up on the primary. */
  | { action: "drop" }
  /** Answer the primary in the Replica server's place. */
  | { action: "answer"; status: number; body: unknown };

/** Decides what becomes of one upload; `history` holds every earlier upload, oldest first. */
export type Tamper = (upload: CycleUpload, history: readonly CycleUpload[]) => Verdict;

export interface RawFrame {
  header: FrameHeader;
  headerBuf: Buffer;
  payload: Buffer;
  /** Where the frame starts in the stream. */
  at: number;
}

/** Splits a cycle stream into frames without verifying them. */
export function splitFrames(body: Buffer): RawFrame[] {
  const frames: RawFrame[] = [];
  for (let at = 0; at < body.length; ) {
    const headerBuf = body.subarray(at, at + HEADER_SIZE);
    const header = decodeHeader(headerBuf);
    const payload = body.subarray(at + HEADER_SIZE, at + HEADER_SIZE + header.payloadLength);
    frames.push({ header, headerBuf, payload, at });
    at += HEADER_SIZE + header.payloadLength;
  }
  return frames;
}

export function joinFrames(frames: readonly RawFrame[]): Buffer {
  return Buffer.concat(frames.flatMap((f) => [f.headerBuf, f.payload]));
}

/** Rebuilds a frame with changed fields or payload and a checksum that matches again. */
export function reseal(f: RawFrame, patch: Partial<Pick<FrameHeader, "type" | "flags" | "disk" | "seq" | "index" | "offset" | "length">> = {}, payload: Buffer = f.payload): RawFrame {
  const headerBuf = encodeFrame({ ...f.header, ...patch }, payload);
  return { header: decodeHeader(headerBuf), headerBuf, payload, at: f.at };
}

function withoutHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.includes(name)) out[name] = value;
  return out;
}

export class TamperProxy {
  /** Every cycle upload seen, oldest first, with what became of it. */
  readonly uploads: CycleUpload[] = [];
  private armed: { tamper: Tamper; relationshipId?: string } | undefined;
  // No pooling towards the replica, so a connection cut on purpose never poisons a later request.
  private readonly agent = new http.Agent({ keepAlive: false });

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<TamperProxy> {
    let proxy: TamperProxy | undefined;
    const server = http.createServer((req, res) => void proxy!.handle(req, res));
    // Longer than the primary keeps idle connections, so it never reuses one closed under it.
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(0, "127.0.0.1", ok);
    });
    proxy = new TamperProxy(server, (server.address() as AddressInfo).port, { host: targetHost, port: targetPort });
    return proxy;
  }

  /** Tampers with the next cycle upload (of one relationship, if given), once. */
  arm(tamper: Tamper, relationshipId?: string): void {
    this.armed = { tamper, relationshipId };
  }

  get isArmed(): boolean {
    return this.armed !== undefined;
  }

  disarm(): void {
    this.armed = undefined;
  }

  /** Sends a recorded upload to the Replica server again, headers and body verbatim. */
  async resend(u: CycleUpload): Promise<{ status: number; answer: string }> {
    return this.send(u.path, u.headers, u.body);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
    this.agent.destroy();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const m = req.method === "POST" ? CYCLE_PATH.exec(req.url ?? "") : null;
      if (!m) return this.passThrough(req, res);
      const body = Buffer.concat((await req.toArray()) as Buffer[]);
      const upload: CycleUpload = { relationshipId: m[1]!, seq: Number(m[2]), base: Number(m[3]), path: req.url!, headers: req.headers, body, fate: "forwarded" };
      const history = [...this.uploads];
      this.uploads.push(upload);
      const armed = this.armed;
      let verdict: Verdict = { action: "forward", body };
      if (armed && (armed.relationshipId === undefined || armed.relationshipId === upload.relationshipId)) {
        this.armed = undefined;
        try {
          verdict = armed.tamper(upload, history);
        } catch (err) {
          upload.fate = "dropped";
          upload.error = `tamper failed: ${(err as Error).message}`;
          req.socket.destroy();
          return;
        }
        upload.fate = verdict.action === "forward" ? "tampered" : verdict.action === "answer" ? "answered" : verdict.action === "cut" ? "cut" : "dropped";
      }
      switch (verdict.action) {
        case "drop":
          req.socket.destroy();
          return;
        case "answer":
          res.writeHead(verdict.status, { "content-type": "application/json; charset=utf-8" });
          res.end(JSON.stringify(verdict.body));
          return;
        case "cut":
          await this.send(upload.path, upload.headers, verdict.body, verdict.after).catch(() => undefined);
          req.socket.destroy();
          return;
        case "forward": {
          const answer = await this.send(upload.path, upload.headers, verdict.body);
          upload.status = answer.status;
          upload.answer = answer.answer;
          res.writeHead(answer.status, { "content-type": "application/json; charset=utf-8" });
          res.end(answer.answer);
          return;
        }
      }
    } catch {
      // The Replica server hung up: so does the proxy.
      req.socket.destroy();
    }
  }

  private passThrough(req: http.IncomingMessage, res: http.ServerResponse): void {
    const headers = withoutHopByHop(req.headers);
    if (req.headers["content-length"] !== undefined) headers["content-length"] = req.headers["content-length"];
    const up = http.request({ ...this.target, method: req.method, path: req.url, headers, agent: this.agent });
    up.on("response", (r) => {
      res.writeHead(r.statusCode ?? 502, withoutHopByHop(r.headers));
      r.pipe(res);
    });
    up.on("error", () => req.socket.destroy());
    req.pipe(up);
  }

  /** One request to the Replica server; with `cutAfter`, the body stops there and the connection drops. */
  private send(path: string, headers: IncomingHttpHeaders, body: Buffer, cutAfter?: number): Promise<{ status: number; answer: string }> {
    return new Promise((resolve, reject) => {
      const up = http.request({
        ...this.target,
        method: "POST",
        path,
        headers: { ...withoutHopByHop(headers), "content-length": String(body.length) },
        agent: this.agent,
      });
      up.on("error", reject);
      up.on("response", (r) => {
        const chunks: Buffer[] = [];
        r.on("data", (c: Buffer) => chunks.push(c));
        r.on("error", reject);
        r.on("end", () => resolve({ status: r.statusCode ?? 0, answer: Buffer.concat(chunks).toString("utf8") }));
      });
      if (cutAfter === undefined) {
        // The replica may answer (a rejection) before reading it all; that answer still counts.
        up.end(body);
        return;
      }
      up.write(body.subarray(0, cutAfter), () => {
        up.destroy();
        reject(new Error("cut on purpose"));
      });
    });
  }
}
