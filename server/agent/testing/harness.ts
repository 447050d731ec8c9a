/**
 * Test harness: real agent processes on loopback, real certificates, real files.
 * Used by the agent's integration tests and by the benchmark.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess as BaseAgentProcess } from "../agent-process.js";
import { createCa, issueCertificate, writePair } from "../certs/certs.js";
import type { ReplicaServerSettings } from "../../shared/agent-api.js";
import { killQemuUnder } from "./qemu.js";


/** Ports this process handed out: the kernel may offer a port again once it was closed. */
const handedOut = new Set<number>();

/** A loopback port nothing listens on now, and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((ok, fail) => {
      const srv = createServer();
      srv.once("error", fail);
      srv.listen(0, "127.0.0.1", () => {
        const { port } = srv.address() as { port: number };
        srv.close(() => ok(port));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
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
  /** The test clock both agents of a pair share (see util/clock.ts). */
  clockFile?: string;
  hypervisor?: "lab" | "qemu";
}

/** An agent process of a test, with the ports it was given. */
export class AgentProcess extends BaseAgentProcess {
  constructor(
    readonly spec: AgentSpec,
    readonly ports: { management: number; http: number; https: number },
    configFile: string,
  ) {
    super({
      hostName: spec.hostName,
      configFile,
      managementPort: ports.management,
      token: MGMT_TOKEN,
      env: spec.clockFile ? { RM_CLOCK_FILE: spec.clockFile } : {},
      // Kept with RM_KEEP_TEST_DIRS=1 for a look after a failure.
      ...(process.env.RM_KEEP_TEST_DIRS ? { logFile: join(spec.dataDir, "agent.log") } : {}),
    });
  }
}

export async function defineAgent(spec: AgentSpec): Promise<AgentProcess> {
  const ports = spec.ports ?? { management: await freePort(), http: await freePort(), https: await freePort() };
  await mkdir(spec.dataDir, { recursive: true });
  const config = {
    hostName: spec.hostName,
    dataDir: spec.dataDir,
    hypervisor: spec.hypervisor ?? "lab",
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
  /** Moves both agents' clock forward (recovery points, health windows, schedules). */
  advanceClock(ms: number): Promise<void>;
  /** The agents' time now (real time plus every advance), in ms. */
  clockNow(): number;
  cleanup(): Promise<void>;
}

/** Two lab hosts that can replicate to each other over HTTPS (mutual TLS) and HTTP (token). */
export async function startPair(opts: { dir?: string; hypervisor?: "lab" | "qemu" } = {}): Promise<Pair> {
  const dir = opts.dir ?? (await tempDir());
  const site = await makeSite(join(dir, "certs"));
  const resolveMap = { "hv01.lab.test": "127.0.0.1", "hv02.lab.test": "127.0.0.1" };
  const clockFile = join(dir, "clock-offset-ms");
  let offset = 0;
  await writeFile(clockFile, "0");
  const common = { replicationToken: REPL_TOKEN, resolve: resolveMap, clockFile, hypervisor: opts.hypervisor };
  const primary = await defineAgent({ hostName: "hv01.lab.test", dataDir: join(dir, "hv01"), tls: await site.hostTls("hv01.lab.test"), ...common });
  const replica = await defineAgent({ hostName: "hv02.lab.test", dataDir: join(dir, "hv02"), tls: await site.hostTls("hv02.lab.test"), ...common });
  // If one fails to start, the other must not outlive the test.
  const started = await Promise.allSettled([primary.start(), replica.start()]);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all([primary.kill(), replica.kill()]);
    throw failed.reason;
  }
  return {
    dir,
    primary,
    replica,
    async advanceClock(ms: number) {
      offset += ms;
      await writeFile(clockFile, String(offset));
    },
    clockNow: () => Date.now() + offset,
    async cleanup() {
      await Promise.all([primary.kill(), replica.kill()]);
      // QEMU processes outlive their agent by design: end the test's own.
      if (opts.hypervisor === "qemu") await killQemuUnder(dir);
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
