/** Import Initial Replica: reading an export's manifest and copying its images, checked. */
import { createHash } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { ReplicaRecord } from "../../state/relationships.js";
import { AgentError, badRequest } from "../../errors.js";
import { isZero, readFully, writeFully } from "../../util/files.js";

const CHUNK = 4 * 1024 * 1024;

const Manifest = z.object({
  format: z.literal("replica-manager-export/1"),
  vmId: z.string(),
  relationshipId: z.string().optional(),
  point: z.object({ seq: z.number().int().min(0) }).loose(),
  disks: z.array(z.object({ index: z.number().int().min(0).max(3), file: z.string().regex(/^disk[0-3]\.raw$/), sizeBytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) })).min(1),
  createdAt: z.string(),
});
export type ImportManifest = z.infer<typeof Manifest>;

/** The export's manifest, checked against the placeholder it is imported into. */
export async function readManifest(folder: string, rec: ReplicaRecord): Promise<ImportManifest> {
  let raw: string;
  try {
    raw = await readFile(join(folder, "manifest.json"), "utf8");
  } catch (err) {
    throw badRequest(`body.folder: no readable manifest.json in ${folder} (${(err as Error).message}); give the folder the primary exported the initial copy to`);
  }
  let m: ImportManifest;
  try {
    m = Manifest.parse(JSON.parse(raw));
  } catch (err) {
    throw badRequest(`body.folder: ${folder}/manifest.json is not an export manifest: ${err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") : "not JSON"}`);
  }
  if (m.vmId !== rec.vmId || (m.relationshipId && m.relationshipId !== rec.id)) {
    throw new AgentError(409, "CONFLICT", `the export in ${folder} is of virtual machine ${m.vmId}${m.relationshipId ? ` (relationship ${m.relationshipId})` : ""}, not of '${rec.vmName}' (${rec.vmId}, relationship ${rec.id})`);
  }
  for (const d of rec.disks) {
    const e = m.disks.find((x) => x.index === d.index);
    if (!e || e.sizeBytes !== d.sizeBytes) throw new AgentError(409, "CONFLICT", `the export in ${folder} has ${e ? `disk ${d.index} of ${e.sizeBytes} bytes, not ${d.sizeBytes}` : `no disk ${d.index}`}`);
  }
  return m;
}

/** Copies a raw image onto a (freshly emptied) disk, sparsely; answers its SHA-256. */
export async function copyImage(src: string, dst: string, sizeBytes: number, progress: (bytes: number) => void): Promise<string> {
  const h = createHash("sha256");
  const from = await open(src, "r").catch((err: Error) => {
    throw badRequest(`body.folder: ${src} cannot be read: ${err.message}`);
  });
  const to = await open(dst, "r+");
  try {
    if ((await from.stat()).size !== sizeBytes) throw new AgentError(422, "IMPORT_MISMATCH", `${src} is ${(await from.stat()).size} bytes, not ${sizeBytes}: the media is damaged or incomplete`);
    for (let off = 0; off < sizeBytes; off += CHUNK) {
      const buf = await readFully(from, Buffer.allocUnsafe(Math.min(CHUNK, sizeBytes - off)), off);
      h.update(buf);
      if (!isZero(buf)) await writeFully(to, buf, off);
      progress(buf.length);
    }
    await to.datasync();
  } finally {
    await from.close();
    await to.close();
  }
  return h.digest("hex");
}
