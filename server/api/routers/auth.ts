import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { checkPassword, hashPassword } from "../../console/auth/password.js";
import { lockedFor, recordFailure, recordSuccess } from "../../console/auth/throttle.js";
import { clearedSessionCookie, createSession, endSession, sessionCookie } from "../../console/auth/sessions.js";
import { FieldError } from "../errors.js";
import { protectedProcedure, publicProcedure, router } from "../trpc.js";

export const UserName = z.string().trim().min(1, "enter a user name").max(64, "a user name has at most 64 characters");
export const NewPassword = z.string().min(10, "a password needs at least 10 characters").max(256, "a password has at most 256 characters");

export const authRouter = router({
  login: publicProcedure
    .input(z.object({ name: UserName, password: z.string().min(1, "enter your password").max(256) }))
    .mutation(async ({ ctx, input }) => {
      const wait = lockedFor(input.name);
      if (wait) throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: `too many failed sign-ins as ${input.name}; try again in ${wait} seconds` });
      const user = await ctx.db.user.findUnique({ where: { name: input.name } });
      if (!user || !(await checkPassword(user.passwordHash, input.password))) {
        recordFailure(input.name);
        throw new TRPCError({ code: "UNAUTHORIZED", message: "the user name or password is not correct" });
      }
      recordSuccess(input.name);
      const { token, expiresAt } = await createSession(ctx.db, user.id, ctx.sessionHours);
      ctx.setCookie(sessionCookie(token, expiresAt, ctx.secure));
      return { name: user.name, role: user.role };
    }),

  logout: protectedProcedure.mutation(async ({ ctx }) => {
    if (ctx.sessionId) await endSession(ctx.db, ctx.sessionId);
    ctx.setCookie(clearedSessionCookie());
    return { ok: true };
  }),

  /** The signed-in user, or null (the login page and the shell ask this). */
  me: publicProcedure.query(({ ctx }) => ctx.user),

  changePassword: protectedProcedure
    .input(z.object({ currentPassword: z.string().min(1, "enter your current password"), newPassword: NewPassword }))
    .mutation(async ({ ctx, input }) => {
      const user = await ctx.db.user.findUniqueOrThrow({ where: { id: ctx.user.id } });
      if (!(await checkPassword(user.passwordHash, input.currentPassword))) {
        throw new FieldError("BAD_REQUEST", "the current password is not correct", { currentPassword: ["the current password is not correct"] });
      }
      await ctx.db.user.update({ where: { id: user.id }, data: { passwordHash: await hashPassword(input.newPassword) } });
      return { ok: true };
    }),
});
