/** Driver adapters (no engine binary): better-sqlite3 for file: URLs, node-postgres otherwise. */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { providerOf } from "../env.js";

/** An absolute SQLite path from a file: URL (relative paths are relative to the working directory). */
export function sqlitePath(databaseUrl: string): string {
  return resolve(databaseUrl.replace(/^file:/, ""));
}

export function adapterFor(databaseUrl: string): PrismaBetterSqlite3 | PrismaPg {
  if (providerOf(databaseUrl) === "sqlite") {
    if (databaseUrl === "file::memory:") return new PrismaBetterSqlite3({ url: ":memory:" });
    const file = sqlitePath(databaseUrl);
    mkdirSync(dirname(file), { recursive: true });
    return new PrismaBetterSqlite3({ url: `file:${file}` });
  }
  return new PrismaPg({ connectionString: databaseUrl });
}
