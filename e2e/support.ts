/**
 * Browser-test support: the console as its own process (as `npm run console` runs it) on a
 * free port with a new SQLite database, and Debian's Chromium driven by playwright-core.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { ROOT } from "../server/agent/agent-process.js";
import { freePort, MGMT_TOKEN, startPair, type Pair } from "../server/agent/testing/harness.js";

const TSX = join(ROOT, "node_modules/tsx/dist/esm/index.mjs");
export const SHOTS = join(ROOT, "test-results", "e2e");

export interface ConsoleProcess {
  url: string;
  port: number;
  admin: { name: string; password: string };
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts the console on a new port, or again on the port of `again` with the same database
 * (after `stop()`; the first start's `admin` is passed back in: the password is printed only
 * once). `env` adds variables.
 */
export async function startConsoleProcess(dir: string, again: Pick<ConsoleProcess, "port" | "admin"> | null = null, env: Record<string, string> = {}): Promise<ConsoleProcess> {
  const port = again?.port ?? (await freePort());
  const child = spawn(process.execPath, ["--import", TSX, join(ROOT, "server/console/main.ts")], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: "", DATABASE_URL: `file:${join(dir, "console.db")}`, PORT: String(port), HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const ready = new Promise<{ name: string; password: string }>((ok, fail) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /user name: (\S+)\s+password:\s+(\S+)/.exec(out);
      if (!out.includes("Replica Manager console:")) return;
      if (m) ok({ name: m[1]!, password: m[2]! });
      else if (again) ok(again.admin);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => fail(new Error(`the console exited with ${code}:\n${out.slice(-4000)}`)));
  });
  const admin = await ready;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    admin,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A fresh profile per launch (playwright makes a temporary one). */
export async function launchChromium(): Promise<Browser> {
  await mkdir(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export async function signIn(browser: Browser, url: string, name: string, password: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 800 }, baseURL: url });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForURL(/\/login$/);
  await page.fill("[data-testid=login-name]", name);
  await page.fill("[data-testid=login-password]", password);
  await page.click("[data-testid=login-submit]");
  await page.waitForSelector("[data-testid=host-tree]");
  return page;
}

export const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`) });

/** Calls a tRPC mutation from inside the page, with its session cookie (as the UI would). */
export async function trpcMutation(page: Page, path: string, input: unknown): Promise<{ status: number; body: unknown }> {
  const res = await page.request.post(`/api/trpc/${path}`, { data: { json: input } });
  return { status: res.status(), body: await res.json() };
}

/** Connect to Server... with the agent's address and management token; waits until it is connected. */
export async function connectServer(page: Page, url: string, name: string): Promise<void> {
  await page.click("[data-testid=action-connect-server]");
  await page.fill("[data-testid=connect-address]", url);
  await page.fill("[data-testid=connect-token]", MGMT_TOKEN);
  await page.click("[data-testid=connect-ok]");
  await page.waitForSelector(`[data-testid="host-${name}"][data-status=connected]`, { timeout: 10_000 });
}

export interface ConsoleLab {
  pair: Pair;
  consoleProc: ConsoleProcess;
  browser: Browser;
}

/** What every browser test starts from: two agents, the console as its own process, Chromium. */
export async function startConsoleLab(pairOptions?: Parameters<typeof startPair>[0]): Promise<ConsoleLab> {
  const lab: Partial<ConsoleLab> = { pair: await startPair(pairOptions) };
  try {
    lab.consoleProc = await startConsoleProcess(lab.pair!.dir);
    lab.browser = await launchChromium();
    return lab as ConsoleLab;
  } catch (err) {
    await stopConsoleLab(lab);
    throw err;
  }
}

/** Stops what startConsoleLab started, browser first, agents last (a part may be missing). */
export async function stopConsoleLab(lab: Partial<ConsoleLab>): Promise<void> {
  await lab.browser?.close();
  await lab.consoleProc?.stop();
  await lab.pair?.cleanup();
}

/** Enrolls agents in the console through its API, by address and management token. */
export async function addHosts(page: Page, agents: { url: string }[]): Promise<string[]> {
  const ids: string[] = [];
  for (const agent of agents) {
    const r = await trpcMutation(page, "hosts.add", { auth: "token", address: agent.url, token: MGMT_TOKEN });
    if (r.status !== 200) throw new Error(`hosts.add ${agent.url} answered ${r.status}: ${JSON.stringify(r.body)}`);
    ids.push((r.body as { result: { data: { json: { id: string } } } }).result.data.json.id);
  }
  return ids;
}
