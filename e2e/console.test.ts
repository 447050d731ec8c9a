/**
 * The console in Chromium against two real agents: sign in, connect both servers, create and
 * start a VM and watch a second browser follow live, an agent killed and back, and a Viewer
 * who can do nothing (and whom the server refuses anyway). Screenshots go to test-results/e2e.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Pair } from "../server/agent/testing/harness.js";
import { connectServer, shot, signIn, trpcMutation, type ConsoleProcess, startConsoleLab, stopConsoleLab } from "./support.js";

let pair: Pair;
let consoleProc: ConsoleProcess;
let browser: Browser;
let admin: Page;

beforeAll(async () => {
  ({ pair, consoleProc, browser } = await startConsoleLab());
}, 300_000);

afterAll(async () => {
  await stopConsoleLab({ pair, consoleProc, browser });
});

describe("the console in a browser", () => {
  it("sends a visitor to the login page and refuses a wrong password", async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 800 } });
    const page = await context.newPage();
    await page.goto(consoleProc.url);
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.fill("[data-testid=login-name]", "admin");
    await page.fill("[data-testid=login-password]", "not the password");
    await page.click("[data-testid=login-submit]");
    await expect(page.locator("[data-testid=login-error]").textContent()).resolves.toContain("not correct");
    await shot(page, "01-login-refused");
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === "rm_session")).toBeUndefined();
    await context.close();
  });

  it("signs in, connects to both servers and shows them connected", async () => {
    admin = await signIn(browser, consoleProc.url, consoleProc.admin.name, consoleProc.admin.password);
    const cookie = (await admin.context().cookies()).find((c) => c.name === "rm_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    await admin.goto(`${consoleProc.url}/login`);
    expect(new URL(admin.url()).pathname).toBe("/");
    await connectServer(admin, pair.primary.url, "hv01.lab.test");
    await connectServer(admin, pair.replica.url, "hv02.lab.test");
    await expect(admin.locator("[data-testid=host-tree] [role=treeitem][data-status]").count()).resolves.toBe(2);
    await shot(admin, "02-both-hosts");
  });

  it("creates and starts a VM; a second browser sees it change live", async () => {
    const watcher = await signIn(browser, consoleProc.url, consoleProc.admin.name, consoleProc.admin.password);
    await watcher.click('[data-testid="host-hv01.lab.test"]');
    await admin.click('[data-testid="host-hv01.lab.test"]');

    await admin.click("[data-testid=action-new-vm]");
    await admin.click('[data-testid="wizard-page-Specify Name"]');
    await admin.fill("[data-testid=wizard-name]", "bad/name");
    await admin.click("[data-testid=wizard-finish]");
    await expect(admin.locator("[data-testid=error-name]").textContent()).resolves.toContain("slashes");
    await admin.fill("[data-testid=wizard-name]", "web-07");
    await admin.click('[data-testid="wizard-page-Assign Memory"]');
    await admin.fill("[data-testid=wizard-memory]", "2048");
    await shot(admin, "03-new-vm-wizard");
    await admin.click("[data-testid=wizard-finish]");
    await admin.waitForSelector("[data-testid=new-vm-wizard]", { state: "detached" });

    const row = (p: Page) => p.locator('[data-testid="vm-row-web-07"]');
    await row(watcher).waitFor({ timeout: 5000 });
    await expect(row(watcher).getAttribute("data-state")).resolves.toBe("Off");

    await row(admin).click();
    await admin.click("[data-testid=action-start]");
    await watcher.waitForSelector('[data-testid="vm-row-web-07"][data-state=Running]', { timeout: 5000 });
    await expect(row(watcher).locator("[data-col=memory]").textContent()).resolves.toBe("2048 MB");
    // CPU usage arrives on its own, every couple of seconds, as a percentage.
    await watcher.waitForFunction(() => /^\d+ %$/.test(document.querySelector('[data-testid="vm-row-web-07"] [data-col=cpu]')?.textContent ?? ""), null, { timeout: 8000 });
    await shot(watcher, "04-second-browser-live");
    await watcher.context().close();
  });

  it("offers the same actions on right-click, and lists every server's VMs under Hyper-V Manager", async () => {
    // Nothing selected first: the menu must act on the row that was right-clicked.
    await admin.click('[data-testid="host-hv01.lab.test"]');
    await admin.locator('[data-testid="vm-row-web-07"]').click({ button: "right" });
    await expect(admin.locator("[data-testid=menu-shutdown]").isEnabled()).resolves.toBe(true);
    await expect(admin.locator("[data-testid=menu-start]").isDisabled()).resolves.toBe(true);
    await shot(admin, "04-context-menu");
    await admin.keyboard.press("Escape");
    await admin.click("[data-testid=host-all]");
    await admin.waitForSelector('[data-testid="vm-row-web-07"] [data-col=server]');
    await expect(admin.locator('[data-testid="vm-row-web-07"] [data-col=server]').textContent()).resolves.toBe("hv01.lab.test");
    await admin.click('[data-testid="host-hv01.lab.test"]');
  });

  it("changes the guest workload in the VM's Settings", async () => {
    await admin.locator('[data-testid="vm-row-web-07"]').click();
    await admin.click("[data-testid=action-settings]");
    await admin.selectOption("[data-testid=vm-settings-pattern]", "random-4k");
    await admin.fill("[data-testid=vm-settings-rate]", "3000");
    await admin.click("[data-testid=vm-settings-ok]");
    await expect(admin.locator('[data-testid="error-vm-rate"]').textContent()).resolves.toContain("2048");
    await admin.fill("[data-testid=vm-settings-rate]", "3");
    await shot(admin, "05-vm-settings");
    await admin.click("[data-testid=vm-settings-ok]");
    await admin.waitForSelector("[data-testid=vm-settings]", { state: "detached" });
    const vms = await pair.primary.ok<{ name: string; workload: { pattern: string; rateMiBps: number } }[]>("GET", "/api/v1/vms");
    expect(vms.find((v) => v.name === "web-07")!.workload).toMatchObject({ pattern: "random-4k", rateMiBps: 3 });
  });

  it("shows the agent's refusal as a message tied to the VM, and offers only what the state allows", async () => {
    const vmId = (await pair.primary.ok<{ id: string; name: string }[]>("GET", "/api/v1/vms")).find((v) => v.name === "web-07")!.id;
    // A menu opened before the VM changed on the agent offers Pause; the agent refuses it.
    await admin.locator('[data-testid="vm-row-web-07"]').click({ button: "right" });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "pause" });
    await admin.waitForSelector('[data-testid="vm-row-web-07"][data-state=Paused]', { timeout: 5000 });
    await admin.click("[data-testid=menu-pause]");
    const toast = admin.locator("[data-testid=toast]");
    await expect(toast.textContent()).resolves.toMatch(/Could not pause 'web-07'.*Paused/);
    await shot(admin, "05-refused-by-agent");
    await admin.locator('[data-testid="vm-row-web-07"]').click();
    await expect(admin.locator("[data-testid=action-start]").isDisabled()).resolves.toBe(true);
    await expect(admin.locator("[data-testid=action-resume]").isEnabled()).resolves.toBe(true);
  });

  it("shows an agent that was killed as unreachable within seconds, and connected again after a restart", async () => {
    await pair.replica.kill();
    await admin.waitForSelector('[data-testid="host-hv02.lab.test"][data-status=unreachable]', { timeout: 5000 });
    await admin.click('[data-testid="host-hv02.lab.test"]');
    await expect(admin.locator("[data-testid=host-unreachable]").textContent()).resolves.toMatch(/refused|closed the connection/);
    await shot(admin, "06-host-unreachable");
    await pair.replica.start();
    await admin.waitForSelector('[data-testid="host-hv02.lab.test"][data-status=connected]', { timeout: 10_000 });
  });

  it("changes the Replication Configuration in Hyper-V Settings, field by field", async () => {
    await admin.click('[data-testid="host-hv02.lab.test"]');
    await admin.click("[data-testid=action-hyperv-settings]");
    await admin.click("[data-testid=settings-auth-entries]");
    await admin.fill("[data-testid=entry-0-primaryServer]", "*.lab.test");
    await admin.fill("[data-testid=entry-0-storageLocation]", `${pair.dir}/site-a`);
    await admin.fill("[data-testid=entry-0-trustGroup]", "SITE A!");
    await admin.selectOption("[data-testid=settings-monitoring-interval]", "24");
    await admin.fill("[data-testid=settings-monitoring-start]", "25:00");
    await admin.click("[data-testid=settings-ok]");
    await expect(admin.locator('[data-testid="error-authorization.entries.0.trustGroup"]').textContent()).resolves.toContain("letters, digits");
    await expect(admin.locator('[data-testid="error-monitoring.startTime"]').textContent()).resolves.toContain("HH:MM");
    await shot(admin, "07-replication-configuration");
    await admin.fill("[data-testid=entry-0-trustGroup]", "SITE-A");
    await admin.fill("[data-testid=settings-monitoring-start]", "07:30");
    await admin.click("[data-testid=settings-ok]");
    await admin.waitForSelector("[data-testid=hyperv-settings]", { state: "detached" });
    expect(await pair.replica.ok("GET", "/api/v1/replica-server")).toMatchObject({
      authorization: { mode: "entries", entries: [{ primaryServer: "*.lab.test", trustGroup: "SITE-A" }] },
      monitoring: { intervalHours: 24, startTime: "07:30" },
    });
  });

  it("gives a Viewer no enabled action, and the server refuses the Viewer's calls anyway", async () => {
    await admin.click("[data-testid=menubar-file]");
    await admin.click("[data-testid=menu-file-users]");
    await admin.fill("[data-testid=new-user-name]", "vera");
    await admin.selectOption("[data-testid=new-user-role]", "Viewer");
    await admin.fill("[data-testid=new-user-password]", "short");
    await admin.click("[data-testid=new-user-add]");
    await expect(admin.locator("[data-testid=error-new-user-password]").textContent()).resolves.toContain("at least 10 characters");
    await admin.fill("[data-testid=new-user-password]", "viewer password 1");
    await admin.click("[data-testid=new-user-add]");
    await admin.waitForSelector("[data-testid=user-vera]");
    await admin.keyboard.press("Escape");
    await admin.click("[data-testid=menubar-file]");
    await admin.click("[data-testid=menu-file-audit]");
    await expect(admin.locator("[data-testid=audit-row]").first().textContent()).resolves.toMatch(/admin.*users\.create.*name=vera.*Success/);
    await shot(admin, "08-audit-log");
    await admin.keyboard.press("Escape");
    const viewer = await signIn(browser, consoleProc.url, "vera", "viewer password 1");
    await viewer.click('[data-testid="host-hv01.lab.test"]');
    await viewer.locator('[data-testid="vm-row-web-07"]').click();
    const actions = viewer.locator("[data-testid=actions-pane] button");
    const enabled = await actions.evaluateAll((bs) => bs.filter((b) => !(b as HTMLButtonElement).disabled).map((b) => b.textContent));
    // Read-only looks stay open (Refresh, Settings... without OK); nothing that changes anything.
    expect(enabled).toEqual(["Refresh", "Settings..."]);
    await viewer.click("[data-testid=action-settings]");
    await expect(viewer.locator("[data-testid=vm-settings-ok]").isDisabled()).resolves.toBe(true);
    await viewer.keyboard.press("Escape");
    await shot(viewer, "09-viewer");
    const vmId = (await pair.primary.ok<{ id: string; name: string }[]>("GET", "/api/v1/vms")).find((v) => v.name === "web-07")!.id;
    const hosts = await viewer.request.get("/api/trpc/hosts.list");
    const hostId = ((await hosts.json()) as { result: { data: { json: { id: string; name: string }[] } } }).result.data.json.find((h) => h.name === "hv01.lab.test")!.id;
    const refused = await trpcMutation(viewer, "vms.power", { hostId, vmId, action: "resume" });
    expect(refused.status).toBe(403);
    expect((await pair.primary.ok<{ state: string }>("GET", `/api/v1/vms/${vmId}`)).state).toBe("Paused");
    await viewer.context().close();
  });
});
