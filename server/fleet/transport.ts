/**
 * How the console reaches an agent's management API: a bearer token over HTTP (lab setups), or
 * mutual TLS, where the console presents its client certificate and checks the agent's against
 * the CA it was given (RM_AGENT_TLS_*). undici's fetch, since Node's global fetch takes no
 * client certificate.
 */
import { readFileSync } from "node:fs";
import { Agent, fetch, type RequestInit, type Response } from "undici";
import { WebSocket } from "ws";

export interface ConsoleTls {
  cert: string;
  key: string;
  ca: string;
}

export type AgentAuth = { kind: "token"; token: string } | { kind: "certificate"; tls: ConsoleTls };

const dispatchers = new WeakMap<ConsoleTls, Agent>();

/** Reads the console's client certificate, key and the agents' CA from PEM files. */
export function loadConsoleTls(files: { cert?: string; key?: string; ca?: string }): ConsoleTls | null {
  if (!files.cert || !files.key || !files.ca) return null;
  return { cert: readFileSync(files.cert, "utf8"), key: readFileSync(files.key, "utf8"), ca: readFileSync(files.ca, "utf8") };
}

export function agentFetch(url: string, auth: AgentAuth, init: RequestInit = {}): Promise<Response> {
  const headers = { ...(init.headers as Record<string, string> | undefined) };
  if (auth.kind === "token") return fetch(url, { ...init, headers: { ...headers, authorization: `Bearer ${auth.token}` } });
  let dispatcher = dispatchers.get(auth.tls);
  if (!dispatcher) {
    dispatcher = new Agent({ connect: { cert: auth.tls.cert, key: auth.tls.key, ca: auth.tls.ca } });
    dispatchers.set(auth.tls, dispatcher);
  }
  return fetch(url, { ...init, headers, dispatcher });
}

/** A websocket to an agent's management API (`address` is its http(s) URL), with the same credentials. */
export function agentWebSocket(url: string, auth: AgentAuth): WebSocket {
  const wsUrl = url.replace(/^http/, "ws");
  if (auth.kind === "token") return new WebSocket(wsUrl, { headers: { authorization: `Bearer ${auth.token}` } });
  return new WebSocket(wsUrl, { cert: auth.tls.cert, key: auth.tls.key, ca: auth.tls.ca });
}
