/** The agent's own small database (SQLite, WAL): relationships, cycles, events, settings. */
import Database from "better-sqlite3";

const MIGRATIONS: string[] = [
  `CREATE TABLE vms (
     id TEXT PRIMARY KEY,
     path TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL
   );
   CREATE TABLE relationships (
     id TEXT PRIMARY KEY,
     vm_id TEXT NOT NULL,
     role TEXT NOT NULL CHECK (role IN ('primary', 'replica')),
     record TEXT NOT NULL,
     UNIQUE (vm_id, role)
   );
   CREATE TABLE cycles (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     relationship_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     status TEXT NOT NULL,
     started_at TEXT NOT NULL,
     finished_at TEXT,
     changed_bytes INTEGER NOT NULL DEFAULT 0,
     wire_bytes INTEGER NOT NULL DEFAULT 0,
     error TEXT
   );
   CREATE INDEX cycles_rel ON cycles (relationship_id, id);
   CREATE TABLE events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     ts TEXT NOT NULL,
     severity TEXT NOT NULL,
     kind TEXT NOT NULL,
     vm_id TEXT,
     relationship_id TEXT,
     message TEXT NOT NULL,
     data TEXT
   );
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
];

export type Db = Database.Database;

export function openDb(path: string): Db {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  const version = db.pragma("user_version", { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}

export function getSetting<T>(db: Db, key: string): T | undefined {
  const row = db.prepare("SELECT value FROM settings WHERE key = ?").get(key) as { value: string } | undefined;
  return row ? (JSON.parse(row.value) as T) : undefined;
}

export function putSetting(db: Db, key: string, value: unknown): void {
  db.prepare("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(
    key,
    JSON.stringify(value),
  );
}
