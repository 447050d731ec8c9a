/**
 * Start Replication at a date and time after enabling (PATCH …/replication with initialStartAt):
 * schedule, reschedule across an agent restart, cancel, refused once the copy has started, and
 * bad times. The agents share a test clock, so hours pass in seconds.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, startPair, waitFor, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const HOUR = 3600_000;
/** Longer than the primary's policy check (5 s): a copy that was due would have started. */
const POLICY_WAIT_MS = 6500;

interface Rel {
  state: string;
  initialStartAt?: string | null;
  lastAckedSeq: number;
}
interface Answer extends Rel {
  error?: { code: string; message: string; details?: { issues?: { field: string }[]; state?: string } };
}

describe("scheduling the initial replication after enabling", () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => pair?.cleanup());

  const rel = async (vmId: string) => (await pair.primary.ok<Rel[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!;
  const patch = (vmId: string, body: unknown) => pair.primary.api<Answer>("PATCH", `/api/v1/vms/${vmId}/replication`, body);
  const at = (ms: number) => new Date(pair.clockNow() + ms).toISOString();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** A VM with some data, enabled without starting its initial copy. */
  async function readyVm(name: string): Promise<string> {
    const id = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: 16 * MiB }] })).id;
    await pair.primary.ok("PUT", `/api/v1/vms/${id}/disks/0/data?offset=${3 * MiB}`, randomBytes(256 * 1024));
    await pair.primary.ok("POST", `/api/v1/vms/${id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    return id;
  }

  it("schedules, reschedules (kept across a restart) and starts the copy when it is due", async () => {
    const vmId = await readyVm("sched-01");
    const first = at(2 * HOUR);
    const scheduled = await patch(vmId, { initialStartAt: first });
    expect(scheduled.status, JSON.stringify(scheduled.body)).toBe(200);
    expect(scheduled.body).toMatchObject({ state: "Ready for initial replication", initialStartAt: new Date(first).toISOString() });

    const later = at(5 * HOUR);
    expect((await patch(vmId, { initialStartAt: later })).body.initialStartAt).toBe(new Date(later).toISOString());
    await pair.primary.restart();
    expect(await rel(vmId)).toMatchObject({ state: "Ready for initial replication", initialStartAt: new Date(later).toISOString() });

    // Past the first time but not the second: nothing starts.
    await pair.advanceClock(3 * HOUR);
    await sleep(POLICY_WAIT_MS);
    expect((await rel(vmId)).state).toBe("Ready for initial replication");

    await pair.advanceClock(3 * HOUR);
    await waitFor("the rescheduled initial copy", async () => (await rel(vmId)).state === "Replicating", 30_000);
    expect((await rel(vmId)).initialStartAt ?? null).toBeNull();
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    const events = await pair.primary.ok<{ kind: string; message: string }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
    expect(events.filter((e) => e.kind === "replication.initial-scheduled").map((e) => e.message)).toEqual([
      `Initial replication of 'sched-01' is scheduled for ${new Date(first).toISOString()}.`,
      `Initial replication of 'sched-01' is scheduled for ${new Date(later).toISOString()}.`,
    ]);

    // Once the copy has started (here: is done), there is nothing left to schedule.
    const refused = await patch(vmId, { initialStartAt: at(HOUR) });
    expect(refused.status).toBe(409);
    expect(refused.body.error!.message).toMatch(/has already started \(replication is Replicating\); it can be scheduled only while the relationship is Ready for initial replication/);
  });

  it("cancels a schedule made at enable time: the copy then waits for Start Replication", async () => {
    const id = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "sched-02", disks: [{ sizeBytes: 16 * MiB }] })).id;
    await pair.primary.ok("POST", `/api/v1/vms/${id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: pair.replica.ports.https,
      frequencySeconds: 900,
      initialReplication: { method: "network", startAt: at(HOUR) },
    });
    const cancelled = await patch(id, { initialStartAt: null });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ state: "Ready for initial replication", initialStartAt: null });
    await pair.advanceClock(2 * HOUR);
    await sleep(POLICY_WAIT_MS);
    expect((await rel(id)).state).toBe("Ready for initial replication");
    const events = await pair.primary.ok<{ kind: string }[]>("GET", `/api/v1/events?vmId=${id}&limit=1000`);
    expect(events.some((e) => e.kind === "replication.initial-unscheduled")).toBe(true);
    // Start Replication now still works.
    expect((await pair.primary.ok<{ ok: boolean }>("POST", `/api/v1/vms/${id}/replication/replicate-now`)).ok).toBe(true);
    expect((await rel(id)).state).toBe("Replicating");
  });

  it("refuses bad times by field and leaves the other settings of a refused change alone", async () => {
    const vmId = await readyVm("sched-03");
    const past = await patch(vmId, { initialStartAt: at(-60_000), frequencySeconds: 30 });
    expect(past.status).toBe(400);
    expect(past.body.error!.message).toMatch(/^initialStartAt: .* is not in the future \(this host's time is .*\); choose a later time, or start the initial replication now/);
    const tooFar = await patch(vmId, { initialStartAt: at(8 * 24 * HOUR) });
    expect(tooFar.status).toBe(400);
    expect(tooFar.body.error!.message).toMatch(/^initialStartAt: the initial replication can be scheduled at most 7 days ahead/);
    const garbled = await patch(vmId, { initialStartAt: "tomorrow at noon" });
    expect(garbled.status).toBe(400);
    expect(garbled.body.error!.details!.issues!.map((i) => i.field)).toEqual(["body.initialStartAt"]);
    expect(await rel(vmId)).toMatchObject({ state: "Ready for initial replication", frequencySeconds: 900 });
    expect((await rel(vmId)).initialStartAt ?? null).toBeNull();
    // Within 7 days by the agent's clock.
    const ok = await patch(vmId, { initialStartAt: at(7 * 24 * HOUR - 60_000) });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ frequencySeconds: 900, state: "Ready for initial replication" });
    // Enabled without a start and scheduled only now, with no restart in between: it starts when due.
    await pair.advanceClock(7 * 24 * HOUR);
    await waitFor("the initial copy scheduled after enabling", async () => (await rel(vmId)).state === "Replicating", 30_000);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });
});
