/**
 * The agent's event log: every state transition, error and refusal, with a severity.
 * Persisted (bounded) so the console can resume its stream from the last id it saw.
 */
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Db } from "./db.js";
import type { EventSeverity } from "../../shared/replication.js";

export interface AgentEvent {
  id: number;
  ts: string;
  severity: EventSeverity;
  kind: string;
  vmId: string | null;
  relationshipId: string | null;
  message: string;
  data: Record<string, unknown> | null;
}

export type NewEvent = Omit<AgentEvent, "id" | "ts" | "vmId" | "relationshipId" | "data"> & {
  vmId?: string;
  relationshipId?: string;
  data?: Record<string, unknown>;
};

const KEEP = 20000;

interface EventRow {
  id: number;
  ts: string;
  severity: EventSeverity;
  kind: string;
  vm_id: string | null;
  relationship_id: string | null;
  message: string;
  data: string | null;
}

function fromRow(r: EventRow): AgentEvent {
  return {
    id: r.id,
    ts: r.ts,
    severity: r.severity,
    kind: r.kind,
    vmId: r.vm_id,
    relationshipId: r.relationship_id,
    message: r.message,
    data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : null,
  };
}

export class EventLog {
  private readonly bus = new EventEmitter();
  private inserted = 0;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {
    this.bus.setMaxListeners(0);
  }

  emit(e: NewEvent): AgentEvent {
    const ts = new Date().toISOString();
    const info = this.db
      .prepare("INSERT INTO events (ts, severity, kind, vm_id, relationship_id, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(ts, e.severity, e.kind, e.vmId ?? null, e.relationshipId ?? null, e.message, e.data ? JSON.stringify(e.data) : null);
    const event: AgentEvent = {
      id: Number(info.lastInsertRowid),
      ts,
      severity: e.severity,
      kind: e.kind,
      vmId: e.vmId ?? null,
      relationshipId: e.relationshipId ?? null,
      message: e.message,
      data: e.data ?? null,
    };
    const level = e.severity === "error" ? "error" : e.severity === "warning" ? "warn" : "info";
    this.log[level]({ event: e.kind, vmId: e.vmId, relationshipId: e.relationshipId, ...e.data }, e.message);
    if (++this.inserted % 500 === 0) this.db.prepare("DELETE FROM events WHERE id <= ?").run(event.id - KEEP);
    this.bus.emit("event", event);
    return event;
  }

  list(after: number, limit: number, vmId?: string): AgentEvent[] {
    const rows = vmId
      ? this.db.prepare("SELECT * FROM events WHERE id > ? AND vm_id = ? ORDER BY id LIMIT ?").all(after, vmId, limit)
      : this.db.prepare("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?").all(after, limit);
    return (rows as EventRow[]).map(fromRow);
  }

  lastId(): number {
    const row = this.db.prepare("SELECT MAX(id) AS id FROM events").get() as { id: number | null };
    return row.id ?? 0;
  }

  subscribe(fn: (e: AgentEvent) => void): () => void {
    const safe = (e: AgentEvent) => {
      try {
        fn(e);
      } catch (err) {
        this.log.error({ err }, "event subscriber failed");
      }
    };
    this.bus.on("event", safe);
    return () => this.bus.off("event", safe);
  }
}
