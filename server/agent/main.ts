/**
 * npm run agent -- --config agent.json
 * Exit codes: 0 clean stop, 1 failed to start or to shut down cleanly, 2 bad configuration.
 */
import { parseArgs } from "node:util";
import { Agent } from "./agent.js";
import { ConfigError, loadConfig } from "./config.js";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } } });
  if (values.help || !values.config) {
    console.log("usage: npm run agent -- --config <agent.json>   (see docs/agent.md for the file's keys)");
    process.exit(values.help ? 0 : 2);
  }
  let agent: Agent;
  try {
    agent = new Agent(loadConfig(values.config));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    agent.log.info({ signal }, "stopping");
    try {
      await agent.stop();
      process.exit(0);
    } catch (err) {
      agent.log.error({ err }, "shutdown failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("unhandledRejection", (err) => agent.log.error({ err }, "unhandled rejection"));
  try {
    const { managementUrl } = await agent.start();
    agent.log.info({ managementUrl, ready: true }, "agent ready");
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    agent.log.fatal({ err }, `agent failed to start: ${(err as Error).message}`);
    process.exit(1);
  }
}

void main();
