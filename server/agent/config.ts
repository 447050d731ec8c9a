/** The agent's configuration file, checked once at start-up; a wrong value names its key. */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { HostName, Port, ReplicaServerSettings } from "../shared/agent-api.js";

const TlsFiles = z.strictObject({
  cert: z.string().min(1, "path of the host's certificate (PEM)"),
  key: z.string().min(1, "path of the host's private key (PEM)"),
  ca: z.string().min(1, "path of the CA certificate(s) that peers' certificates must chain to (PEM)"),
});

export const AgentConfig = z
  .object({
    hostName: HostName,
    dataDir: z.string().min(1, "dataDir must name a folder for the agent's VMs and state"),
    hypervisor: z.enum(["lab", "qemu"], { message: "hypervisor must be 'lab' (built-in lab VMs) or 'qemu' (QEMU/KVM)" }).default("lab"),
    /** Address the listeners bind to. */
    listen: z.string().default("127.0.0.1"),
    management: z
      .strictObject({
        port: Port.default(9440),
        token: z.string().min(16, "management.token must be at least 16 characters").optional(),
        tls: TlsFiles.optional(),
      })
      .refine((m) => m.token || m.tls, "management needs a token (lab setups) or tls (mutual TLS), or both"),
    replication: z
      .strictObject({
        token: z.string().min(16, "replication.token must be at least 16 characters").optional(),
        tls: TlsFiles.optional(),
      })
      .default({}),
    /**
     * Replica server settings for the agent's first start. From then on the settings live in
     * the agent's database and change through the API (PUT /api/v1/replica-server).
     */
    replicaServer: ReplicaServerSettings.optional(),
    /** Static name resolution, like /etc/hosts: server name → IP address. */
    resolve: z.record(z.string(), z.string()).default({}),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentConfig>;

export class ConfigError extends Error {}

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`).join("\n");
}

export function parseConfig(raw: unknown, baseDir = process.cwd()): AgentConfig {
  const parsed = AgentConfig.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`invalid agent configuration:\n${describe(parsed.error)}`);
  const cfg = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  cfg.dataDir = abs(cfg.dataDir);
  for (const tls of [cfg.management.tls, cfg.replication.tls]) {
    if (tls) Object.assign(tls, { cert: abs(tls.cert), key: abs(tls.key), ca: abs(tls.ca) });
  }
  return cfg;
}

export function loadConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read agent configuration ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`agent configuration ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, resolve(path, ".."));
}

export interface TlsMaterial {
  cert: string;
  key: string;
  ca: string;
}

export function readTls(files: z.infer<typeof TlsFiles> | undefined, key: string): TlsMaterial | undefined {
  if (!files) return undefined;
  const read = (p: string, what: string) => {
    try {
      return readFileSync(p, "utf8");
    } catch (err) {
      throw new ConfigError(`${key}.${what}: cannot read ${p}: ${(err as Error).message}`);
    }
  };
  return { cert: read(files.cert, "cert"), key: read(files.key, "key"), ca: read(files.ca, "ca") };
}
