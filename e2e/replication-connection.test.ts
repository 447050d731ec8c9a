/**
 * In Chromium against two real agents: the wizard's Connection Parameters page tests the
 * connection from the primary on Next (a wrong port gets its message beside the port), Test
 * Replication Connection... lists the checks (passing, then failing when the Replica server is
 * down), and Start Replication... schedules the initial copy at a date and time, refuses a bad
 * time beside the field, cancels the schedule, and starts it now.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, type Pair } from "../server/agent/testing/harness.js";
import { addHosts, shot, signIn, type ConsoleProcess, startConsoleLab, stopConsoleLab } from "./support.js";

const MiB = 1024 ** 2;
const HOUR = 3600_000;
let pair: Pair;
let consoleProc: ConsoleProcess;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  ({ pair, consoleProc, browser } = await startConsoleLab());
  page = await signIn(browser, consoleProc.url, consoleProc.admin.name, consoleProc.admin.password);
  await addHosts(page, [pair.primary, pair.replica]);
}, 300_000);

afterAll(async () => {
  await stopConsoleLab({ pair, consoleProc, browser });
});

const heading = () => page.locator("[data-testid=replication-wizard] h2").textContent();
const next = async (expected: string) => {
  await page.click("[data-testid=wizard-next]");
  await expect.poll(heading, { timeout: 15_000 }).toBe(expected);
};
const message = (field: string) => page.locator(`[data-testid=error-${field}]`).textContent({ timeout: 15_000 });
/** A datetime-local value in the browser's (and this process's) time zone. */
const local = (ms: number) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

async function newVm(name: string): Promise<string> {
  const vm = await pair.primary.ok<{ id: string }>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: 16 * MiB }] });
  await pair.primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=${MiB}`, Buffer.alloc(128 * 1024, 3));
  await page.click('[data-testid="host-hv01.lab.test"]');
  await page.locator(`[data-testid="vm-row-${name}"]`).waitFor({ timeout: 10_000 });
  return vm.id;
}

async function submenu(name: string, kind: string): Promise<void> {
  await page.click('[data-testid="host-hv01.lab.test"]');
  await page.locator(`[data-testid="vm-row-${name}"]`).click();
  await page.click("[data-testid=action-replication]");
  await page.click(`[data-testid=action-replication-${kind}]`);
}

const relationship = async (vmId: string) => (await pair.primary.ok<{ state: string; initialStartAt?: string | null }[]>("GET", `/api/v1/vms/${vmId}/replication`))[0];

describe("Test Replication Connection and Start Replication at a time", () => {
  it("the wizard tests the connection on leaving Connection Parameters; a wrong port is named beside it", async () => {
    const vmId = await newVm("app-01");
    await submenu("app-01", "enable");
    await next("Specify Replica Server");
    await page.fill("[data-testid=wizard-replica-server]", "hv02.lab.test");
    await next("Specify Connection Parameters");
    await page.fill("[data-testid=wizard-port]", String(pair.replica.ports.http));
    await page.click("[data-testid=wizard-next]");
    await expect(message("replicaPort")).resolves.toMatch(/^Port \d+ of hv02\.lab\.test does not speak TLS \(it may be the HTTP port\): use the Replica server's HTTPS port\.$/);
    await expect(heading()).resolves.toBe("Specify Connection Parameters");
    await shot(page, "conn-01-wizard-wrong-port");

    await page.fill("[data-testid=wizard-port]", String(pair.replica.ports.https));
    await next("Choose Replication VHDs");
    await page.click("[data-testid=wizard-previous]");
    await expect(page.locator("[data-testid=wizard-connection-ok]").textContent()).resolves.toMatch(/Connection tested: hv02\.lab\.test accepts hv01\.lab\.test on port \d+ \(HTTPS\)/);
    await shot(page, "conn-02-wizard-connection-tested");
    for (const p of ["Choose Replication VHDs", "Configure Replication Frequency", "Configure Additional Recovery Points", "Choose Initial Replication Method"]) await next(p);
    await page.click("[data-testid=wizard-start-yes]");
    await page.fill("[data-testid=wizard-start-at]", local(Date.now() + 2 * HOUR));
    await next("Summary");
    await page.click("[data-testid=wizard-finish]");
    await page.waitForSelector("[data-testid=wizard-completed]", { timeout: 60_000 });
    await page.click("[data-testid=wizard-close]");
    expect((await relationship(vmId))?.state).toBe("Ready for initial replication");
  });

  it("Test Replication Connection... lists every check, and the failure with its fix when the Replica server is down", async () => {
    await submenu("app-01", "test-connection");
    await expect(page.locator("[data-testid=test-connection-result]").textContent({ timeout: 15_000 })).resolves.toMatch(/The connection to hv02\.lab\.test works: it accepts replication from this server \(trust group DEFAULT\)/);
    for (const check of ["credentials", "connection", "certificate", "authentication", "authorization"]) {
      await expect(page.locator(`[data-testid=test-connection-check-${check}]`).textContent()).resolves.toContain("Passed");
    }
    await shot(page, "conn-03-test-connection-passed");

    await pair.replica.kill();
    try {
      await page.click("[data-testid=test-connection-again]");
      await expect.poll(() => page.locator("[data-testid=test-connection-result]").textContent(), { timeout: 15_000 }).toMatch(/Nothing listens on port \d+ of hv02\.lab\.test: use the HTTPS port of its Replication Configuration/);
      await expect(page.locator("[data-testid=test-connection-check-connection]").textContent()).resolves.toContain("Failed");
      await expect(page.locator("[data-testid=test-connection-check-authorization]").textContent()).resolves.toContain("Not checked");
      await shot(page, "conn-04-test-connection-failed");
    } finally {
      await pair.replica.start();
    }
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=test-connection-dialog]", { state: "detached" });
  });

  it("Start Replication... reschedules the initial copy, refuses a bad time beside the field, cancels, then starts now", async () => {
    const vmId = (await pair.primary.ok<{ id: string; name: string }[]>("GET", "/api/v1/vms")).find((v) => v.name === "app-01")!.id;
    await submenu("app-01", "start-initial");
    await expect.poll(() => page.locator("[data-testid=start-schedule-state]").textContent()).toContain("It is scheduled to start on");
    await page.click("[data-testid=start-later]");
    await page.fill("[data-testid=start-at]", local(Date.now() + 9 * 24 * HOUR));
    await page.click("[data-testid=dialog-ok]");
    await expect(message("initialStartAt")).resolves.toBe("Choose a time at most 7 days ahead.");
    await shot(page, "conn-05-start-replication-bad-time");
    const at = Date.now() + 5 * HOUR;
    await page.fill("[data-testid=start-at]", local(at));
    await shot(page, "conn-06-start-replication-later");
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=start-replication-dialog]", { state: "detached" });
    const scheduled = await relationship(vmId);
    expect(scheduled?.state).toBe("Ready for initial replication");
    expect(Math.abs(Date.parse(scheduled!.initialStartAt!) - at)).toBeLessThan(60_000);

    await submenu("app-01", "start-initial");
    await page.click("[data-testid=start-unschedule]");
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=start-replication-dialog]", { state: "detached" });
    expect((await relationship(vmId))?.initialStartAt ?? null).toBeNull();

    await submenu("app-01", "start-initial");
    await expect.poll(() => page.locator("[data-testid=start-schedule-state]").textContent()).toContain("It is not scheduled");
    await shot(page, "conn-07-start-replication-not-scheduled");
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=start-replication-dialog]", { state: "detached" });
    await expect.poll(async () => (await relationship(vmId))?.state, { timeout: 30_000 }).toBe("Replicating");
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });
});
