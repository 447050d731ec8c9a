import { z } from "zod";
import { adminProcedure, protectedProcedure, router } from "../trpc.js";

const HostId = z.object({ id: z.string().min(1, "hostId is required") });
const Address = z
  .string()
  .trim()
  .url("address must be a URL such as https://hv01.example.com:9440")
  .refine((u) => /^https?:\/\//.test(u), "address must start with http:// or https://");

export const hostsRouter = router({
  list: protectedProcedure.query(({ ctx }) => ctx.fleet.hosts()),

  /** Connect to Server...: enrol an agent by its management address and token. */
  add: adminProcedure
    .input(
      z.discriminatedUnion("auth", [
        z.object({ auth: z.literal("token"), address: Address, token: z.string().trim().min(16, "the management token has at least 16 characters").max(512) }),
        z.object({ auth: z.literal("certificate"), address: Address }),
      ]),
    )
    .mutation(({ ctx, input }) => ctx.fleet.addHost(input)),

  remove: adminProcedure.input(HostId).mutation(({ ctx, input }) => ctx.fleet.removeHost(input.id)),

  /** Re-reads the host's VMs from its agent. */
  refresh: protectedProcedure.input(HostId).mutation(async ({ ctx, input }) => {
    await ctx.fleet.link(input.id).resync();
    return { ok: true };
  }),
});
