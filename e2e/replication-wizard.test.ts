/**
 * The Enable Replication wizard in Chromium against two real agents: the whole wizard with
 * hourly recovery points on, until the VM replicates with health Normal and the replica's disks
 * hash as the primary's; then every page's bad entries, each with its message beside the field,
 * and Finish against a Replica server whose agent is down, which keeps the entries.
 */
import { utimes } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, waitFor, type Pair } from "../server/agent/testing/harness.js";
import { addHosts, shot, signIn, type ConsoleProcess, startConsoleLab, stopConsoleLab } from "./support.js";

const MiB = 1024 ** 2;
let pair: Pair;
let consoleProc: ConsoleProcess;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  ({ pair, consoleProc, browser } = await startConsoleLab());
  page = await signIn(browser, consoleProc.url, consoleProc.admin.name, consoleProc.admin.password);
  await addHosts(page, [pair.primary, pair.replica]);
  await page.click('[data-testid="host-hv01.lab.test"]');
}, 300_000);

afterAll(async () => {
  await stopConsoleLab({ pair, consoleProc, browser });
});

async function newVm(name: string, workload = { pattern: "idle", rateMiBps: 1 }): Promise<string> {
  const vm = await pair.primary.ok<{ id: string }>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: 16 * MiB }, { sizeBytes: 8 * MiB }], workload });
  await page.click('[data-testid="host-hv01.lab.test"]');
  await page.locator(`[data-testid="vm-row-${name}"]`).waitFor({ timeout: 10_000 }).catch(async (err) => {
    await shot(page, `debug-newvm-${name}`);
    throw err;
  });
  return vm.id;
}

async function openWizard(name: string): Promise<void> {
  await page.locator(`[data-testid="vm-row-${name}"]`).click();
  await page.click("[data-testid=action-replication]");
  await page.click("[data-testid=action-replication-enable]");
  await page.waitForSelector("[data-testid=replication-wizard]");
}

const heading = () => page.locator("[data-testid=replication-wizard] h2").textContent();
const next = async (expected: string) => {
  await page.click("[data-testid=wizard-next]");
  await expect.poll(heading, { timeout: 10_000 }).toBe(expected);
};
const message = (field: string) => page.locator(`[data-testid=error-${field}]`).textContent({ timeout: 10_000 });
const noMessage = (field: string) => page.locator(`[data-testid=error-${field}]`).count();

describe("Enable Replication wizard", () => {
  it("enables replication page by page with hourly points; the VM replicates, Normal, disks equal", async () => {
    const vmId = await newVm("sql-01", { pattern: "random-4k", rateMiBps: 1 });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    await openWizard("sql-01");
    await expect(heading()).resolves.toBe("Before You Begin");
    await shot(page, "repl-01-before-you-begin");

    await next("Specify Replica Server");
    await page.fill("[data-testid=wizard-replica-server]", "hv02.lab.test");
    await shot(page, "repl-02-specify-replica-server");

    await next("Specify Connection Parameters");
    await expect(page.inputValue("[data-testid=wizard-port]")).resolves.toBe(String(pair.replica.ports.https));
    await expect(page.isChecked("[data-testid=wizard-auth-https]")).resolves.toBe(true);
    await expect(page.isChecked("[data-testid=wizard-compression]")).resolves.toBe(true);
    await shot(page, "repl-03-connection-parameters");
    await page.click("[data-testid=wizard-previous]");
    await expect(page.locator("[data-testid=wizard-server-checked]").textContent()).resolves.toMatch(/accepts hv01\.lab\.test.*trust group DEFAULT/);
    await shot(page, "repl-02-replica-server-checked");
    await next("Specify Connection Parameters");

    await next("Choose Replication VHDs");
    await expect(page.locator("[data-testid=wizard-vhds]").textContent()).resolves.toMatch(/disk0\.raw.*16 MB.*disk1\.raw.*8\.0 MB/);
    await shot(page, "repl-04-choose-vhds");

    await next("Configure Replication Frequency");
    await expect(page.inputValue("[data-testid=wizard-frequency]")).resolves.toBe("300");
    await page.selectOption("[data-testid=wizard-frequency]", "30");
    await shot(page, "repl-05-frequency");

    await next("Configure Additional Recovery Points");
    await page.click("[data-testid=wizard-points-yes]");
    await page.fill("[data-testid=wizard-history]", "6");
    await page.check("[data-testid=wizard-app-consistent]");
    await page.fill("[data-testid=wizard-app-hours]", "2");
    await expect.poll(() => page.locator("[data-testid=wizard-storage-estimate]").textContent(), { timeout: 10_000 }).toMatch(/Additional storage needed on the Replica server: about .+ per hourly point/);
    await shot(page, "repl-06-recovery-points");

    await next("Choose Initial Replication Method");
    await expect(page.locator("[data-testid=wizard-initial-size]").textContent()).resolves.toContain("24 MB");
    await expect(page.isChecked("[data-testid=wizard-initial-network]")).resolves.toBe(true);
    await shot(page, "repl-07-initial-replication");

    await next("Summary");
    const summary = await page.locator("[data-testid=wizard-summary]").textContent();
    expect(summary).toContain("hv02.lab.test");
    expect(summary).toContain("30 seconds");
    expect(summary).toContain("Latest and hourly for 6 hours");
    expect(summary).toContain("Every 2 hours");
    await shot(page, "repl-08-summary");

    await page.click("[data-testid=wizard-finish]");
    await page.waitForSelector("[data-testid=wizard-completed]", { timeout: 30_000 });
    await expect(heading()).resolves.toBe("Replication enabled successfully");
    await shot(page, "repl-09-completed");
    await page.click("[data-testid=wizard-close]");

    const row = page.locator('[data-testid="vm-row-sql-01"]');
    await expect.poll(() => row.locator("[data-col=health]").textContent(), { timeout: 30_000 }).toContain("Normal");
    await page.click("[data-testid=tab-Replication]");
    await expect.poll(() => page.locator("[data-testid=detail-replication-state]").textContent(), { timeout: 30_000 }).toBe("Replicating");
    await expect(page.locator("[data-testid=detail-replication-health]").textContent()).resolves.toContain("Normal");
    await shot(page, "repl-10-replicating");

    const rec = (await pair.primary.ok<Record<string, unknown>[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!;
    expect(rec).toMatchObject({ replicaServer: "hv02.lab.test", authMode: "https", frequencySeconds: 30, recoveryHistory: 6, appConsistentFrequencyHours: 2, compression: true });
    // The guest stops writing; its last changes are replicated; then both disks hash the same.
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "shutdown" });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    for (const disk of [0, 1]) expect(await diskHash(pair.replica, vmId, disk)).toBe(await diskHash(pair.primary, vmId, disk));
  });

  it("gives every page's bad entries a message beside the field, and keeps the entries when Finish fails", async () => {
    const vmId = await newVm("web-02");
    await openWizard("web-02");
    await next("Specify Replica Server");

    await page.click("[data-testid=wizard-next]");
    await expect(message("replicaServer")).resolves.toBe("Enter the name or FQDN of the Replica server.");
    await page.fill("[data-testid=wizard-replica-server]", "hv09.lab.test");
    await page.click("[data-testid=wizard-next]");
    await expect(message("replicaServer")).resolves.toMatch(/hv09\.lab\.test is not connected to this console/);
    await shot(page, "repl-11-unknown-replica-server");
    await page.fill("[data-testid=wizard-replica-server]", "hv01.lab.test");
    await page.click("[data-testid=wizard-next]");
    await expect(message("replicaServer")).resolves.toMatch(/primary server of this virtual machine/);
    await page.fill("[data-testid=wizard-replica-server]", "hv02.lab.test");
    await next("Specify Connection Parameters");

    await page.fill("[data-testid=wizard-port]", "70000");
    await page.check("[data-testid=wizard-limit-bandwidth]");
    await page.fill("[data-testid=wizard-bandwidth]", "0");
    await page.click("[data-testid=wizard-next]");
    await expect(message("replicaPort")).resolves.toBe("The port is 1 to 65535.");
    await expect(message("bandwidthLimitMiBps")).resolves.toBe("The bandwidth limit is 0.1 to 100000 MB/s.");
    await shot(page, "repl-12-connection-errors");
    await page.fill("[data-testid=wizard-port]", String(pair.replica.ports.https));
    await page.fill("[data-testid=wizard-bandwidth]", "20");
    await next("Choose Replication VHDs");

    await page.uncheck("[data-testid=wizard-vhd-0]");
    await page.uncheck("[data-testid=wizard-vhd-1]");
    await page.click("[data-testid=wizard-next]");
    await expect(message("disks")).resolves.toBe("Choose at least one virtual hard disk to replicate.");
    await page.check("[data-testid=wizard-vhd-0]");
    await expect.poll(() => noMessage("disks")).toBe(0);
    await next("Configure Replication Frequency");
    await next("Configure Additional Recovery Points");

    await page.click("[data-testid=wizard-points-yes]");
    await page.fill("[data-testid=wizard-history]", "30");
    await page.check("[data-testid=wizard-app-consistent]");
    await page.fill("[data-testid=wizard-app-hours]", "13");
    await page.click("[data-testid=wizard-next]");
    await expect(message("recoveryHistory")).resolves.toBe("Additional recovery points cover 1 to 24 hours.");
    await expect(message("appConsistentFrequencyHours")).resolves.toBe("An application-consistent snapshot is taken every 1 to 12 hours.");
    await shot(page, "repl-13-recovery-point-errors");
    await page.fill("[data-testid=wizard-history]", "");
    await page.click("[data-testid=wizard-next]");
    await expect(message("recoveryHistory")).resolves.toBe("Enter 0 to 24 hourly recovery points.");
    await page.fill("[data-testid=wizard-history]", "3");
    await page.fill("[data-testid=wizard-app-hours]", "1");
    await next("Choose Initial Replication Method");

    await page.click("[data-testid=wizard-initial-media]");
    await page.fill("[data-testid=wizard-folder]", "usb/web-02");
    await page.click("[data-testid=wizard-next]");
    await expect(message("folder")).resolves.toBe("Enter an absolute folder path, such as /media/usb/sql-01.");
    await page.click("[data-testid=wizard-initial-network]");
    await page.click("[data-testid=wizard-start-yes]");
    const tooLate = new Date(Date.now() + 10 * 24 * 3600_000);
    const local = (d: Date) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await page.fill("[data-testid=wizard-start-at]", local(tooLate));
    await page.click("[data-testid=wizard-next]");
    await expect(message("startAt")).resolves.toBe("Choose a time at most 7 days ahead.");
    await shot(page, "repl-14-initial-replication-errors");
    await page.click("[data-testid=wizard-start-no]");
    await next("Summary");

    // Back and forth keeps what was entered.
    await page.click("[data-testid=wizard-previous]");
    await page.click("[data-testid=wizard-previous]");
    await expect(heading()).resolves.toBe("Configure Additional Recovery Points");
    await expect(page.inputValue("[data-testid=wizard-history]")).resolves.toBe("3");
    await page.click('[data-testid="wizard-page-Specify Connection Parameters"]');
    await expect(page.inputValue("[data-testid=wizard-bandwidth]")).resolves.toBe("20");
    // Leaving Specify Connection Parameters tests the connection first.
    await page.click("[data-testid=wizard-page-Summary]");
    await expect.poll(heading, { timeout: 10_000 }).toBe("Summary");

    // Finish while the Replica server's agent is down: the primary's connection test says what
    // failed beside the port, and every entry is kept.
    await pair.replica.kill();
    try {
      await page.click("[data-testid=wizard-finish]");
      await expect(message("replicaPort")).resolves.toMatch(/Nothing listens on port \d+ of hv02\.lab\.test/);
      await expect(heading()).resolves.toBe("Specify Connection Parameters");
      expect(await page.locator("[data-testid=wizard-connection-ok]").count()).toBe(0);
      await shot(page, "repl-15-finish-unreachable");
      await expect(page.inputValue("[data-testid=wizard-bandwidth]")).resolves.toBe("20");
      await page.click('[data-testid="wizard-page-Specify Replica Server"]');
      await expect(page.inputValue("[data-testid=wizard-replica-server]")).resolves.toBe("hv02.lab.test");
      expect(await pair.primary.ok<unknown[]>("GET", `/api/v1/vms/${vmId}/replication`)).toEqual([]);
    } finally {
      await pair.replica.start();
    }
    // Once it is back, the same entries enable replication.
    await page.click("[data-testid=wizard-page-Summary]");
    await page.click("[data-testid=wizard-finish]");
    await page.waitForSelector("[data-testid=wizard-completed]", { timeout: 30_000 });
    await page.click("[data-testid=wizard-close]");
    const rec = await waitFor("Replicating", async () => {
      const r = (await pair.primary.ok<{ state: string; bandwidthLimitMiBps: number; recoveryHistory: number; disks: unknown[] }[]>("GET", `/api/v1/vms/${vmId}/replication`))[0];
      return r?.state === "Replicating" && r;
    });
    expect(rec).toMatchObject({ bandwidthLimitMiBps: 20, recoveryHistory: 3, disks: [{ index: 0 }] });
  });

  it("changes Replication Settings, pauses and resumes, and removes replication on the Replica server", async () => {
    const vmId = (await pair.primary.ok<{ id: string; name: string }[]>("GET", "/api/v1/vms")).find((v) => v.name === "sql-01")!.id;
    const menu = async (host: string, kind: string) => {
      await page.click(`[data-testid="host-${host}"]`);
      await page.locator('[data-testid="vm-row-sql-01"]').click();
      await page.click("[data-testid=action-replication]");
      await page.click(`[data-testid=action-replication-${kind}]`);
    };
    await menu("hv01.lab.test", "settings");
    await page.waitForSelector("[data-testid=settings-frequency]");
    await expect(page.inputValue("[data-testid=settings-history]")).resolves.toBe("6");
    await page.selectOption("[data-testid=settings-frequency]", "300");
    await page.fill("[data-testid=settings-history]", "40");
    await page.click("[data-testid=settings-resync-window]");
    await page.fill("[data-testid=settings-resync-start]", "23:00");
    await page.click("[data-testid=dialog-ok]");
    await expect(message("recoveryHistory")).resolves.toBe("Additional recovery points cover 1 to 24 hours.");
    await page.fill("[data-testid=settings-history]", "4");
    await shot(page, "repl-16-replication-settings");
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=replication-settings-dialog]", { state: "detached" });
    const rec = (await pair.primary.ok<Record<string, unknown>[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!;
    expect(rec).toMatchObject({ frequencySeconds: 300, recoveryHistory: 4, resyncPolicy: { mode: "window", start: "23:00", end: "05:00" } });

    await menu("hv01.lab.test", "pause");
    await page.click("[data-testid=tab-Replication]");
    await expect.poll(() => page.locator("[data-testid=detail-replication-state]").textContent(), { timeout: 10_000 }).toBe("Suspended");
    await menu("hv01.lab.test", "resume");
    await expect.poll(() => page.locator("[data-testid=detail-replication-state]").textContent(), { timeout: 10_000 }).toBe("Replicating");

    await menu("hv02.lab.test", "remove");
    await expect(page.locator("[data-testid=remove-explanation]").textContent()).resolves.toMatch(/on the Replica server hv02\.lab\.test.*The Replica virtual machine is kept/);
    await shot(page, "repl-17-remove-replication");
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=remove-replication-dialog]", { state: "detached" });
    await expect.poll(() => page.locator("[data-testid=detail-replication]").textContent(), { timeout: 10_000 }).toBe("Replication is not enabled for this virtual machine.");
    expect(await pair.replica.ok<{ isReplica: boolean }>("GET", `/api/v1/vms/${vmId}`)).toMatchObject({ isReplica: false });
  });

  /** The whole wizard to hv02 with defaults, except what `initial` sets on the last page. */
  async function enableWith(name: string, initial: () => Promise<void>): Promise<void> {
    await page.click('[data-testid="host-hv01.lab.test"]');
    await openWizard(name);
    await next("Specify Replica Server");
    await page.fill("[data-testid=wizard-replica-server]", "hv02.lab.test");
    for (const p of ["Specify Connection Parameters", "Choose Replication VHDs", "Configure Replication Frequency", "Configure Additional Recovery Points", "Choose Initial Replication Method"]) await next(p);
    await initial();
    await next("Summary");
    await page.click("[data-testid=wizard-finish]");
    await page.waitForSelector("[data-testid=wizard-completed]", { timeout: 60_000 });
  }

  async function submenu(host: string, name: string, kind: string): Promise<void> {
    await page.click(`[data-testid="host-${host}"]`);
    await page.locator(`[data-testid="vm-row-${name}"]`).click();
    await page.click("[data-testid=action-replication]");
    await page.click(`[data-testid=action-replication-${kind}]`);
  }

  const replicationState = (host: string, name: string) => async () => {
    await page.click(`[data-testid="host-${host}"]`);
    await page.locator(`[data-testid="vm-row-${name}"]`).click({ timeout: 3000 }).catch(async (err) => {
      await shot(page, `debug-state-${host}-${name}`);
      throw err;
    });
    await page.click("[data-testid=tab-Replication]");
    return page.locator("[data-testid=detail-replication-state]").textContent();
  };

  it("external media: exported by the wizard, then Import Initial Replica on the Replica server", async () => {
    const vmId = await newVm("file-03");
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/1/data?offset=65536`, Buffer.alloc(256 * 1024, 5));
    const folder = join(pair.dir, "usb", "file-03");
    await enableWith("file-03", async () => {
      await page.click("[data-testid=wizard-initial-media]");
      await page.fill("[data-testid=wizard-folder]", folder);
    });
    await expect(page.locator("[data-testid=wizard-completed]").textContent()).resolves.toContain(`exported to ${folder}`);
    await shot(page, "repl-18-exported-to-media");
    await page.click("[data-testid=wizard-close]");

    await expect.poll(replicationState("hv02.lab.test", "file-03"), { timeout: 10_000 }).toBe("Waiting for initial replication");
    await submenu("hv02.lab.test", "file-03", "import-initial");
    await page.fill("[data-testid=import-folder]", "usb/file-03");
    await page.click("[data-testid=dialog-ok]");
    await expect(message("folder")).resolves.toBe("Enter an absolute folder path, such as /media/usb/sql-01.");
    await page.fill("[data-testid=import-folder]", folder);
    await shot(page, "repl-19-import-initial-replica");
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=import-initial-dialog]", { state: "detached", timeout: 60_000 });
    await expect.poll(replicationState("hv02.lab.test", "file-03"), { timeout: 10_000 }).toBe("Replicating");
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    for (const disk of [0, 1]) expect(await diskHash(pair.replica, vmId, disk)).toBe(await diskHash(pair.primary, vmId, disk));
  });

  it("a scheduled initial copy waits; Start Replication... sends it now", async () => {
    const vmId = await newVm("web-04");
    const inTwoHours = new Date(Date.now() + 2 * 3600_000);
    await enableWith("web-04", async () => {
      await page.click("[data-testid=wizard-start-yes]");
      await page.fill("[data-testid=wizard-start-at]", new Date(inTwoHours.getTime() - inTwoHours.getTimezoneOffset() * 60_000).toISOString().slice(0, 16));
    });
    await page.click("[data-testid=wizard-close]");
    await expect.poll(replicationState("hv01.lab.test", "web-04"), { timeout: 10_000 }).toBe("Ready for initial replication");
    await submenu("hv01.lab.test", "web-04", "start-initial");
    await expect.poll(() => page.locator("[data-testid=start-replication-dialog]").textContent()).toContain("It is scheduled to start on");
    await shot(page, "repl-20-start-replication");
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=start-replication-dialog]", { state: "detached" });
    await expect.poll(replicationState("hv01.lab.test", "web-04"), { timeout: 30_000 }).toBe("Replicating");
    expect(await diskHash(pair.replica, vmId, 0)).toBe(await diskHash(pair.primary, vmId, 0));
  });

  it("Resynchronize... once a disk changed behind change tracking: at a time, or now", async () => {
    const vmId = (await pair.primary.ok<{ id: string; name: string }[]>("GET", "/api/v1/vms")).find((v) => v.name === "file-03")!.id;
    await pair.primary.stop();
    const later = new Date(Date.now() + 5000);
    await utimes(join(pair.dir, "hv01", "vms", vmId, "disk0.raw"), later, later);
    await pair.primary.start();
    await expect.poll(replicationState("hv01.lab.test", "file-03"), { timeout: 20_000 }).toBe("Resynchronization required");
    await submenu("hv01.lab.test", "file-03", "resynchronize");
    await expect.poll(() => page.locator("[data-testid=resync-policy]").textContent()).toContain("Manually");
    await page.click("[data-testid=resync-later]");
    const tooLate = new Date(Date.now() + 9 * 24 * 3600_000);
    await page.fill("[data-testid=resync-at]", new Date(tooLate.getTime() - tooLate.getTimezoneOffset() * 60_000).toISOString().slice(0, 16));
    await page.click("[data-testid=dialog-ok]");
    await expect(message("at")).resolves.toBe("Choose a time at most 7 days ahead.");
    await page.click("[data-testid=resync-now]");
    await shot(page, "repl-21-resynchronize");
    await page.click("[data-testid=dialog-ok]");
    await page.waitForSelector("[data-testid=resynchronize-dialog]", { state: "detached" });
    await expect.poll(replicationState("hv01.lab.test", "file-03"), { timeout: 30_000 }).toBe("Replicating");
    for (const disk of [0, 1]) expect(await diskHash(pair.replica, vmId, disk)).toBe(await diskHash(pair.primary, vmId, disk));
  });
});
