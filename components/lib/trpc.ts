import { createTRPCContext } from "@trpc/tanstack-react-query";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/api/root";

export const { TRPCProvider, useTRPC } = createTRPCContext<AppRouter>();

export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type Vm = RouterOutputs["vms"]["list"][number];
export type Host = RouterOutputs["hosts"]["list"][number];
export type Job = RouterOutputs["jobs"]["list"][number];
