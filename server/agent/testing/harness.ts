/**
 * Test harness: real agent processes on loopback, real certificates, real files.
 * Used by the agent's integration tests and by the benchmark.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createCa, issueCertificate, writePair } from "../certs/certs.js";
import type { ReplicaServerSettings } from "../../shared/agent-api.js";

export const ROOT = resolve(import.meta.dirname, "../../..");
const TSX = join(ROOT, "node_modules/tsx/dist/esm/index.mjs");

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

export async function tempDir(prefix = "rm-test-"): Promise<string> {
  return mkdtemp(join(process.env.RM_TEST_TMP ?? tmpdir(), prefix));
}

export interface Site {
  dir: string;
  caFile: string;
  hostTls(name: string): Promise<{ cert: string; key: string; ca: string }>;
}

/** A CA and certificates for a site's hosts, in a folder. */
export async function makeSite(dir: string, caName = "Test Site CA"): Promise<Site> {
  await mkdir(dir, { recursive: true });
  const ca = await createCa(caName);
  const caFiles = await writePair(dir, "ca", ca);
  return {
    dir,
    caFile: caFiles.cert,
    async hostTls(name) {
      const files = await writePair(dir, name, await issueCertificate(ca, [name]));
      return { ...files, ca: caFiles.cert };
    },
  };
}

export const MGMT_TOKEN = "test-management-token-0123456789";
export const REPL_TOKEN = "test-replication-token-0123456789";

export interface AgentSpec {
  hostName: string;
  dataDir: string;
  tls?: { cert: string; key: string; ca: string };
  replicationToken?: string;
  replicaServer?: ReplicaServerSettings;
  resolve?: Record<string, string>;
  ports?: { management: number; http: number; https: number };
}

export class AgentProcess {
  child: ChildProcess | undefined;
  output = "";
  constructor(
    readonly spec: AgentSpec,
    readonly ports: { management: number; http: number; https: number },
    readonly configFile: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.ports.management}`;
  }

  /** Starts the agent; `failpoints` arms crash points (see util/failpoints.ts). */
  async start(failpoints: string[] = []): Promise<void> {
    const child = spawn(process.execPath, ["--import", TSX, join(ROOT, "server/agent/main.ts"), "--config", this.configFile], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_OPTIONS: "", RM_FAILPOINTS: failpoints.join(",") },
    });
    this.child = child;
    this.output = "";
    await new Promise<void>((ok, fail) => {
      const onData = (d: Buffer) => {
        this.output += d.toString();
        if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000);
        if (this.output.includes('"ready":true')) ok();
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code) => fail(new Error(`agent ${this.spec.hostName} exited with ${code} before it was ready:\n${this.output.slice(-3000)}`)));
    });
  }

  /** kill -9: no cleanup of any kind, as a crash. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((ok) => c.once("exit", ok));
    c.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<number | null> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
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
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((ok, fail) => {
      const t = setTimeout(() => fail(new Error(`agent ${this.spec.hostName} did not exit within ${timeoutMs} ms`)), timeoutMs);
      c.once("exit", () => {
        clearTimeout(t);
        ok();
      });
    });
  }

  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
    const res = await fetch(this.url + path, {
      method,
      headers: {
        authorization: `Bearer ${MGMT_TOKEN}`,
        ...(body instanceof Uint8Array ? { "content-type": "application/octet-stream" } : body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: (body instanceof Uint8Array ? body : body !== undefined ? JSON.stringify(body) : undefined) as BodyInit | undefined,
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

  /** Like api(), but fails the test unless the answer is 2xx. */
  async ok<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.api<T>(method, path, body);
    if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path} → ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

export interface ApiResult<T> {
  status: number;
  body: T;
}

export async function defineAgent(spec: AgentSpec): Promise<AgentProcess> {
  const ports = spec.ports ?? { management: await freePort(), http: await freePort(), https: await freePort() };
  await mkdir(spec.dataDir, { recursive: true });
  const config = {
    hostName: spec.hostName,
    dataDir: spec.dataDir,
    management: { port: ports.management, token: MGMT_TOKEN },
    replication: { ...(spec.tls ? { tls: spec.tls } : {}), ...(spec.replicationToken ? { token: spec.replicationToken } : {}) },
    replicaServer: spec.replicaServer ?? {
      enabled: true,
      http: { enabled: Boolean(spec.replicationToken), port: ports.http },
      https: { enabled: Boolean(spec.tls), port: ports.https },
      authorization: { mode: "any", defaultStorageLocation: join(spec.dataDir, "replicas"), trustGroup: "DEFAULT" },
    },
    resolve: spec.resolve ?? {},
    logLevel: "info",
  };
  const configFile = join(spec.dataDir, "agent.json");
  await writeFile(configFile, JSON.stringify(config, null, 2));
  return new AgentProcess(spec, ports, configFile);
}

export interface Pair {
  dir: string;
  primary: AgentProcess;
  replica: AgentProcess;
  cleanup(): Promise<void>;
}

/** Two lab hosts that can replicate to each other over HTTPS (mutual TLS) and HTTP (token). */
export async function startPair(opts: { dir?: string } = {}): Promise<Pair> {
  const dir = opts.dir ?? (await tempDir());
  const site = await makeSite(join(dir, "certs"));
  const resolveMap = { "hv01.lab.test": "127.0.0.1", "hv02.lab.test": "127.0.0.1" };
  const primary = await defineAgent({ hostName: "hv01.lab.test", dataDir: join(dir, "hv01"), tls: await site.hostTls("hv01.lab.test"), replicationToken: REPL_TOKEN, resolve: resolveMap });
  const replica = await defineAgent({ hostName: "hv02.lab.test", dataDir: join(dir, "hv02"), tls: await site.hostTls("hv02.lab.test"), replicationToken: REPL_TOKEN, resolve: resolveMap });
  await Promise.all([primary.start(), replica.start()]);
  return {
    dir,
    primary,
    replica,
    async cleanup() {
      await Promise.all([primary.kill(), replica.kill()]);
      if (!process.env.RM_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface VmView {
  id: string;
  name: string;
  state: string;
  disks: { index: number; sizeBytes: number }[];
  replication: { id: string; role: string; state: string; lastAckedSeq?: number; lastAppliedSeq?: number; vmId: string; reason: string | null }[];
}

export async function diskHash(agent: AgentProcess, vmId: string, disk = 0): Promise<string> {
  return (await agent.ok<{ sha256: string }>("GET", `/api/v1/vms/${vmId}/disks/${disk}/hash`)).sha256;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
