/** Recovery points of replica VMs (/api/v1/vms/:vmId/recovery-points): list, read, hash, export. */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { DiskReadQuery, ExportPointBody, VmId } from "../../shared/agent-api.js";
import type { ReplicaStore } from "../replication/replica-store.js";
import type { EventLog } from "../state/events.js";
import { exportView, hashView } from "../replication/recovery/export.js";
import type { PointView } from "../replication/recovery/recovery-history.js";
import { AgentError, badRequest } from "../errors.js";
import { parse } from "./http-common.js";

const PointParams = z.object({
  vmId: VmId,
  pointId: z.union([z.literal("latest"), z.string().uuid("pointId must be 'latest' or a point id from GET .../recovery-points")]),
});
const PointDiskParams = PointParams.extend({ disk: z.coerce.number().int().min(0).max(3, "disk must be 0-3") });

async function using<T>(opened: Promise<{ view: PointView }>, fn: (view: PointView) => Promise<T>): Promise<T> {
  const { view } = await opened;
  try {
    return await fn(view);
  } finally {
    await view.close();
  }
}

export function registerRecoveryApi(app: FastifyInstance, replicas: ReplicaStore, events: EventLog): void {
  const diskSize = (vmId: string, disk: number) => {
    const d = replicas.replicaOfVm(vmId).disks.find((x) => x.index === disk);
    if (!d) throw badRequest(`params.disk: this replica has no disk ${disk}`);
    return d.sizeBytes;
  };

  app.get("/api/v1/vms/:vmId/recovery-points", async (req) => replicas.recoveryPoints(parse(z.object({ vmId: VmId }), req.params, "params").vmId));

  app.get("/api/v1/vms/:vmId/recovery-points/:pointId/disks/:disk/hash", async (req) => {
    const { vmId, pointId, disk } = parse(PointDiskParams, req.params, "params");
    const sizeBytes = diskSize(vmId, disk);
    const opened = replicas.openView(vmId, pointId);
    const { point } = await opened;
    const sha256 = await using(opened, (view) => hashView(view, disk, sizeBytes));
    return { vmId, pointId: point.id, seq: point.seq, disk, sizeBytes, sha256 };
  });

  app.get("/api/v1/vms/:vmId/recovery-points/:pointId/disks/:disk/data", async (req, reply) => {
    const { vmId, pointId, disk } = parse(PointDiskParams, req.params, "params");
    const { offset, length } = parse(DiskReadQuery, req.query, "query");
    const size = diskSize(vmId, disk);
    if (offset + length > size) throw new AgentError(400, "VALIDATION", `query.length: offset ${offset} + length ${length} runs past the end of disk ${disk} (${size} bytes)`);
    const data = await using(replicas.openView(vmId, pointId), (view) => view.read(disk, offset, length));
    return reply.type("application/octet-stream").send(data);
  });

  app.post("/api/v1/vms/:vmId/recovery-points/:pointId/export", async (req) => {
    const { vmId, pointId } = parse(PointParams, req.params, "params");
    const { folder } = parse(ExportPointBody, req.body, "body");
    const opened = replicas.openView(vmId, pointId);
    const { rec, point } = await opened;
    const started = Date.now();
    return using(opened, async (view) => {
      const manifest = await exportView(view, { vmId, vmName: rec.vmName, point }, rec.disks, folder, (done, total) => {
        const seconds = (Date.now() - started) / 1000;
        const rate = done / Math.max(seconds, 0.001);
        events.emit({
          severity: "info",
          kind: "replica.export-progress",
          vmId,
          relationshipId: rec.id,
          message: `Exporting recovery point ${point.at ?? point.id} of '${rec.vmName}' to ${folder}: ${Math.round((100 * done) / total)}%.`,
          data: { done, total, bytesPerSecond: Math.round(rate), etaSeconds: Math.round((total - done) / Math.max(rate, 1)) },
        });
      });
      events.emit({ severity: "info", kind: "replica.exported", vmId, relationshipId: rec.id, message: `Recovery point ${point.at ?? point.id} of '${rec.vmName}' was exported to ${folder}.`, data: { folder } });
      return manifest;
    });
  });
}
