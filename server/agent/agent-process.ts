/**
 * Runs an agent as its own process and talks to its management API. Used by `npm start`
 * (the lab demo), by the integration tests and by the benchmark.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
const TSX = join(ROOT, "node_modules/tsx/dist/esm/index.mjs");

export interface ApiResult<T> {
  status: number;
  body: T;
}

export interface AgentProcessOptions {
  hostName: string;
  configFile: string;
  managementPort: number;
  token: string;
  /** Also append the agent's output to this file. */
  logFile?: string;
  /** Extra environment, e.g. RM_CLOCK_FILE for a test clock. */
  env?: Record<string, string>;
}

/**
 * libuv's thread pool runs file I/O, 4 threads by default; direct writes of replicated data each
 * hold a thread until the disk answers, so agents get more (package.json's `agent` script too).
 */
export const AGENT_THREADPOOL_SIZE = "16";

/**
 * An HTTPS request body arrives in 16 KiB buffers, each a fresh allocation outside V8's heap. With
 * the agent's small heap (about 20 MB live), V8's limits made that a full collection every 32 MiB
 * received (250 of them in an 8 GiB initial copy: a third of the replica's CPU time). A 128 MB floor
 * for the old generation stops that (measured: 8 GiB received in 13–15 s instead of 20–21 s).
 * package.json's `agent` script passes the same flag.
 */
export const AGENT_NODE_FLAGS = ["--initial-old-space-size=128"];

export class AgentProcess {
  child: ChildProcess | undefined;
  /** The current run's output (bounded). */
  output = "";
  private log: WriteStream | undefined;

  constructor(readonly opts: AgentProcessOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.opts.managementPort}`;
  }

  /** Starts the agent; `failpoints` arms test crash points (see util/failpoints.ts). */
  async start(failpoints: string[] = []): Promise<void> {
    // RM_AGENT_NODE_ARGS: extra Node flags for profiling, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const extra = (process.env.RM_AGENT_NODE_ARGS ?? "").split(" ").filter(Boolean);
    const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, ...extra, "--import", TSX, join(ROOT, "server/agent/main.ts"), "--config", this.opts.configFile], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { UV_THREADPOOL_SIZE: AGENT_THREADPOOL_SIZE, ...process.env, ...this.opts.env, NODE_OPTIONS: "", RM_FAILPOINTS: failpoints.join(",") },
    });
    this.child = child;
    this.output = "";
    if (this.opts.logFile) this.log ??= createWriteStream(this.opts.logFile, { flags: "a" });
    await new Promise<void>((ok, fail) => {
      const onData = (d: Buffer) => {
        this.log?.write(d);
        this.output += d.toString();
        if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000);
        if (this.output.includes('"ready":true')) ok();
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code) => fail(new Error(`agent ${this.opts.hostName} exited with ${code} before it was ready:\n${this.output.slice(-3000)}`)));
    });
  }

  private get alive(): ChildProcess | undefined {
    const c = this.child;
    return c && c.exitCode === null && c.signalCode === null ? c : undefined;
  }

  /** kill -9: no cleanup of any kind, as a crash. */
  async kill(): Promise<void> {
    const c = this.alive;
    if (!c) return;
    const exited = new Promise((ok) => c.once("exit", ok));
    c.kill("SIGKILL");
    await exited;
  }

  /** SIGTERM: the agent's ordered shutdown. Resolves with its exit code. */
  async stop(): Promise<number | null> {
    const c = this.alive;
    if (!c) return this.child?.exitCode ?? null;
    const exited = new Promise<number | null>((ok) => c.once("exit", (code) => ok(code)));
    c.kill("SIGTERM");
    return exited;
  }

  async restart(failpoints: string[] = []): Promise<void> {
    await this.stop();
    await this.start(failpoints);
  }

  /** Resolves when the process has exited (e.g. killed itself at a failpoint). */
  async exited(timeoutMs = 30_000): Promise<void> {
    const c = this.alive;
    if (!c) return;
    await new Promise<void>((ok, fail) => {
      const t = setTimeout(() => fail(new Error(`agent ${this.opts.hostName} did not exit within ${timeoutMs} ms`)), timeoutMs);
      c.once("exit", () => {
        clearTimeout(t);
        ok();
      });
    });
  }

  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
    const binary = body instanceof Uint8Array;
    const res = await fetch(this.url + path, {
      method,
      headers: {
        authorization: `Bearer ${this.opts.token}`,
        ...(binary ? { "content-type": "application/octet-stream" } : body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: (binary ? body : body !== undefined ? JSON.stringify(body) : undefined) as BodyInit | undefined,
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: res.status, body: json as T };
  }

  /** GET of raw bytes (disk data), throwing unless the answer is 2xx. */
  async bytes(path: string): Promise<Buffer> {
    const res = await fetch(this.url + path, { headers: { authorization: `Bearer ${this.opts.token}` } });
    if (!res.ok) throw new Error(`${this.opts.hostName}: GET ${path} → ${res.status}: ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  }

  /** Like api(), but throws unless the answer is 2xx. */
  async ok<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.api<T>(method, path, body);
    if (r.status < 200 || r.status >= 300) throw new Error(`${this.opts.hostName}: ${method} ${path} → ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }
}
