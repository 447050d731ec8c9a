/**
 * Read-only links to the wall dashboard: a random token in the URL (/dashboard?key=…), of which
 * the database keeps only the SHA-256, as for sessions. A link opens the dashboard and its live
 * feed, nothing else; an Administrator can revoke it at any time.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Db } from "../db/client.js";

const digest = (token: string) => createHash("sha256").update(token).digest("hex");

export async function createDashboardLink(db: Db, name: string, createdBy: string): Promise<{ id: string; token: string }> {
  const token = randomBytes(24).toString("base64url");
  const id = digest(token);
  await db.dashboardLink.create({ data: { id, name, createdBy } });
  return { id, token };
}

/** The link's id when the key is a link that was not revoked, else null. */
export async function dashboardLinkOf(db: Db, key: string | null | undefined): Promise<string | null> {
  if (!key || key.length > 200) return null;
  const link = await db.dashboardLink.findUnique({ where: { id: digest(key) }, select: { id: true, revokedAt: true } });
  return link && !link.revokedAt ? link.id : null;
}

/** The `key` query parameter of a request URL, if any. */
export function dashboardKeyOf(url: string): string | null {
  return new URL(url, "http://x").searchParams.get("key");
}
