import { z } from "zod";
import { PowerAction, VmName } from "../../shared/agent-api.js";
import { WorkloadPattern } from "../../shared/replication.js";
import { FieldError } from "../errors.js";
import { adminProcedure, operatorProcedure, protectedProcedure, router } from "../trpc.js";

const HostRef = z.object({ hostId: z.string().min(1, "hostId is required") });
const VmRef = HostRef.extend({ vmId: z.string().uuid("vmId must be a VM id as listed") });

const Workload = z.object({ pattern: WorkloadPattern, rateMiBps: z.number().min(0, "0 to 2048 MB/s").max(2048, "0 to 2048 MB/s") });

export const NewVmInput = HostRef.extend({
  name: VmName,
  cpus: z.number().int().min(1, "1 to 64 virtual processors").max(64, "1 to 64 virtual processors"),
  memoryMiB: z.number().int().min(32, "startup memory is 32 MB to 1 TB").max(1048576, "startup memory is 32 MB to 1 TB"),
  disks: z
    .array(z.object({ sizeGiB: z.number().int().min(1, "a disk is 1 to 4096 GB").max(4096, "a disk is 1 to 4096 GB") }))
    .min(1, "a VM needs 1 to 4 disks")
    .max(4, "a VM needs 1 to 4 disks"),
  workload: Workload,
});

export const vmsRouter = router({
  /** One host's VMs, or without hostId every host's (the Hyper-V Manager node). */
  list: protectedProcedure.input(z.object({ hostId: z.string().min(1, "hostId is required").optional() })).query(async ({ ctx, input }) => {
    if (input.hostId) await ctx.fleet.hostOrThrow(input.hostId);
    return (await ctx.db.vm.findMany({ where: input.hostId ? { hostId: input.hostId } : {}, orderBy: { name: "asc" } })).map((row) => ctx.fleet.view(row));
  }),

  get: protectedProcedure.input(VmRef).query(async ({ ctx, input }) => {
    const row = await ctx.db.vm.findUnique({ where: { hostId_vmId: input } });
    if (!row) throw new FieldError("NOT_FOUND", "no such virtual machine on this host", { vmId: ["no such virtual machine on this host"] });
    return ctx.fleet.view(row);
  }),

  create: adminProcedure.input(NewVmInput).mutation(async ({ ctx, input }) => {
    const vm = await ctx.fleet.withVm(input.hostId, (agent) =>
      agent.createVm({ name: input.name, cpus: input.cpus, memoryMiB: input.memoryMiB, disks: input.disks.map((d) => ({ sizeBytes: d.sizeGiB * 1024 ** 3 })), workload: input.workload }),
    );
    return { hostId: input.hostId, vmId: vm.id, name: vm.name };
  }),

  power: operatorProcedure.input(VmRef.extend({ action: PowerAction })).mutation(async ({ ctx, input }) => {
    const vm = await ctx.fleet.withVm(input.hostId, (agent) => agent.power(input.vmId, input.action));
    return { hostId: input.hostId, vmId: vm.id, state: vm.state };
  }),

  /** Settings...: the lab guest's workload (what it writes, how fast). */
  setWorkload: adminProcedure.input(VmRef.extend({ workload: Workload })).mutation(async ({ ctx, input }) => {
    const vm = await ctx.fleet.withVm(input.hostId, (agent) => agent.setWorkload(input.vmId, input.workload));
    return { hostId: input.hostId, vmId: vm.id, workload: vm.workload };
  }),

  delete: adminProcedure.input(VmRef).mutation(async ({ ctx, input }) => {
    const link = ctx.fleet.link(input.hostId);
    await link.client.deleteVm(input.vmId);
    await link.removeVm(input.vmId);
    return { ok: true };
  }),
});
