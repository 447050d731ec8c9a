/**
 * A QMP client over a unix socket: one JSON object per line, commands answered in order by
 * id, asynchronous events to listeners. `connect` retries while QEMU is still starting.
 */
import { EventEmitter } from "node:events";
import { connect as netConnect, type Socket } from "node:net";

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly qmpClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${desc}`);
  }
}

export class Qmp extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private buf = "";
  private nextId = 1;
  private readonly pending = new Map<string, { command: string; ok: (v: unknown) => void; fail: (e: Error) => void }>();
  private closed = false;

  private constructor(private readonly sock: Socket) {
    super();
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => this.onData(chunk));
    sock.on("error", () => undefined);
    sock.on("close", () => {
      this.closed = true;
      for (const p of this.pending.values()) p.fail(new Error(`QMP ${p.command}: the QEMU process went away`));
      this.pending.clear();
      this.emit("close");
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Connects and negotiates capabilities; retries until `timeoutMs` while the socket is not there yet. */
  static async connect(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((ok, fail) => {
          const s = netConnect(path);
          s.once("connect", () => ok(s));
          s.once("error", fail);
        });
        const qmp = new Qmp(sock);
        await qmp.greeting();
        await qmp.execute("qmp_capabilities");
        return qmp;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`cannot reach QMP at ${path}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private greetingWaiter: ((v: unknown) => void) | undefined;
  private greeting(): Promise<unknown> {
    return new Promise((ok, fail) => {
      this.greetingWaiter = ok;
      this.sock.once("close", () => fail(new Error("closed before the QMP greeting")));
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as { QMP?: unknown; id?: string; return?: unknown; error?: { class: string; desc: string }; event?: string; data?: Record<string, unknown> };
      if (msg.QMP) {
        this.greetingWaiter?.(msg.QMP);
        this.greetingWaiter = undefined;
      } else if (msg.event) {
        this.emit("event", { event: msg.event, data: msg.data });
      } else if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (!p) continue;
        if (msg.error) p.fail(new QmpError(p.command, msg.error.class, msg.error.desc));
        else p.ok(msg.return);
      }
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`QMP ${command}: the QEMU process went away`));
    const id = String(this.nextId++);
    return new Promise<T>((ok, fail) => {
      this.pending.set(id, { command, ok: ok as (v: unknown) => void, fail });
      this.sock.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + "\n");
    });
  }

  /** Resolves with the first event named `name` that `match` accepts, or rejects after `timeoutMs`. */
  waitEvent(name: string, match: (data: Record<string, unknown>) => boolean = () => true, timeoutMs = 30_000): Promise<QmpEvent> {
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => {
        this.off("event", on);
        fail(new Error(`QEMU did not report ${name} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const on = (e: QmpEvent) => {
        if (e.event !== name || !match(e.data ?? {})) return;
        clearTimeout(timer);
        this.off("event", on);
        ok(e);
      };
      this.on("event", on);
    });
  }

  /** Human monitor command (e.g. `qemu-io disk0 "write -P 0xab 0 64k"`); its output text. */
  async hmp(commandLine: string): Promise<string> {
    return this.execute<string>("human-monitor-command", { "command-line": commandLine });
  }

  close(): void {
    this.sock.destroy();
  }
}
