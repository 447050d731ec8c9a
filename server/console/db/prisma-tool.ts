/**
 * npm run db -- generate | migrate <name> | deploy
 *   generate  Prisma Client for SQLite and PostgreSQL (runs at npm install)
 *   migrate   a new migration from the change to prisma/schema.prisma, for both providers
 *   deploy    apply committed migrations to DATABASE_URL (the console also does this at start)
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../agent/agent-process.js";
import { readEnv } from "../env.js";
import { createMigration, migrateDeploy, PRISMA_DIR, readSchema } from "./migrate.js";

async function generate(): Promise<void> {
  const pgSchema = join(PRISMA_DIR, "postgresql.generated.prisma");
  writeFileSync(pgSchema, await readSchema("postgresql"));
  // The CLI insists on a schema-engine binary path even though generate never runs it.
  const env = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: "1" };
  const cli = join(ROOT, "node_modules/prisma/build/index.js");
  for (const schema of [join(PRISMA_DIR, "schema.prisma"), pgSchema]) {
    execFileSync(process.execPath, [cli, "generate", "--no-hints", "--schema", schema], { cwd: ROOT, env, stdio: "inherit" });
  }
}

const [command, arg] = process.argv.slice(2);
if (command === "generate") await generate();
else if (command === "migrate" && arg) console.log((await createMigration(arg)).join("\n") || "no schema change");
else if (command === "deploy") console.log((await migrateDeploy(readEnv().DATABASE_URL)).join("\n") || "database is up to date");
else {
  console.error("usage: npm run db -- generate | migrate <name> | deploy");
  process.exit(2);
}
