/**
 * Planned failover (issue 4, test 2): zero data loss, replication reversed by itself with no
 * initial copy, failback restores the original direction; each step refuses clearly when
 * it makes no sense.
 */
import { randomBytes, randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome } from "./replication/primary.js";
import { diskHash, startPair, waitFor, type AgentProcess, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const DISK = 64 * MiB;

interface Step {
  step: string;
  ok: boolean;
  detail: string;
}

describe("planned failover", () => {
  let pair: Pair;
  let vmId: string;

  const vm = (a: AgentProcess) => a.ok<VmView & { isReplica: boolean }>("GET", `/api/v1/vms/${vmId}`);
  const replicateNow = (a: AgentProcess) => a.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
  const power = (a: AgentProcess, action: string) => a.ok("POST", `/api/v1/vms/${vmId}/power`, { action });

  async function scatter(a: AgentProcess, count: number): Promise<number> {
    for (let i = 0; i < count; i++) await a.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${randomInt(DISK / 4096) * 4096}`, randomBytes(4096));
    return count * 4096;
  }

  beforeAll(async () => {
    pair = await startPair();
    vmId = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "sql-01", disks: [{ sizeBytes: DISK }], workload: { pattern: "random-4k", rateMiBps: 2 } })).id;
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    expect((await replicateNow(pair.primary)).ok).toBe(true);
  });
  afterAll(async () => pair?.cleanup());

  it("refuses while the VM runs, listing each check", async () => {
    await power(pair.primary, "start");
    const checks = await pair.primary.ok<{ steps: Step[] }>("GET", `/api/v1/vms/${vmId}/replication/planned-failover`);
    expect(checks.steps.map((s) => [s.step, s.ok])).toEqual([
      ["Check virtual machine is turned off", false],
      ["Check replication is healthy", true],
      ["Check configuration for allowing reverse replication", true],
    ]);
    const res = await pair.primary.api<{ error: { message: string; details: { steps: Step[] } } }>("POST", `/api/v1/vms/${vmId}/replication/planned-failover`, {});
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/turned off failed/);
    // The replica cannot fail over as planned before the primary was prepared.
    const early = await pair.replica.api<{ error: { message: string } }>("POST", `/api/v1/vms/${vmId}/replication/planned-failover`, {});
    expect(early.status).toBe(409);
    expect(early.body.error.message).toMatch(/has not been prepared/);
  });

  it("can be prepared and cancelled on the primary, after which the replica's failover is refused", async () => {
    for (let i = 0; i < 2; i++) expect((await replicateNow(pair.primary)).ok).toBe(true);
    await power(pair.primary, "turn-off");
    const prepared = await pair.primary.ok<{ steps: Step[]; record: { state: string } }>("POST", `/api/v1/vms/${vmId}/replication/planned-failover/prepare`);
    expect(prepared.record.state).toBe("Prepared for planned failover");
    expect(prepared.steps.every((s) => s.ok)).toBe(true);
    expect((await pair.primary.api("POST", `/api/v1/vms/${vmId}/power`, { action: "start" })).status).toBe(409);
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/planned-failover/cancel`);
    await power(pair.primary, "start");
    // The replica still has the prepared cycle, but the primary no longer hands over.
    const refused = await pair.replica.api<{ error: { message: string } }>("POST", `/api/v1/vms/${vmId}/replication/planned-failover`, {});
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/did not hand .* over: .*not prepared/);
    expect((await vm(pair.replica)).isReplica).toBe(true);
    await power(pair.primary, "turn-off");
  });

  it("fails over with zero data loss, reverses with no initial copy, and fails back", async () => {
    // A workload that stops just before the failover.
    await power(pair.primary, "start");
    await new Promise((r) => setTimeout(r, 700));
    expect((await replicateNow(pair.primary)).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    await power(pair.primary, "shutdown");
    const finalHash = await diskHash(pair.primary, vmId);

    const run = await pair.primary.ok<{ steps: Step[] }>("POST", `/api/v1/vms/${vmId}/replication/planned-failover`, {});
    expect(run.steps.map((s) => s.step)).toEqual([
      "Check virtual machine is turned off",
      "Check replication is healthy",
      "Check configuration for allowing reverse replication",
      "Send data that has not been replicated to Replica server",
      "Check the primary's last changes are applied",
      "Fail over on Replica server",
      "Reverse the replication direction",
      "Start the Replica virtual machine",
    ]);
    expect(run.steps.every((s) => s.ok)).toBe(true);

    // hv02 runs the VM as the primary, from exactly the primary's final bytes.
    const now = await vm(pair.replica);
    expect(now).toMatchObject({ state: "Running", isReplica: false });
    expect(now.replication[0]).toMatchObject({ role: "primary", state: "Replicating" });
    await power(pair.replica, "turn-off");
    expect(await diskHash(pair.replica, vmId)).toBe(finalHash);
    // hv01's VM is now the replica, fenced.
    const old = await vm(pair.primary);
    expect(old).toMatchObject({ isReplica: true, state: "Off" });
    expect(old.replication[0]).toMatchObject({ role: "replica", state: "Replicating" });
    expect((await pair.primary.api("POST", `/api/v1/vms/${vmId}/power`, { action: "start" })).status).toBe(409);
    // Replication runs the other way: only what changed is sent.
    const written = await scatter(pair.replica, 5);
    const back = await replicateNow(pair.replica);
    expect(back.ok, back.error).toBe(true);
    expect(back.changedBytes).toBe(written);
    expect(await diskHash(pair.primary, vmId)).toBe(await diskHash(pair.replica, vmId));

    // Failback restores the original direction, again with no copy.
    const failback = await pair.replica.ok<{ steps: Step[] }>("POST", `/api/v1/vms/${vmId}/replication/planned-failover`, { start: false });
    expect(failback.steps.every((s) => s.ok)).toBe(true);
    expect((await vm(pair.primary)).replication[0]).toMatchObject({ role: "primary", state: "Replicating" });
    expect((await vm(pair.replica)).replication[0]).toMatchObject({ role: "replica" });
    const again = await scatter(pair.primary, 3);
    const forward = await replicateNow(pair.primary);
    expect(forward).toMatchObject({ ok: true, changedBytes: again });
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    await waitFor("the events of both failovers", async () => {
      const events = await pair.primary.ok<{ kind: string }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
      return events.filter((e) => e.kind === "replica.failed-over").length === 1 && events.some((e) => e.kind === "replication.reversed");
    });
  });

  it("right after a reversed failover, refuses an unplanned failover back while the new primary runs the VM", async () => {
    const id = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "split-01", disks: [{ sizeBytes: 4 * MiB }] })).id;
    await pair.primary.ok("POST", `/api/v1/vms/${id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    expect((await pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${id}/replication/replicate-now`)).ok).toBe(true);
    const run = await pair.primary.ok<{ steps: Step[] }>("POST", `/api/v1/vms/${id}/replication/planned-failover`, {});
    expect(run.steps.every((s) => s.ok)).toBe(true);
    expect((await pair.replica.ok<VmView>("GET", `/api/v1/vms/${id}`)).state).toBe("Running");
    // No cycle has come the other way yet; hv01 must still know where to ask its new primary.
    const refused = await pair.primary.api<{ error: { message: string } }>("POST", `/api/v1/vms/${id}/replication/failover`, {});
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/running/i);
    expect((await pair.primary.ok<VmView & { isReplica: boolean }>("GET", `/api/v1/vms/${id}`)).isReplica).toBe(true);
  });

  it("can be driven step by step: prepare on the primary, fail over on the replica", async () => {
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/planned-failover/prepare`);
    const step = await pair.replica.ok<{ steps: Step[] }>("POST", `/api/v1/vms/${vmId}/replication/planned-failover`, { reverse: false, start: false });
    expect(step.steps.find((s) => s.step === "Reverse the replication direction")?.detail).toMatch(/not requested/);
    expect((await vm(pair.replica)).replication).toEqual([]);
    const fenced = await vm(pair.primary);
    expect(fenced.replication[0]).toMatchObject({ role: "primary", state: "Failover complete" });
    const start = await pair.primary.api<{ error: { message: string } }>("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    expect(start.status).toBe(409);
    expect(start.body.error.message).toMatch(/second primary/);
  });
});
