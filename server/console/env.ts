/**
 * The console's environment, checked once at start-up. A wrong value stops the process with
 * a message that names the variable and the fix.
 */
import { z } from "zod";

const Env = z.object({
  /** file:./path.db (SQLite, the default) or postgresql://user:pass@host/db */
  DATABASE_URL: z
    .string()
    .trim()
    .default("file:./data/console.db")
    .refine((u) => /^(file:|postgres(ql)?:\/\/)/.test(u), "DATABASE_URL must start with file: (SQLite) or postgresql:// (PostgreSQL)"),
  PORT: z.coerce.number().int().min(1, "PORT must be 1-65535").max(65535, "PORT must be 1-65535").default(3000),
  HOST: z.string().trim().min(1).default("0.0.0.0"),
  NODE_ENV: z.enum(["development", "production", "test"]).default("production"),
  /** The console's client certificate, key and the CA of the agents' management certificates (PEM files), for agents that use mutual TLS. */
  RM_AGENT_TLS_CERT: z.string().trim().min(1).optional(),
  RM_AGENT_TLS_KEY: z.string().trim().min(1).optional(),
  RM_AGENT_TLS_CA: z.string().trim().min(1).optional(),
  /** Session lifetime in hours. */
  RM_SESSION_HOURS: z.coerce.number().int().min(1).max(24 * 30).default(12),
});
export type ConsoleEnv = z.infer<typeof Env>;
const Checked = Env.refine((e) => [e.RM_AGENT_TLS_CERT, e.RM_AGENT_TLS_KEY, e.RM_AGENT_TLS_CA].filter(Boolean).length % 3 === 0, {
  message: "set all three of RM_AGENT_TLS_CERT, RM_AGENT_TLS_KEY and RM_AGENT_TLS_CA, or none",
  path: ["RM_AGENT_TLS_CERT"],
});

export function readEnv(source: NodeJS.ProcessEnv = process.env): ConsoleEnv {
  const parsed = Checked.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`the console's environment is not valid:\n${lines.join("\n")}`);
  }
  return parsed.data;
}

export type DbProvider = "sqlite" | "postgresql";
export function providerOf(databaseUrl: string): DbProvider {
  return databaseUrl.startsWith("file:") ? "sqlite" : "postgresql";
}
