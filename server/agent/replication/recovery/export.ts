/** Reading a point-in-time view whole: its disks' SHA-256, or raw images in a folder. */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isZero, writeFully } from "../../util/files.js";
import { badRequest, conflict } from "../../errors.js";
import type { PointView } from "./recovery-history.js";

const CHUNK = 4 * 1024 * 1024;

export interface ExportManifest {
  format: "replica-manager-export/1";
  vmId: string;
  vmName: string;
  point: { id: string; kind: string; at: string | null; seq: number };
  /** External media: the relationship the initial copy belongs to. */
  relationshipId?: string;
  disks: { index: number; file: string; sizeBytes: number; sha256: string }[];
  createdAt: string;
}

/** Anything that reads a disk's bytes as of one point: a recovery point's view, a frozen cycle. */
export type DiskSource = Pick<PointView, "read">;

export async function hashView(view: DiskSource, disk: number, sizeBytes: number): Promise<string> {
  const h = createHash("sha256");
  for (let off = 0; off < sizeBytes; off += CHUNK) h.update(await view.read(disk, off, Math.min(CHUNK, sizeBytes - off)));
  return h.digest("hex");
}

/**
 * Writes each disk of the view as a sparse raw image into `folder` (new or empty) with a
 * manifest of their hashes. `progress` hears the bytes done so far out of the total.
 */
export async function exportView(
  view: DiskSource,
  about: Omit<ExportManifest, "format" | "disks" | "createdAt">,
  disks: { index: number; sizeBytes: number }[],
  folder: string,
  progress: (done: number, total: number) => void,
): Promise<ExportManifest> {
  if (!folder.startsWith("/")) throw badRequest("folder must be an absolute path");
  await mkdir(folder, { recursive: true }).catch((err: Error) => {
    throw badRequest(`folder ${folder} cannot be created: ${err.message}`);
  });
  if ((await readdir(folder)).length > 0) throw conflict(`folder ${folder} is not empty; choose a new or empty folder so that nothing there is overwritten`);
  const total = disks.reduce((n, d) => n + d.sizeBytes, 0);
  let done = 0;
  let reported = 0;
  const manifest: ExportManifest = { format: "replica-manager-export/1", ...about, disks: [], createdAt: new Date().toISOString() };
  for (const d of disks) {
    const file = `disk${d.index}.raw`;
    const fh = await open(join(folder, file), "wx");
    const h = createHash("sha256");
    try {
      await fh.truncate(d.sizeBytes);
      for (let off = 0; off < d.sizeBytes; off += CHUNK) {
        const buf = await view.read(d.index, off, Math.min(CHUNK, d.sizeBytes - off));
        h.update(buf);
        if (!isZero(buf)) await writeFully(fh, buf, off);
        done += buf.length;
        if (done - reported >= total / 20 || done === total) {
          reported = done;
          progress(done, total);
        }
      }
      await fh.datasync();
    } finally {
      await fh.close();
    }
    manifest.disks.push({ index: d.index, file, sizeBytes: d.sizeBytes, sha256: h.digest("hex") });
  }
  await writeFile(join(folder, "manifest.json"), JSON.stringify(manifest, null, 2));
  return manifest;
}
