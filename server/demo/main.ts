/**
 * npm start: two lab hosts on this machine (hv01.lab.local, hv02.lab.local) as real agent
 * processes on loopback, with a CA and certificates of their own, a few demo VMs, and one
 * VM replicating from hv01 to hv02 over HTTPS every 30 seconds. Prints what they do.
 * State lives in .lab/ and survives restarts; delete that folder to start over.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AgentProcess, ROOT } from "../agent/agent-process.js";
import { createCa, issueCertificate, readPair, writePair } from "../agent/certs/certs.js";
import type { AgentEvent } from "../agent/state/events.js";
import { AgentEventStream } from "../fleet/event-stream.js";

const LAB = join(ROOT, ".lab");
const HOSTS = [
  { name: "hv01.lab.local", management: 9441, https: 9443, http: 9080 },
  { name: "hv02.lab.local", management: 9442, https: 9444, http: 9081 },
] as const;

interface LabSecrets {
  managementToken: string;
  replicationToken: string;
}

async function secrets(): Promise<LabSecrets> {
  const file = join(LAB, "lab.json");
  if (existsSync(file)) return JSON.parse(await readFile(file, "utf8")) as LabSecrets;
  const s = { managementToken: randomBytes(24).toString("hex"), replicationToken: randomBytes(24).toString("hex") };
  await writeFile(file, JSON.stringify(s, null, 2), { mode: 0o600 });
  return s;
}

async function certificates(): Promise<void> {
  const dir = join(LAB, "certs");
  if (existsSync(join(dir, "ca.pem"))) return;
  const ca = await createCa("Replica Manager Lab CA");
  await writePair(dir, "ca", ca);
  for (const h of HOSTS) await writePair(dir, h.name, await issueCertificate(ca, [h.name]));
  await readPair(dir, "ca");
}

async function agentFor(h: (typeof HOSTS)[number], s: LabSecrets): Promise<AgentProcess> {
  const dataDir = join(LAB, h.name.split(".")[0]!);
  await mkdir(dataDir, { recursive: true });
  const certs = join(LAB, "certs");
  const config = {
    hostName: h.name,
    dataDir,
    management: { port: h.management, token: s.managementToken },
    replication: {
      token: s.replicationToken,
      tls: { cert: join(certs, `${h.name}.pem`), key: join(certs, `${h.name}-key.pem`), ca: join(certs, "ca.pem") },
    },
    replicaServer: {
      enabled: true,
      http: { enabled: true, port: h.http },
      https: { enabled: true, port: h.https },
      authorization: { mode: "any", defaultStorageLocation: join(dataDir, "replicas"), trustGroup: "DEFAULT" },
    },
    resolve: Object.fromEntries(HOSTS.map((x) => [x.name, "127.0.0.1"])),
    logLevel: "info",
  };
  const configFile = join(dataDir, "agent.json");
  await writeFile(configFile, JSON.stringify(config, null, 2));
  return new AgentProcess({ hostName: h.name, configFile, managementPort: h.management, token: s.managementToken, logFile: join(dataDir, "agent.log") });
}

interface Vm {
  id: string;
  name: string;
  state: string;
  replication: unknown[];
}

const GiB = 1024 ** 3;

async function seed(primary: AgentProcess): Promise<void> {
  const vms = await primary.ok<Vm[]>("GET", "/api/v1/vms");
  if (vms.length > 0) {
    for (const vm of vms) if (vm.state === "Saved" || vm.state === "Off") await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    return;
  }
  const sql = await primary.ok<Vm>("POST", "/api/v1/vms", {
    name: "sql-01",
    cpus: 4,
    memoryMiB: 8192,
    disks: [{ sizeBytes: 8 * GiB }, { sizeBytes: 2 * GiB }],
    workload: { pattern: "random-4k", rateMiBps: 1 },
  });
  const web = await primary.ok<Vm>("POST", "/api/v1/vms", {
    name: "web-01",
    cpus: 2,
    memoryMiB: 2048,
    disks: [{ sizeBytes: 4 * GiB }],
    workload: { pattern: "sequential-1m", rateMiBps: 2 },
  });
  await primary.ok("POST", "/api/v1/vms", { name: "build-01", cpus: 2, memoryMiB: 4096, disks: [{ sizeBytes: 2 * GiB }] });
  for (const vm of [sql, web]) await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
  await primary.ok("POST", `/api/v1/vms/${sql.id}/replication`, {
    replicaServer: HOSTS[1].name,
    replicaPort: HOSTS[1].https,
    authMode: "https",
    frequencySeconds: 30,
  });
}

const COLORS = { info: "\x1b[36m", warning: "\x1b[33m", error: "\x1b[31m" } as const;
const tty = process.stdout.isTTY;
function print(host: string, e: AgentEvent): void {
  const color = tty ? COLORS[e.severity] : "";
  const reset = tty ? "\x1b[0m" : "";
  console.log(`${e.ts.slice(11, 19)} ${host.padEnd(15)} ${color}${e.severity.padEnd(7)}${reset} ${e.message}`);
}

async function main(): Promise<void> {
  await mkdir(LAB, { recursive: true });
  const s = await secrets();
  await certificates();
  const agents = await Promise.all(HOSTS.map((h) => agentFor(h, s)));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping the lab hosts (running VMs are saved)...");
    streams.forEach((st) => st.stop());
    await Promise.all(agents.map((a) => a.stop()));
    process.exit(0);
  };
  const streams: AgentEventStream[] = [];
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  try {
    await Promise.all(agents.map((a) => a.start()));
  } catch (err) {
    console.error(`a lab host failed to start: ${(err as Error).message}\nIs another 'npm start' running? Ports ${HOSTS.flatMap((h) => [h.management, h.https, h.http]).join(", ")} must be free.`);
    await Promise.all(agents.map((a) => a.kill()));
    process.exit(1);
  }
  for (const [i, a] of agents.entries()) {
    const { lastEventId } = await a.ok<{ lastEventId: number }>("GET", "/api/v1/host");
    const st = new AgentEventStream({
      url: a.url,
      token: s.managementToken,
      // Show what happens from now on, not the history of earlier runs.
      lastEventId,
      onEvent: (e) => print(HOSTS[i]!.name, e),
    });
    st.start();
    streams.push(st);
  }
  await seed(agents[0]!);
  console.log(`
Replica Manager lab is running:
  hv01.lab.local  management http://127.0.0.1:${HOSTS[0].management}/api/v1  (primary of sql-01)
  hv02.lab.local  management http://127.0.0.1:${HOSTS[1].management}/api/v1  (Replica server)
  management token: ${s.managementToken}   (also in .lab/lab.json)
  logs: .lab/hv01/agent.log, .lab/hv02/agent.log
  try:  curl -s -H "authorization: Bearer ${s.managementToken}" http://127.0.0.1:${HOSTS[0].management}/api/v1/vms
Press Ctrl+C to stop.
`);
}

void main();
