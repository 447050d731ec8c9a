/**
 * npm start: two lab hosts on this machine (hv01.lab.local, hv02.lab.local) as real agent
 * processes on loopback, with a CA and certificates of their own, a few demo VMs, and one
 * VM replicating from hv01 to hv02 over HTTPS every 30 seconds, and the console on port 3000
 * with both hosts enrolled. State (the console's database included) lives in .lab/ and
 * survives restarts; delete that folder to start over.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AgentProcess, ROOT } from "../agent/agent-process.js";
import { createCa, issueCertificate, readPair, writePair } from "../agent/certs/certs.js";
import { readEnv } from "../console/env.js";
import { printAdmin } from "../console/print.js";
import { startConsole, type RunningConsole } from "../console/server.js";

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

/** Enrols the lab hosts in the console once (a later start finds them registered). */
async function enrol(console_: RunningConsole, agents: AgentProcess[], token: string): Promise<void> {
  const known = new Set((await console_.fleet.hosts()).map((h) => h.address));
  for (const a of agents) {
    if (known.has(a.url)) continue;
    await console_.fleet.addHost({ auth: "token", address: a.url, token });
    await console_.db.auditEntry.create({ data: { userName: "system", action: "hosts.add", target: `address=${a.url}`, result: "success", input: { demo: true } } });
  }
}

async function main(): Promise<void> {
  await mkdir(LAB, { recursive: true });
  const s = await secrets();
  await certificates();
  const agents = await Promise.all(HOSTS.map((h) => agentFor(h, s)));
  let console_: RunningConsole | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping the console and the lab hosts (running VMs are saved)...");
    await console_?.close();
    await Promise.all(agents.map((a) => a.stop()));
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  try {
    await Promise.all(agents.map((a) => a.start()));
  } catch (err) {
    console.error(`a lab host failed to start: ${(err as Error).message}\nIs another 'npm start' running? Ports ${HOSTS.flatMap((h) => [h.management, h.https, h.http]).join(", ")} must be free.`);
    await Promise.all(agents.map((a) => a.kill()));
    process.exit(1);
  }
  await seed(agents[0]!);
  // The lab's console database lives with the lab, so deleting .lab/ starts everything over.
  const env = readEnv({ DATABASE_URL: `file:${join(LAB, "console.db")}`, ...process.env });
  console_ = await startConsole({ env, dev: process.argv.includes("--dev") });
  await enrol(console_, agents, s.managementToken);
  console.log(`
Replica Manager is running:
  console         ${console_.url}   (Hyper-V Manager in the browser)
  hv01.lab.local  agent http://127.0.0.1:${HOSTS[0].management}/api/v1  (primary of sql-01)
  hv02.lab.local  agent http://127.0.0.1:${HOSTS[1].management}/api/v1  (Replica server)
  management token: ${s.managementToken}   (also in .lab/lab.json)
  logs: .lab/hv01/agent.log, .lab/hv02/agent.log`);
  if (console_.firstRunAdmin) printAdmin(console_.firstRunAdmin);
  else console.log("  sign in as admin with the password printed at the first start (delete .lab/ to start over)\n");
  console.log("Press Ctrl+C to stop.");
}

void main();
