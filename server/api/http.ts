/** tRPC over HTTP at /api/trpc, served by the console's own HTTP server. */
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import type { ConsoleServices } from "./context.js";
import { createHttpContext } from "./context.js";
import { appRouter } from "./root.js";

export const TRPC_PATH = "/api/trpc";

export function trpcHandler(services: ConsoleServices) {
  return createHTTPHandler({
    router: appRouter,
    basePath: `${TRPC_PATH}/`,
    createContext: ({ req, res }) => createHttpContext(services, req, res),
  });
}
