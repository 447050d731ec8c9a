/**
 * The wall dashboard and View Replication Health in Chromium against two real agents
 * replicating a running VM (issue 6, test 4): a read-only link opens the wall without signing
 * in and reaches nothing else; a health change shows within a second; the wall says it is stale
 * when the console goes away. Also the health dialog (values, reset, CSV, charts), Alerts and
 * Dashboard Links. Screenshots go to test-results/e2e.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor, type Pair } from "../server/agent/testing/harness.js";
import { addHosts, shot, signIn, startConsoleProcess, trpcMutation, type ConsoleProcess, startConsoleLab, stopConsoleLab } from "./support.js";

let pair: Pair;
let consoleProc: ConsoleProcess;
let browser: Browser;
let admin: Page;
let wall: Page;
let wallUrl: string;
let vmId: string;
let hook: Server;
const hooked: unknown[] = [];

const json = <T>(r: { body: unknown }) => (r.body as { result: { data: { json: T } } }).result.data.json;

beforeAll(async () => {
  ({ pair, consoleProc, browser } = await startConsoleLab());
  hook = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => (hooked.push(JSON.parse(body)), res.writeHead(204).end()));
  });
  await new Promise<void>((ok) => hook.listen(0, "127.0.0.1", ok));
  admin = await signIn(browser, consoleProc.url, consoleProc.admin.name, consoleProc.admin.password);
  const [hv01] = await addHosts(admin, [pair.primary, pair.replica]);
  vmId = json<{ vmId: string }>(await trpcMutation(admin, "vms.create", { hostId: hv01, name: "sql-01", cpus: 2, memoryMiB: 1024, disks: [{ sizeGiB: 1 }], workload: { pattern: "random-4k", rateMiBps: 1 } })).vmId;
  await trpcMutation(admin, "vms.power", { hostId: hv01, vmId, action: "start" });
  await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, authMode: "https", frequencySeconds: 5 });
  await waitFor("replicating", async () => (await pair.replica.ok<{ replication: { state: string; lastAppliedSeq: number }[] }>("GET", `/api/v1/vms/${vmId}`)).replication[0]?.lastAppliedSeq! >= 2, 60_000);
}, 300_000);

afterAll(async () => {
  hook?.close();
  await stopConsoleLab({ pair, consoleProc, browser });
});

async function openFileMenu(page: Page, item: string): Promise<void> {
  await page.click("[data-testid=menubar-file]");
  await page.click(`[data-testid=menu-file-${item}]`);
}

describe("View Replication Health", () => {
  it("shows the statistics and charts, resets them, saves them as CSV and shows the VM's events", async () => {
    await admin.click('[data-testid="host-hv01.lab.test"]');
    await admin.locator('[data-testid="vm-row-sql-01"]').click();
    await admin.click("[data-testid=action-replication]");
    await admin.click("[data-testid=action-replication-health]");
    const dialog = admin.locator("[data-testid=replication-health]");
    await dialog.locator("[data-testid=health-body]").waitFor();
    await expect(dialog.locator("[data-testid=health-replication-type]").textContent()).resolves.toBe("Primary");
    await expect(dialog.locator("[data-testid=health-replication-state]").textContent()).resolves.toBe("Replicating");
    await expect(dialog.locator("[data-testid=health-current-replica-server]").textContent()).resolves.toBe("hv02.lab.test");
    await expect(dialog.locator("[data-testid=health-replication-health] [data-health]").getAttribute("data-health")).resolves.toBe("Normal");
    await expect(dialog.locator("[data-testid=health-errors-encountered]").textContent()).resolves.toBe("0");
    await dialog.locator("[data-testid=health-chart-size] .recharts-bar-rectangle").first().waitFor();
    await dialog.locator("[data-testid=health-chart-latency] .recharts-line-curve").waitFor();
    const cyclesBefore = Number.parseInt((await dialog.locator("[data-testid=health-successful-replication-cycles]").textContent())!, 10);
    expect(cyclesBefore).toBeGreaterThanOrEqual(2);
    await shot(admin, "dashboard-01-replication-health");

    const [download] = await Promise.all([admin.waitForEvent("download"), dialog.locator("[data-testid=health-save-as]").click()]);
    expect(download.suggestedFilename()).toBe("sql-01-replication-statistics.csv");
    const csv = await readFile((await download.path())!, "utf8");
    expect(csv.split("\n")[0]).toContain("successfulCycles");
    expect(csv.split("\n")[1]).toContain("sql-01");

    await dialog.locator("[data-testid=health-reset]").click();
    await waitFor("statistics reset", async () => Number.parseInt((await dialog.locator("[data-testid=health-successful-replication-cycles]").textContent())!, 10) < cyclesBefore, 5000);

    await dialog.locator("[data-testid=health-view-events]").click();
    await admin.waitForSelector("[data-testid=replication-health]", { state: "detached" });
    await expect(admin.locator("[data-testid=events-only-vm]").isChecked()).resolves.toBe(true);
    await admin.locator("[data-testid=event-row]", { hasText: "statistics of 'sql-01' were reset" }).first().waitFor({ timeout: 5000 });
    await shot(admin, "dashboard-02-view-events");
  });

  it("shows the replica side's test failover status", async () => {
    await admin.click('[data-testid="host-hv02.lab.test"]');
    await admin.locator('[data-testid="vm-row-sql-01"]').click({ button: "right" });
    await admin.click("[data-testid=menu-replication]");
    await admin.click("[data-testid=menu-replication-health]");
    const dialog = admin.locator("[data-testid=replication-health]");
    await dialog.locator("[data-testid=health-body]").waitFor();
    await expect(dialog.locator("[data-testid=health-replication-type]").textContent()).resolves.toBe("Replica");
    await expect(dialog.locator("[data-testid=health-test-failover-status]").textContent()).resolves.toBe("Not running");
    await expect(dialog.locator("[data-testid=health-last-test-failover]").textContent()).resolves.toBe("Never");
    expect(await dialog.locator("[data-testid=health-size-of-data-yet-to-be-replicated]").count()).toBe(0);
    await shot(admin, "dashboard-02b-replica-health");
    await dialog.locator("[data-testid=health-close]").click();
  });
});

describe("alerts and dashboard links", () => {
  it("adds a webhook (bad URL refused beside the field) and sends a test alert", async () => {
    await openFileMenu(admin, "alerts");
    const dialog = admin.locator("[data-testid=alerts-dialog]");
    await dialog.locator("[data-testid=alert-name]").fill("Ops webhook");
    await dialog.locator("[data-testid=alert-address]").fill("hooks.example.com");
    await dialog.locator("[data-testid=alert-add]").click();
    await expect(dialog.locator("[data-testid=error-alert-address]").textContent()).resolves.toContain("must be a URL");
    await dialog.locator("[data-testid=alert-address]").fill(`http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`);
    await dialog.locator("[data-testid=alert-add]").click();
    await dialog.locator('[data-testid=alert-target][data-name="Ops webhook"]').waitFor();
    await dialog.locator("[data-testid=alert-test]").click();
    await expect(dialog.locator("[data-testid=alert-test-result]").textContent()).resolves.toBe("The test alert was sent.");
    expect(hooked).toEqual([expect.objectContaining({ test: true, vmName: "Test alert" })]);
    await dialog.locator("[data-testid=alert-delivery][data-result=sent]").waitFor();
    await shot(admin, "dashboard-03-alerts");
    await admin.keyboard.press("Escape");
  });

  it("creates a read-only dashboard link (a name is required)", async () => {
    await openFileMenu(admin, "dashboard-links");
    const dialog = admin.locator("[data-testid=dashboard-links-dialog]");
    await dialog.locator("[data-testid=dashboard-link-create]").click();
    await expect(dialog.locator("[data-testid=error-dashboard-link-name]").textContent()).resolves.toContain("Name is required");
    await dialog.locator("[data-testid=dashboard-link-name]").fill("NOC wall");
    await dialog.locator("[data-testid=dashboard-link-create]").click();
    wallUrl = await dialog.locator("[data-testid=dashboard-link-url]").inputValue();
    expect(wallUrl).toMatch(/\/dashboard\?key=[\w-]{20,}$/);
    await dialog.locator('[data-testid=dashboard-link-row][data-name="NOC wall"]').waitFor();
    await shot(admin, "dashboard-04-links");
    await admin.keyboard.press("Escape");
  });
});

describe("the wall dashboard (issue 6, test 4)", () => {
  it("opens with the link and no sign-in, and reaches nothing else", async () => {
    const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
    wall = await context.newPage();
    await wall.goto(wallUrl);
    expect(new URL(wall.url()).pathname).toBe("/dashboard");
    await wall.waitForSelector('[data-testid=wall-tile][data-vm="sql-01"][data-health=Normal]', { timeout: 10_000 });
    await expect(wall.locator("[data-testid=wall-count-Normal-value]").textContent()).resolves.toBe("1");
    await expect(wall.locator("[data-testid=wall-live]").textContent()).resolves.toBe("Live");
    await shot(wall, "dashboard-05-wall-normal");
    // The key opens the wall only: no tRPC, no manager, no CSV.
    expect((await wall.request.get(`${consoleProc.url}/api/trpc/vms.list?input=%7B%22json%22%3A%7B%7D%7D`)).status()).toBe(401);
    const home = await wall.request.get(`${consoleProc.url}/?key=${new URL(wallUrl).searchParams.get("key")}`, { maxRedirects: 0 });
    expect([home.status(), home.headers().location]).toEqual([302, "/login"]);
    expect((await wall.request.get(`${consoleProc.url}/dashboard?key=not-a-key`)).status()).toBe(403);
  });

  it("opens for a signed-in user without a link", async () => {
    const page = await admin.context().newPage();
    await page.goto(`${consoleProc.url}/dashboard`);
    await page.waitForSelector('[data-testid=wall-tile][data-vm="sql-01"]', { timeout: 10_000 });
    await page.close();
  });

  it("reflects a health change within a second, with the reason", async () => {
    const tile = wall.locator('[data-testid=wall-tile][data-vm="sql-01"]');
    await wall.waitForTimeout(500);
    const started = Date.now();
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/pause`);
    await tile.and(wall.locator("[data-health=Warning]")).waitFor({ timeout: 5000 });
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(tile.locator("[data-testid=wall-tile-reason]").textContent()).resolves.toContain("paused on the primary server");
    await expect(wall.locator("[data-testid=wall-count-Warning-value]").textContent()).resolves.toBe("1");
    await shot(wall, "dashboard-06-wall-warning");
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resume`);
    await tile.and(wall.locator("[data-health=Normal]")).waitFor({ timeout: 5000 });
  });

  it("turns Critical when the Replica server goes away, and alerts once", async () => {
    const tile = wall.locator('[data-testid=wall-tile][data-vm="sql-01"]');
    await pair.replica.kill();
    await tile.and(wall.locator("[data-health=Critical]")).waitFor({ timeout: 30_000 });
    await expect(tile.locator("[data-testid=wall-tile-reason]").textContent()).resolves.toMatch(/Cannot reach hv02\.lab\.test\. The primary server cannot send replication data/);
    await expect(wall.locator("[data-testid=wall-count-Critical-value]").textContent()).resolves.toBe("1");
    await shot(wall, "dashboard-07-wall-critical");
    const alerts = () => hooked.filter((h) => !(h as { test: boolean }).test) as { health: string }[];
    await waitFor("the Critical alert", async () => alerts().length > 0, 5000);
    await wall.waitForTimeout(5000);
    expect(alerts().map((a) => a.health)).toEqual(["Critical"]);
    await pair.replica.start();
  });

  it("closes a wall whose link was revoked, saying so", async () => {
    const made = json<{ id: string; path: string }>(await trpcMutation(admin, "dashboard.createLink", { name: "Lobby" }));
    const other = await (await browser.newContext({ viewport: { width: 1920, height: 1080 } })).newPage();
    await other.goto(`${consoleProc.url}${made.path}`);
    await other.waitForSelector('[data-testid=wall-tile][data-vm="sql-01"]');
    await trpcMutation(admin, "dashboard.revokeLink", { id: made.id });
    await other.locator("[data-testid=wall-stale]", { hasText: "revoked" }).waitFor({ timeout: 10_000 });
    await expect(other.locator("[data-testid=wall]").getAttribute("data-stale")).resolves.toBe("true");
    await expect(other.locator("[data-testid=wall-tile]").count()).resolves.toBe(0);
    await shot(other, "dashboard-08-wall-revoked");
    await other.context().close();
  });

  it("shows that its data is stale when the console goes away", async () => {
    await consoleProc.stop();
    await wall.waitForSelector("[data-testid=wall][data-stale=true]", { timeout: 5000 });
    await expect(wall.locator("[data-testid=wall-stale]").textContent()).resolves.toContain("Data is stale");
    await expect(wall.locator("[data-testid=wall-live]").textContent()).resolves.toBe("NOT LIVE");
    await shot(wall, "dashboard-09-wall-stale");
  });

  it("comes back live by itself when the console is back", async () => {
    consoleProc = await startConsoleProcess(pair.dir, consoleProc);
    await wall.waitForSelector("[data-testid=wall][data-stale=false]", { timeout: 30_000 });
    await wall.waitForSelector('[data-testid=wall-tile][data-vm="sql-01"]');
    await expect(wall.locator("[data-testid=wall-live]").textContent()).resolves.toBe("Live");
  });
});
