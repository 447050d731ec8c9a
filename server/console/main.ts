/**
 * The console on its own: `npm run console` (agents are enrolled from the UI).
 * `npm start` runs it together with two lab hosts (server/demo/main.ts).
 */
import { readEnv } from "./env.js";
import { startConsole } from "./server.js";
import { printAdmin } from "./print.js";

const env = readEnv();
const running = await startConsole({ env, dev: process.argv.includes("--dev") });
for (const m of running.appliedMigrations) console.log(`database: applied migration ${m}`);
console.log(`Replica Manager console: ${running.url}`);
printAdmin(running.firstRunAdmin);
const stop = async () => {
  await running.close();
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
