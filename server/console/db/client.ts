/**
 * Prisma Client through a driver adapter. Both generated clients share the same models; the
 * PostgreSQL one is typed as the SQLite one, which is structurally the same API.
 */
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient as SqliteClient } from "./generated/sqlite/client.js";
import { PrismaClient as PgClient } from "./generated/postgresql/client.js";
import { adapterFor } from "./adapter.js";

export type Db = SqliteClient;
export { Prisma } from "./generated/sqlite/client.js";

export function createDb(databaseUrl: string): Db {
  const adapter = adapterFor(databaseUrl);
  if (adapter instanceof PrismaBetterSqlite3) return new SqliteClient({ adapter });
  return new PgClient({ adapter }) as unknown as Db;
}
