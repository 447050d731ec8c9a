/** Naming what an audited action was about; the tRPC middleware and the plain HTTP routes share it. */
import type { Db } from "../console/db/client.js";

/** What a change was about, in names a person reads: the host's and the VM's names rather than ids. */
export async function targetOf(db: Db, input: unknown): Promise<string | null> {
  if (!input || typeof input !== "object") return null;
  const o = input as Record<string, unknown>;
  const str = (k: string) => (typeof o[k] === "string" ? (o[k] as string) : undefined);
  const parts: string[] = [];
  const hostId = str("hostId");
  const vmId = str("vmId");
  if (hostId) parts.push(`host=${(await db.host.findUnique({ where: { id: hostId }, select: { name: true } }))?.name ?? hostId}`);
  if (hostId && vmId) parts.push(`vm=${(await db.vm.findUnique({ where: { hostId_vmId: { hostId, vmId } }, select: { name: true } }))?.name ?? vmId}`);
  for (const k of ["id", "name", "address", "action"]) if (str(k)) parts.push(`${k}=${str(k)}`);
  return parts.length ? parts.join(" ") : null;
}
