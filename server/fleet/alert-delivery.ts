/**
 * Sending one health alert (★): a JSON POST to a webhook, or a mail through the target's SMTP
 * server (nodemailer). Every attempt, sent or failed, is recorded as an AlertDelivery with the
 * error, for the events pane and the Alerts dialog.
 */
import nodemailer from "nodemailer";
import type { Db } from "../console/db/client.js";
import type { EventView } from "./views.js";

const TIMEOUT_MS = 10_000;

export interface AlertTargetRow {
  id: string;
  kind: string;
  name: string;
  address: string;
  smtpUrl: string | null;
}

/** What a webhook receives (and a mail says). */
export interface AlertPayload {
  kind: "replication-health";
  /** The health the VM turned to. */
  health: "Critical" | "Normal";
  vmId: string;
  vmName: string;
  /** The host whose side of the relationship changed. */
  hostName: string;
  mode: string;
  state: string;
  reasons: string[];
  primaryServer: string;
  replicaServer: string;
  at: string;
  /** A test alert sent from the Alerts dialog. */
  test: boolean;
}

export function alertSubject(p: AlertPayload): string {
  return `${p.test ? "[Test] " : ""}Replication health of '${p.vmName}' on ${p.hostName} is ${p.health}`;
}

function alertText(p: AlertPayload): string {
  return [
    `${alertSubject(p)}.`,
    "",
    `Replication state: ${p.state} (${p.mode})`,
    `Primary server: ${p.primaryServer}`,
    `Replica server: ${p.replicaServer}`,
    ...(p.reasons.length ? ["", "Reasons:", ...p.reasons.map((r) => `- ${r}`)] : []),
    "",
    `Time: ${p.at}`,
  ].join("\n");
}

async function send(target: AlertTargetRow, payload: AlertPayload): Promise<void> {
  if (target.kind === "webhook") {
    let res: Response;
    try {
      res = await fetch(target.address, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "ReplicaManager-Console" },
        body: JSON.stringify({ ...payload, subject: alertSubject(payload) }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      throw new Error(e.name === "TimeoutError" ? `no answer from ${target.address} within ${TIMEOUT_MS / 1000} s` : `cannot reach ${target.address}: ${e.cause?.code ?? e.cause?.message ?? e.message}`);
    }
    await res.body?.cancel();
    if (!res.ok) throw new Error(`the webhook answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
    return;
  }
  const url = new URL(target.smtpUrl ?? "smtp://localhost");
  const transport = nodemailer.createTransport({
    host: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    secure: url.protocol === "smtps:",
    auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
  });
  const from = `Replica Manager <replica-manager@${url.hostname || "localhost"}>`;
  await transport.sendMail({ from, to: target.address, subject: alertSubject(payload), text: alertText(payload) });
}

/** Sends to one target and records the outcome; never throws for a failed delivery. */
export async function deliverAlert(db: Db, target: AlertTargetRow, payload: AlertPayload) {
  let error: string | null = null;
  try {
    await send(target, payload);
  } catch (err) {
    error = (err as Error).message || String(err);
  }
  return db.alertDelivery.create({
    data: { targetId: target.id, vmId: payload.vmId, vmName: payload.vmName, hostName: payload.hostName, health: payload.health, result: error ? "failed" : "sent", error },
    include: { target: { select: { name: true, kind: true } } },
  });
}

export type DeliveryRow = Awaited<ReturnType<typeof deliverAlert>>;

/** A delivery as a line of the host's event log (console events have negative ids). */
export function deliveryEvent(d: DeliveryRow, hostId: string): EventView {
  const to = `${d.target.name} (${d.target.kind === "webhook" ? "webhook" : "mail"})`;
  const what = `replication health of '${d.vmName}' is ${d.health}`;
  return {
    id: -d.id,
    hostId,
    agentEventId: 0,
    ts: d.at.toISOString(),
    severity: d.result === "failed" ? "error" : d.health === "Critical" ? "warning" : "info",
    kind: "console.alert",
    vmId: d.vmId,
    message: d.result === "failed" ? `Alert to ${to} failed (${what}): ${d.error}` : `Alert sent to ${to}: ${what}.`,
  };
}
