import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { hashPassword } from "../../console/auth/password.js";
import { ROLES } from "../../console/auth/roles.js";
import { FieldError } from "../errors.js";
import { adminProcedure, router } from "../trpc.js";
import { NewPassword, UserName } from "./auth.js";

const Role = z.enum(ROLES, { message: "role must be Administrator, Operator or Viewer" });
const userSelect = { id: true, name: true, role: true, createdAt: true } as const;

export const usersRouter = router({
  list: adminProcedure.query(({ ctx }) => ctx.db.user.findMany({ select: userSelect, orderBy: { name: "asc" } })),

  create: adminProcedure.input(z.object({ name: UserName, role: Role, password: NewPassword })).mutation(async ({ ctx, input }) => {
    if (await ctx.db.user.findUnique({ where: { name: input.name } })) {
      throw new FieldError("CONFLICT", `a user named ${input.name} exists already`, { name: ["this user name is taken"] });
    }
    return ctx.db.user.create({ data: { name: input.name, role: input.role, passwordHash: await hashPassword(input.password) }, select: userSelect });
  }),

  setRole: adminProcedure.input(z.object({ id: z.string().min(1), role: Role })).mutation(async ({ ctx, input }) => {
    const user = await ctx.db.user.findUnique({ where: { id: input.id } });
    if (!user) throw new TRPCError({ code: "NOT_FOUND", message: "no such user" });
    if (user.role === "Administrator" && input.role !== "Administrator" && (await ctx.db.user.count({ where: { role: "Administrator" } })) === 1) {
      throw new TRPCError({ code: "PRECONDITION_FAILED", message: "the last Administrator cannot lose the role" });
    }
    return ctx.db.user.update({ where: { id: input.id }, data: { role: input.role }, select: userSelect });
  }),

  remove: adminProcedure.input(z.object({ id: z.string().min(1) })).mutation(async ({ ctx, input }) => {
    if (input.id === ctx.user.id) throw new TRPCError({ code: "PRECONDITION_FAILED", message: "you cannot remove your own account" });
    const user = await ctx.db.user.findUnique({ where: { id: input.id }, select: userSelect });
    if (!user) throw new TRPCError({ code: "NOT_FOUND", message: "no such user" });
    await ctx.db.user.delete({ where: { id: input.id } });
    return user;
  }),
});
