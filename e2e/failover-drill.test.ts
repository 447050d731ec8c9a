/**
 * Issue 6, tests 1 and 2: a disaster-recovery drill through the console in Chromium against two
 * real agents. Test failover from an older point and stop it; planned failover (a console job),
 * reversed and healthy; the primary's agent killed, unplanned failover to a chosen point,
 * complete; the old primary returns fenced and Reverse Replication resynchronizes it. Then the
 * console is killed in the middle of a planned failover job and finishes it by itself after a
 * restart. Disk hashes are compared through the agent API at each step.
 *
 * Replication is enabled with the Enable Replication wizard. Set up through the agent API: the
 * VM, guest writes, replication cycles (replicate-now, so the test knows what each point holds)
 * and the agents' clock (hourly recovery points).
 */
import { randomBytes, randomInt } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, waitFor, type AgentProcess, type Pair } from "../server/agent/testing/harness.js";
import { connectServer, shot, signIn, startConsoleProcess, type ConsoleProcess, startConsoleLab, stopConsoleLab } from "./support.js";

const DISK = 64 * 1024 * 1024;
const HV01 = "hv01.lab.test";
const HV02 = "hv02.lab.test";

let pair: Pair;
let consoleProc: ConsoleProcess;
let browser: Browser;
let page: Page;
let vmId: string;

beforeAll(async () => {
  ({ pair, consoleProc, browser } = await startConsoleLab());
}, 300_000);

afterAll(async () => {
  await stopConsoleLab({ pair, consoleProc, browser });
});

const hash = (a: AgentProcess) => diskHash(a, vmId);
const pointHash = async (a: AgentProcess, pointId: string) => (await a.ok<{ sha256: string }>("GET", `/api/v1/vms/${vmId}/recovery-points/${pointId}/disks/0/hash`)).sha256;
const agentVm = (a: AgentProcess) => a.ok<{ state: string; isReplica: boolean; replication: { role: string; state: string }[] }>("GET", `/api/v1/vms/${vmId}`);
async function write(a: AgentProcess, blocks = 16): Promise<void> {
  for (let i = 0; i < blocks; i++) await a.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${randomInt(DISK / 4096) * 4096}`, randomBytes(4096));
}
async function replicate(a: AgentProcess): Promise<void> {
  const r = await a.ok<{ ok: boolean; error?: string }>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
  expect(r.ok, r.error).toBe(true);
}
/** An hourly point with what is written now, then newer writes: answers the point's id on `replica`. */
async function olderPoint(primary: AgentProcess, replica: AgentProcess): Promise<string> {
  await pair.advanceClock(3600_000);
  await write(primary);
  await replicate(primary);
  const points = await replica.ok<{ id: string; kind: string; seq: number }[]>("GET", `/api/v1/vms/${vmId}/recovery-points`);
  await pair.advanceClock(20 * 60_000);
  await write(primary);
  await replicate(primary);
  return points.find((p) => p.kind !== "latest")!.id;
}

const row = (name = "sql-01") => page.locator(`[data-testid="vm-row-${name}"]`);
async function selectVm(host: string, name = "sql-01"): Promise<void> {
  await page.click(`[data-testid="host-${host}"]`);
  await row(name).click();
}
async function replicationAction(kind: string): Promise<void> {
  await page.click("[data-testid=action-replication]");
  await page.click(`[data-testid=action-replication-${kind}]`);
}
/** Opens a Replication submenu item once the VM's new state (live from the agents) enables it. */
async function openWhenEnabled(kind: string): Promise<void> {
  await waitFor(`${kind} enabled`, async () => {
    await row().click();
    await page.click("[data-testid=action-replication]");
    const item = page.locator(`[data-testid=action-replication-${kind}]`);
    if ((await item.count()) > 0 && (await item.isEnabled())) return true;
    if ((await page.locator("[data-testid=action-submenu]").count()) > 0) await page.click("[data-testid=action-replication]");
    return false;
  }, 10_000);
  await page.click(`[data-testid=action-replication-${kind}]`);
}
/** Next in a replication wizard, then waits for the page it leads to. */
async function next(expected: string): Promise<void> {
  await page.click("[data-testid=wizard-next]");
  await expect.poll(() => page.locator("[data-testid=replication-wizard] h2").textContent(), { timeout: 10_000 }).toBe(expected);
}
const rowState = (name: string, col: string) => row(name).locator(`[data-col=${col}]`).textContent();

describe("failover drill through the console", () => {
  it("connects both servers; the replicating VM is healthy", async () => {
    page = await signIn(browser, consoleProc.url, consoleProc.admin.name, consoleProc.admin.password);
    await connectServer(page, pair.primary.url, HV01);
    await connectServer(page, pair.replica.url, HV02);
    vmId = (await pair.primary.ok<{ id: string }>("POST", "/api/v1/vms", { name: "sql-01", disks: [{ sizeBytes: DISK }], workload: { pattern: "idle", rateMiBps: 1 } })).id;
    // Enable Replication wizard: hv02, every 15 minutes (cycles are run by the test), 4 hourly points.
    await selectVm(HV01);
    await replicationAction("enable");
    await page.waitForSelector("[data-testid=replication-wizard]");
    await next("Specify Replica Server");
    await page.fill("[data-testid=wizard-replica-server]", HV02);
    await next("Specify Connection Parameters");
    await next("Choose Replication VHDs");
    await next("Configure Replication Frequency");
    await page.selectOption("[data-testid=wizard-frequency]", "900");
    await next("Configure Additional Recovery Points");
    await page.click("[data-testid=wizard-points-yes]");
    await page.fill("[data-testid=wizard-history]", "4");
    await next("Choose Initial Replication Method");
    await next("Summary");
    await page.click("[data-testid=wizard-finish]");
    await page.waitForSelector("[data-testid=wizard-completed]", { timeout: 30_000 });
    await page.click("[data-testid=wizard-close]");
    await write(pair.primary);
    await replicate(pair.primary);
    await waitFor("health Normal", async () => (await rowState("sql-01", "health")) === "Normal", 15_000);
    expect(await hash(pair.replica)).toBe(await hash(pair.primary));
  });

  it("test failover from an older point, then Stop Test Failover", async () => {
    const point = await olderPoint(pair.primary, pair.replica);
    await selectVm(HV02);
    await replicationAction("test-failover");
    await page.click(`[data-testid=recovery-point][data-point-id="${point}"]`);
    // A test network must have a name; the message stands beside the field.
    await page.click("[data-testid=test-failover-connect]");
    await page.fill("[data-testid=test-failover-network]", "  ");
    await page.click("[data-testid=test-failover-ok]");
    await expect(page.locator("[data-testid=error-network]").textContent()).resolves.toMatch(/name/);
    await page.fill("[data-testid=test-failover-network]", "Test Network");
    await shot(page, "drill-01-test-failover");
    await page.click("[data-testid=test-failover-ok]");
    await page.waitForSelector("[data-testid=test-failover-dialog]", { state: "detached" });
    await row("sql-01 - Test").waitFor({ timeout: 10_000 });
    const testVm = (await pair.replica.ok<{ id: string; name: string }[]>("GET", "/api/v1/vms")).find((v) => v.name === "sql-01 - Test")!;
    expect(await diskHash(pair.replica, testVm.id)).toBe(await pointHash(pair.replica, point));
    expect(await pair.replica.ok<{ networkConnected: boolean; networkName: string }>("GET", `/api/v1/vms/${testVm.id}`)).toMatchObject({ networkConnected: true, networkName: "Test Network" });
    expect(await pointHash(pair.replica, point)).not.toBe(await hash(pair.replica));
    await shot(page, "drill-02-test-vm");

    await row().click();
    await replicationAction("stop-test-failover");
    await shot(page, "drill-03-stop-test-failover");
    await page.click("[data-testid=stop-test-failover-ok]");
    await row("sql-01 - Test").waitFor({ state: "detached", timeout: 10_000 });
  });

  it("planned failover runs as a job to the end: reversed, started, healthy, no data lost", async () => {
    await write(pair.primary);
    const finalHash = await hash(pair.primary);
    await selectVm(HV01);
    await replicationAction("planned-failover");
    await page.waitForSelector('[data-testid=planned-check][data-ok=true] >> nth=2');
    await shot(page, "drill-04-planned-failover-checks");
    await page.click("[data-testid=planned-failover-ok]");
    await page.waitForSelector("[data-testid=job-steps][data-status=succeeded]", { timeout: 60_000 });
    await shot(page, "drill-05-planned-failover-done");
    await page.click("[data-testid=planned-failover-close]");

    expect(await agentVm(pair.replica)).toMatchObject({ state: "Running", isReplica: false, replication: [{ role: "primary", state: "Replicating" }] });
    expect(await agentVm(pair.primary)).toMatchObject({ isReplica: true, replication: [{ role: "replica" }] });
    expect(await hash(pair.replica)).toBe(finalHash);
    await selectVm(HV02);
    await waitFor("hv02 primary and Normal", async () => {
      const rel = (await pair.replica.ok<{ replication: { health: string; healthReasons: string[]; state: string }[] }>("GET", `/api/v1/vms/${vmId}`)).replication[0];
      if ((await rowState("sql-01", "health")) !== "Normal") throw new Error(`UI: ${await rowState("sql-01", "health")}; agent: ${JSON.stringify(rel)}`);
      if ((await rowState("sql-01", "state")) !== "Running") throw new Error(`row: ${await row().textContent()}`);
      return true;
    }, 15_000).catch(async (err) => {
      await shot(page, "drill-06-failed-health");
      throw err;
    });
    await page.click("[data-testid=tab-jobs]");
    await page.waitForSelector("[data-testid=job-row][data-kind=planned-failover][data-status=succeeded]");
    await shot(page, "drill-06-jobs-pane");
    await page.click("[data-testid=tab-events]");
    await write(pair.replica);
    await replicate(pair.replica);
    expect(await hash(pair.primary)).toBe(await hash(pair.replica));
  });

  it("the primary's agent dies: Failover to a chosen point with its data loss, then Complete", async () => {
    const point = await olderPoint(pair.replica, pair.primary);
    const expected = await pointHash(pair.primary, point);
    // While the primary runs the VM, the agent refuses and the dialog lists what it checked.
    await selectVm(HV01);
    await replicationAction("failover");
    await page.click("[data-testid=failover-ok]");
    await expect(page.locator("[data-testid=dialog-error]").textContent()).resolves.toMatch(/Failed: .*Running/);
    await shot(page, "drill-07-failover-refused");
    await page.click('[data-testid=failover-dialog] button:text-is("Cancel")');
    await pair.replica.kill();
    await page.waitForSelector(`[data-testid="host-${HV02}"][data-status=unreachable]`, { timeout: 10_000 });

    // The latest point first, then Cancel Failover, then the chosen older point.
    await replicationAction("failover");
    await page.click("[data-testid=failover-ok]");
    await page.waitForSelector("[data-testid=failover-dialog]", { state: "detached", timeout: 30_000 });
    await waitFor("failed over", async () => (await agentVm(pair.primary)).replication[0]?.state === "Failed over (waiting for completion)");
    await openWhenEnabled("cancel-failover");
    await shot(page, "drill-08-cancel-failover");
    await page.click("[data-testid=cancel-failover-ok]");
    await page.waitForSelector("[data-testid=cancel-failover]", { state: "detached", timeout: 30_000 });
    await waitFor("a replica again", async () => (await agentVm(pair.primary)).replication[0]?.state === "Replicating");
    await openWhenEnabled("failover");
    await page.click(`[data-testid=recovery-point][data-point-id="${point}"]`);
    await expect(page.locator("[data-testid=data-loss]").textContent()).resolves.toMatch(/are lost/);
    await shot(page, "drill-09-failover-point");
    await page.click("[data-testid=failover-ok]");
    await page.waitForSelector("[data-testid=failover-dialog]", { state: "detached", timeout: 30_000 });
    await waitFor("failed over", async () => (await agentVm(pair.primary)).replication[0]?.state === "Failed over (waiting for completion)");
    expect(await hash(pair.primary)).toBe(expected);

    await openWhenEnabled("complete-failover");
    await shot(page, "drill-10-complete-failover");
    await page.click("[data-testid=complete-failover-ok]");
    await page.waitForSelector("[data-testid=complete-failover]", { state: "detached", timeout: 30_000 });
    await waitFor("complete", async () => (await agentVm(pair.primary)).replication[0]?.state === "Failover complete");
    expect(await hash(pair.primary)).toBe(expected);
  });

  it("the old primary returns fenced; Reverse Replication resynchronizes it", async () => {
    await pair.replica.start();
    await page.waitForSelector(`[data-testid="host-${HV02}"][data-status=connected]`, { timeout: 15_000 });
    // Its next cycle tells it of the failover: it is fenced and its VM may not start.
    const refused = await pair.replica.ok<{ ok: boolean }>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`).catch(() => ({ ok: false }));
    expect(refused.ok).toBe(false);
    await waitFor("fenced", async () => (await agentVm(pair.replica)).replication[0]?.state === "Failover complete");
    expect((await pair.replica.api("POST", `/api/v1/vms/${vmId}/power`, { action: "start" })).status).toBe(409);

    await selectVm(HV01);
    await replicationAction("reverse");
    await page.waitForSelector("[data-testid=reverse-before-you-begin]");
    await shot(page, "drill-11-reverse-before-you-begin");
    await next("Specify Replica Server");
    await expect(page.inputValue("[data-testid=wizard-replica-server]")).resolves.toBe(HV02);
    await next("Specify Connection Parameters");
    await expect(page.inputValue("[data-testid=wizard-port]")).resolves.toBe(String(pair.replica.ports.https));
    await page.fill("[data-testid=wizard-port]", "70000");
    await page.click("[data-testid=wizard-next]");
    await expect(page.locator("[data-testid=error-replicaPort]").textContent()).resolves.toMatch(/65535/);
    await shot(page, "drill-12-reverse-port-error");
    await page.fill("[data-testid=wizard-port]", String(pair.replica.ports.https));
    await next("Configure Replication Frequency");
    await expect(page.inputValue("[data-testid=wizard-frequency]")).resolves.toBe("900");
    await next("Configure Additional Recovery Points");
    await expect(page.isChecked("[data-testid=wizard-points-yes]")).resolves.toBe(true);
    await next("Summary");
    await expect(page.locator("[data-testid=wizard-summary]").textContent()).resolves.toMatch(/Resynchronization/);
    await shot(page, "drill-13-reverse-summary");
    await page.click("[data-testid=wizard-finish]");
    await page.waitForSelector("[data-testid=reverse-progress] [data-testid=job-steps][data-status=succeeded]", { timeout: 120_000 });
    await shot(page, "drill-14-reverse-done");
    // The VM's Status showed the job's step; it clears when the job ends.
    await expect.poll(() => rowState("sql-01", "status"), { timeout: 3000 }).toBe("");
    await page.click("[data-testid=wizard-close]");
    expect(await agentVm(pair.replica)).toMatchObject({ isReplica: true, replication: [{ role: "replica", state: "Replicating" }] });
    expect(await hash(pair.replica)).toBe(await hash(pair.primary));
    await waitFor("hv01 Normal", async () => (await rowState("sql-01", "health")) === "Normal", 15_000);
  });

  it("a planned failover job whose console is killed mid-way completes by itself after a restart", async () => {
    await consoleProc.stop();
    consoleProc = await startConsoleProcess(pair.dir, consoleProc, { RM_JOB_FAILPOINT: "Fail over on the Replica server" });
    await page.reload();
    await selectVm(HV01);
    // The VM runs: the check fails and Fail Over stays disabled.
    await replicationAction("planned-failover");
    await page.waitForSelector("[data-testid=planned-check][data-ok=false]");
    await expect(page.locator("[data-testid=planned-failover-ok]").isDisabled()).resolves.toBe(true);
    await shot(page, "drill-15-planned-failover-check-failed");
    await page.click('[data-testid=planned-failover-dialog] button:text-is("Cancel")');
    await page.click("[data-testid=action-turn-off]");
    await page.click("[data-testid=confirm-yes]");
    await waitFor("Off", async () => (await rowState("sql-01", "state")) === "Off", 10_000);
    await write(pair.primary);
    const finalHash = await hash(pair.primary);
    const exited = new Promise((ok) => consoleProc.child.once("exit", ok));
    await replicationAction("planned-failover");
    await page.waitForSelector('[data-testid=planned-check][data-ok=true] >> nth=2');
    await page.click("[data-testid=planned-failover-ok]");
    await exited;
    expect(consoleProc.child.signalCode).toBe("SIGKILL");
    expect((await agentVm(pair.primary)).replication[0]?.state).toBe("Prepared for planned failover");
    await shot(page, "drill-16-console-killed");

    consoleProc = await startConsoleProcess(pair.dir, consoleProc);
    await waitFor("the job completed after the restart", async () => (await agentVm(pair.replica)).state === "Running", 60_000);
    await page.reload();
    await page.click("[data-testid=tab-jobs]");
    // The newest job, first in the list.
    await waitFor("the resumed job shown succeeded", async () => (await page.locator("[data-testid=job-row]").first().getAttribute("data-status")) === "succeeded", 15_000);
    await page.locator("[data-testid=job-row]").first().click();
    await shot(page, "drill-17-job-resumed");
    expect(await agentVm(pair.replica)).toMatchObject({ isReplica: false, replication: [{ role: "primary", state: "Replicating" }] });
    expect(await agentVm(pair.primary)).toMatchObject({ isReplica: true, replication: [{ role: "replica" }] });
    expect(await hash(pair.replica)).toBe(finalHash);
    // The drill goes on: replication runs hv02 → hv01 again.
    await write(pair.replica);
    await replicate(pair.replica);
    expect(await hash(pair.primary)).toBe(await hash(pair.replica));
  });

  it("a job that fails says why in the Jobs pane, and Retry there finishes it (failback)", async () => {
    // hv02 is the primary and runs the VM; hv01, its Replica server, is down when the job starts.
    await selectVm(HV02);
    await page.click("[data-testid=action-turn-off]");
    await page.click("[data-testid=confirm-yes]");
    await waitFor("Off", async () => (await rowState("sql-01", "state")) === "Off", 10_000);
    await write(pair.replica);
    const finalHash = await hash(pair.replica);
    await pair.primary.kill();
    await replicationAction("planned-failover");
    await page.waitForSelector("[data-testid=planned-check][data-ok=true] >> nth=2");
    await page.click("[data-testid=planned-failover-ok]");
    await page.waitForSelector("[data-testid=planned-failover-progress] [data-testid=job-steps][data-status=failed]", { timeout: 60_000 });
    await page.click("[data-testid=planned-failover-close]");
    await expect.poll(() => rowState("sql-01", "status"), { timeout: 5000 }).toMatch(/failed/);
    await page.click("[data-testid=tab-jobs]");
    await page.locator("[data-testid=job-row]").first().click();
    await expect(page.locator("[data-testid=job-detail] [data-testid=job-error]").textContent()).resolves.toMatch(/Prepare the primary virtual machine for failover failed: .*(Retry|Cancel)/);
    await shot(page, "drill-18-job-failed");

    await pair.primary.start();
    await page.waitForSelector(`[data-testid="host-${HV01}"][data-status=connected]`, { timeout: 15_000 });
    await page.click("[data-testid=job-retry]");
    await page.waitForSelector("[data-testid=job-detail] [data-testid=job-steps][data-status=succeeded]", { timeout: 60_000 });
    await shot(page, "drill-19-job-retried");
    expect(await agentVm(pair.primary)).toMatchObject({ state: "Running", isReplica: false, replication: [{ role: "primary", state: "Replicating" }] });
    expect(await agentVm(pair.replica)).toMatchObject({ isReplica: true, replication: [{ role: "replica" }] });
    expect(await hash(pair.primary)).toBe(finalHash);
  });
});
