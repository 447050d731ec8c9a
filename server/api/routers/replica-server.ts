import { z } from "zod";
import { ReplicaServerSettings } from "../../shared/agent-api.js";
import { toTrpcError } from "../errors.js";
import { adminProcedure, protectedProcedure, router } from "../trpc.js";

const HostRef = z.object({ hostId: z.string().min(1, "hostId is required") });

/** Hyper-V Settings > Replication Configuration: a host's Replica server settings. */
export const replicaServerRouter = router({
  get: protectedProcedure.input(HostRef).query(({ ctx, input }) => ctx.fleet.link(input.hostId).client.replicaServer()),

  update: adminProcedure.input(HostRef.extend({ settings: ReplicaServerSettings })).mutation(async ({ ctx, input }) => {
    try {
      return await ctx.fleet.link(input.hostId).client.setReplicaServer(input.settings);
    } catch (err) {
      // The agent names fields as body.x; here they live under settings.x.
      throw toTrpcError(err, "settings.");
    }
  }),
});
