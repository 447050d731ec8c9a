/**
 * Committed SQL migrations, one folder per provider (prisma/migrations/sqlite, …/postgresql),
 * applied with Prisma's schema engine (WebAssembly) at start-up. New migrations are made by
 * `npm run db -- migrate <name>`: the diff from the schema of the last migration
 * (prisma/migrations/schema.snapshot.prisma) to prisma/schema.prisma, for both providers.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MigrationList } from "@prisma/schema-engine-wasm";
import { ROOT } from "../../agent/agent-process.js";
import { providerOf, type DbProvider } from "../env.js";
import { openSchemaEngine } from "./schema-engine.js";

export const PRISMA_DIR = join(ROOT, "prisma");
const SNAPSHOT = join(PRISMA_DIR, "migrations", "schema.snapshot.prisma");

/** The schema for a provider: prisma/schema.prisma is SQLite's; PostgreSQL's differs only in provider and output. */
export function schemaFor(source: string, provider: DbProvider): string {
  if (provider === "sqlite") return source;
  return source.replace(/provider = "sqlite"/, 'provider = "postgresql"').replace(/generated\/sqlite"/, 'generated/postgresql"');
}

export async function readSchema(provider: DbProvider): Promise<string> {
  return schemaFor(await readFile(join(PRISMA_DIR, "schema.prisma"), "utf8"), provider);
}

async function migrationsList(provider: DbProvider): Promise<MigrationList> {
  const baseDir = join(PRISMA_DIR, "migrations", provider);
  const names = existsSync(baseDir) ? (await readdir(baseDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
  const lockPath = join(baseDir, "migration_lock.toml");
  return {
    baseDir,
    lockfile: { path: "migration_lock.toml", content: existsSync(lockPath) ? await readFile(lockPath, "utf8") : null },
    shadowDbInitScript: "",
    migrationDirectories: await Promise.all(
      names.map(async (name) => ({
        path: name,
        migrationFile: { path: "migration.sql", content: { tag: "ok" as const, value: await readFile(join(baseDir, name, "migration.sql"), "utf8") } },
      })),
    ),
  };
}

const NO_FILTER = { externalTables: [], externalEnums: [] };

/** Applies the committed migrations not yet applied; answers their names. */
export async function migrateDeploy(databaseUrl: string): Promise<string[]> {
  const provider = providerOf(databaseUrl);
  const { engine, close } = await openSchemaEngine(databaseUrl, await readSchema(provider));
  try {
    const out = await engine.applyMigrations({ migrationsList: await migrationsList(provider), filters: NO_FILTER });
    return out.appliedMigrationNames;
  } finally {
    await close();
  }
}

/** Writes a new migration for both providers (nothing when the schema did not change). */
export async function createMigration(name: string): Promise<string[]> {
  const stamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
  const folder = `${stamp}_${name.replace(/[^a-z0-9_]+/gi, "_").toLowerCase()}`;
  const previous = existsSync(SNAPSHOT) ? await readFile(SNAPSHOT, "utf8") : undefined;
  const written: string[] = [];
  for (const provider of ["sqlite", "postgresql"] as const) {
    // Diffing two datamodels changes no database, but the PostgreSQL connector wants to reach one.
    const url = provider === "sqlite" ? "file::memory:" : (process.env.RM_DEV_PG_URL ?? "postgresql://rm:rm@127.0.0.1:5432/rm_dev");
    const target = await readSchema(provider);
    const { engine, close } = await openSchemaEngine(url, target);
    try {
      const from = previous ? { tag: "schemaDatamodel" as const, files: [{ path: "schema.prisma", content: schemaFor(previous, provider) }] } : { tag: "empty" as const };
      const diff = await engine.diff({ from, to: { tag: "schemaDatamodel", files: [{ path: "schema.prisma", content: target }] }, script: true, exitCode: null, filters: NO_FILTER });
      const sql = diff.stdout ?? "";
      if (!sql.trim() || /^-- This is an empty migration/.test(sql.trim())) continue;
      const dir = join(PRISMA_DIR, "migrations", provider, folder);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "migration.sql"), sql);
      await writeFile(join(PRISMA_DIR, "migrations", provider, "migration_lock.toml"), `provider = "${provider}"\n`);
      written.push(join(provider, folder));
    } finally {
      await close();
    }
  }
  await writeFile(SNAPSHOT, await readFile(join(PRISMA_DIR, "schema.prisma"), "utf8"));
  return written;
}
