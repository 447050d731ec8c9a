/**
 * HTTP mode's integrity: without TLS, the stream and its acknowledgement are signed with
 * the shared token, bound to the relationship, the cycle, the cycle it builds on and the
 * request's one-time nonce. A body moved to another VM, another cycle or another attempt,
 * or an acknowledgement the replica did not send, fails verification.
 */
import { createHmac, timingSafeEqual, type Hmac } from "node:crypto";
import type { EndPayload } from "./frames.js";

export interface StreamBinding {
  relationshipId: string;
  seq: number;
  base: number;
  nonce: string;
}

export interface StreamAuth {
  token: string;
  nonce: string;
}

export function streamMac(token: string, b: StreamBinding): Hmac {
  return createHmac("sha256", token).update(`replica-manager stream v1\n${b.relationshipId}\n${b.seq}\n${b.base}\n${b.nonce}\n`);
}

export function ackMac(token: string, b: StreamBinding, streamMacHex: string): string {
  return createHmac("sha256", token).update(`replica-manager ack v1\n${b.relationshipId}\n${b.seq}\n${b.base}\n${b.nonce}\n${streamMacHex}`).digest("hex");
}

/** Whether a hex MAC from the peer equals the one expected (in constant time). */
export function macMatches(expectedHex: string, gotHex: string | null | undefined): boolean {
  const want = Buffer.from(expectedHex, "hex");
  const got = Buffer.from(gotHex ?? "", "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The end frame's fields other than the MAC, in a fixed order: signed after the frames. */
export function endMacInput(end: Omit<EndPayload, "mac">): string {
  const m = end.marks;
  return JSON.stringify([end.frames, end.dataBytes, end.relationshipId, end.base, m.point?.kind ?? null, m.point?.at ?? null, m.recoveryHistory, m.frequencySeconds, m.resync ? (m.resync.final ? "resync-final" : "resync") : null, m.prepared, m.returnPath ? `${m.returnPath.authMode}:${m.returnPath.port}` : null]);
}
