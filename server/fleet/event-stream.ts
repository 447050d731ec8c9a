/**
 * Follows an agent's event stream (server-sent events), resuming from the last event id
 * after a drop so nothing is missed or seen twice. Every event is parsed before use.
 */
import { AgentEvent, AgentMetrics } from "./agent-schemas.js";
import { agentFetch, type AgentAuth } from "./transport.js";

export interface EventStreamOptions {
  url: string;
  auth: AgentAuth;
  onEvent(e: AgentEvent): void;
  /** Asks for `metrics` messages (CPU usage of running VMs) every this many seconds. */
  metrics?: { everySeconds: number; onMetrics(m: AgentMetrics): void };
  onStatus?(status: "connected" | "disconnected", error?: string): void;
  lastEventId?: number;
}

export class AgentEventStream {
  private controller: AbortController | undefined;
  private stopped = false;
  lastEventId: number;

  constructor(private readonly opts: EventStreamOptions) {
    this.lastEventId = opts.lastEventId ?? 0;
  }

  start(): void {
    this.stopped = false;
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
  }

  private async loop(): Promise<void> {
    let delay = 250;
    while (!this.stopped) {
      try {
        await this.follow();
        delay = 250;
      } catch (err) {
        if (this.stopped) return;
        this.opts.onStatus?.("disconnected", describe(err));
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }

  private async follow(): Promise<void> {
    this.controller = new AbortController();
    const query = this.opts.metrics ? `?metricsSeconds=${this.opts.metrics.everySeconds}` : "";
    const res = await agentFetch(`${this.opts.url}/api/v1/events/stream${query}`, this.opts.auth, {
      headers: { "last-event-id": String(this.lastEventId), accept: "text/event-stream" },
      signal: this.controller.signal,
    });
    if (!res.ok || !res.body) throw new Error(res.status === 401 ? "the agent refused the console's credentials" : `event stream answered ${res.status}`);
    this.opts.onStatus?.("connected");
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = block.split("\n");
        const data = lines
          .filter((l) => l.startsWith("data: "))
          .map((l) => l.slice(6))
          .join("\n");
        if (!data) continue;
        if (lines.includes("event: metrics")) {
          this.opts.metrics?.onMetrics(AgentMetrics.parse(JSON.parse(data)));
          continue;
        }
        const event = AgentEvent.parse(JSON.parse(data));
        if (event.id <= this.lastEventId) continue;
        this.lastEventId = event.id;
        this.opts.onEvent(event);
      }
    }
    throw new Error("the agent closed the event stream");
  }
}

/** A readable reason: fetch hides the socket error (ECONNREFUSED, …) in `cause`. */
export function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.cause?.code === "ECONNREFUSED") return "the connection was refused (is the agent running?)";
  if (e.cause?.code === "UND_ERR_SOCKET" || e.cause?.code === "ECONNRESET") return "the agent closed the connection (it stopped or restarted)";
  if (e.cause?.code === "ETIMEDOUT" || e.cause?.code === "UND_ERR_CONNECT_TIMEOUT") return "the agent did not answer in time";
  if (e.cause?.code === "ENOTFOUND") return "the agent's host name cannot be resolved";
  if (e.cause?.code && /CERT|SSL|TLS/.test(e.cause.code)) return `TLS: ${e.cause.message ?? e.cause.code}`;
  if (e.cause?.code) return `${e.cause.code}: ${e.cause.message ?? e.message}`;
  return e.message;
}
