/**
 * Sessions: a random token in an httpOnly, SameSite=Strict cookie; the database keeps only
 * its SHA-256, so the table alone cannot be used to log in.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Db } from "../db/client.js";
import type { Role, SessionUser } from "./roles.js";

export const SESSION_COOKIE = "rm_session";

const digest = (token: string) => createHash("sha256").update(token).digest("hex");

export async function createSession(db: Db, userId: string, hours: number): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString("base64url");
  const expiresAt = new Date(Date.now() + hours * 3600_000);
  await db.session.create({ data: { id: digest(token), userId, expiresAt } });
  return { token, expiresAt };
}

export async function userOfSession(db: Db, token: string | undefined): Promise<{ user: SessionUser; sessionId: string } | null> {
  if (!token) return null;
  const id = digest(token);
  const session = await db.session.findUnique({ where: { id }, include: { user: true } });
  if (!session) return null;
  if (session.expiresAt.getTime() < Date.now()) {
    await db.session.deleteMany({ where: { id } });
    return null;
  }
  const { user } = session;
  return { user: { id: user.id, name: user.name, role: user.role as Role }, sessionId: id };
}

export async function endSession(db: Db, sessionId: string): Promise<void> {
  await db.session.deleteMany({ where: { id: sessionId } });
}

export function readCookie(header: string | undefined, name = SESSION_COOKIE): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

export function sessionCookie(token: string, expiresAt: Date, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - Date.now()) / 1000));
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? "; Secure" : ""}`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}
