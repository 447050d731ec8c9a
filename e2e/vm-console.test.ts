/**
 * Connect... in Chromium against a real QEMU host: the host's hypervisor in the manager, the VM's
 * screen in its own window (noVNC on the console's proxy, a framebuffer drawn by the VM's
 * firmware; also on a double-click of the VM), Ctrl+Alt+Del, the disconnect reason when the VM is turned off, and a Viewer refused.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor, type Pair } from "../server/agent/testing/harness.js";
import { addHosts, shot, signIn, trpcMutation, type ConsoleProcess, startConsoleLab, stopConsoleLab } from "./support.js";

const MiB = 1024 ** 2;
let pair: Pair;
let consoleProc: ConsoleProcess;
let browser: Browser;
let page: Page;
let hostId: string;
let vmId: string;

beforeAll(async () => {
  ({ pair, consoleProc, browser } = await startConsoleLab({ hypervisor: "qemu" }));
  page = await signIn(browser, consoleProc.url, consoleProc.admin.name, consoleProc.admin.password);
  [hostId] = (await addHosts(page, [pair.primary])) as [string];
  // As a user would: the server is connected (its first full read done) before its VM is made.
  await waitFor("hv01 connected in the console", async () => {
    const hosts = await page.evaluate(async () => ((await (await fetch("/api/trpc/hosts.list")).json()) as { result: { data: { json: { name: string; status: string }[] } } }).result.data.json);
    return hosts.some((h) => h.name === "hv01.lab.test" && h.status === "connected");
  }, 60_000, 200);
  vmId = (await pair.primary.ok<{ id: string }>("POST", "/api/v1/vms", { name: "web-01", memoryMiB: 128, disks: [{ sizeBytes: 16 * MiB }] })).id;
}, 300_000);

afterAll(async () => {
  await stopConsoleLab({ pair, consoleProc, browser });
});

const power = (action: string) => pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action });
const status = (p: Page) => p.locator("[data-testid=vm-console-status]");

/** Pixels of noVNC's canvas that are not black: the VM's firmware has drawn its text. */
const litPixels = (p: Page) =>
  p.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>("[data-testid=vm-console-screen] canvas");
    if (!c || !c.width) return 0;
    const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i]! + d[i + 1]! + d[i + 2]! > 60) n++;
    return n;
  });

describe("Connect... (the VM's screen)", () => {
  it("shows a running QEMU VM's screen in its own window, and why it closed when the VM is turned off", async () => {
    await page.click('[data-testid="host-hv01.lab.test"]');
    await page.locator('[data-testid="vm-row-web-01"]').click();
    await expect(page.locator("[data-testid=host-platform]").textContent()).resolves.toMatch(/^Hypervisor: QEMU with (KVM|TCG \(emulation, no KVM\))$/);
    // Off: nothing to show yet.
    await expect(page.locator("[data-testid=action-connect]").first().isDisabled()).resolves.toBe(true);
    await power("start");
    await expect.poll(() => page.locator("[data-testid=action-connect]").first().isDisabled(), { timeout: 15_000 }).toBe(false);
    await shot(page, "vnc-01-manager-qemu-host");

    const [screen] = await Promise.all([page.context().waitForEvent("page"), page.locator("[data-testid=action-connect]").first().click()]);
    await screen.setViewportSize({ width: 1040, height: 800 });
    await expect.poll(() => status(screen).getAttribute("data-state"), { timeout: 30_000 }).toBe("connected");
    await expect(status(screen).textContent()).resolves.toMatch(/^Connected to 'web-01' \(\d+ × \d+\)$/);
    const size = await screen.evaluate(() => {
      const c = document.querySelector<HTMLCanvasElement>("[data-testid=vm-console-screen] canvas")!;
      return { width: c.width, height: c.height };
    });
    expect(size.width).toBeGreaterThan(0);
    expect(size.height).toBeGreaterThan(0);
    await expect.poll(() => litPixels(screen), { timeout: 30_000 }).toBeGreaterThan(100);
    // The firmware switches to 80×25 text mode (720 × 400), and the screen and status follow.
    await expect.poll(() => status(screen).textContent(), { timeout: 30_000 }).toBe("Connected to 'web-01' (720 × 400)");
    await expect.poll(() => litPixels(screen), { timeout: 30_000 }).toBeGreaterThan(100);
    await expect(screen.title()).resolves.toBe("web-01 on hv01.lab.test - Virtual Machine Connection");
    await screen.click("[data-testid=vm-console-cad]");
    await shot(screen, "vnc-02-screen-connected");

    await power("turn-off");
    await expect.poll(() => status(screen).textContent(), { timeout: 15_000 }).toBe("Disconnected: the VM's screen closed: the virtual machine stopped");
    await shot(screen, "vnc-03-screen-vm-stopped");
    await screen.close();
  });

  it("opens the screen on a double-click of a running VM, as Hyper-V Manager does", async () => {
    await power("start");
    await expect.poll(() => page.locator("[data-testid=action-connect]").first().isDisabled(), { timeout: 15_000 }).toBe(false);
    const [screen] = await Promise.all([page.context().waitForEvent("page"), page.locator('[data-testid="vm-row-web-01"]').dblclick()]);
    await expect.poll(() => status(screen).getAttribute("data-state"), { timeout: 30_000 }).toBe("connected");
    await screen.close();
  });

  it("refuses a Viewer: Connect... is disabled, and the server refuses the screen's websocket", async () => {
    expect((await trpcMutation(page, "users.create", { name: "watcher", role: "Viewer", password: "viewer password 1" })).status).toBe(200);
    const viewer = await signIn(browser, consoleProc.url, "watcher", "viewer password 1");
    await viewer.click('[data-testid="host-hv01.lab.test"]');
    await viewer.locator('[data-testid="vm-row-web-01"]').click();
    await expect(viewer.locator("[data-testid=action-connect]").first().isDisabled()).resolves.toBe(true);
    await viewer.goto(`/vm-console?hostId=${hostId}&vmId=${vmId}`);
    await expect.poll(() => status(viewer).textContent(), { timeout: 15_000 }).toBe("Disconnected: connecting to a VM's screen needs the Operator role; watcher is Viewer");
    await shot(viewer, "vnc-04-viewer-refused");
  });
});
