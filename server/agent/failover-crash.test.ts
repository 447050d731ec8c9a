/**
 * Issue 4, test 5: kill -9 of either agent in the middle of each failover step. After the
 * restart the step can be retried (or rolled back), no disk is torn, the VM is the primary on
 * exactly one host (the other holds the replica or is fenced and refuses to start), and
 * replication then works in the new direction.
 *
 *   planned, hv01 → hv02: hv01 killed at failover.handover-fenced, retried from hv01
 *   planned failback, hv02 → hv01: hv01 (the replica side) killed at failover.after-handover,
 *     retried on hv01
 *   planned, prepared then rolled back: hv01 killed at failover.handover-fenced, cancelled
 *   unplanned on hv02: killed at failover.complete-mid, completion resumed at start-up;
 *     then killed at failover.reverse-after-handover, Reverse Replication retried
 *   unplanned on hv02: killed at failover.complete-before-save, then Complete retried
 */
import { randomBytes, randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome } from "./replication/primary.js";
import type { RecoveryPointInfo } from "./replication/replica-store.js";
import { diskHash, startPair, waitFor, type AgentProcess, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const DISK = 16 * MiB;
const HOUR = 3600_000;

type Rec = { role: string; state: string; lastAckedSeq?: number; lastAppliedSeq?: number };

function helpers(get: () => { pair: Pair; vmId: string }) {
  const path = (p: string) => `/api/v1/vms/${get().vmId}${p}`;
  const name = (a: AgentProcess) => (a === get().pair.primary ? "hv01" : "hv02");
  return {
    path,
    vm: (a: AgentProcess) => a.ok<VmView & { isReplica: boolean }>("GET", path("")),
    rec: async (a: AgentProcess) => (await a.ok<Rec[]>("GET", path("/replication")))[0],
    hash: (a: AgentProcess) => diskHash(a, get().vmId),
    replicateNow: (a: AgentProcess) => a.ok<CycleOutcome>("POST", path("/replication/replicate-now")),
    async scatter(a: AgentProcess, n: number): Promise<void> {
      for (let i = 0; i < n; i++) await a.ok("PUT", path(`/disks/0/data?offset=${randomInt(DISK / 4096) * 4096}`), randomBytes(4096 * randomInt(1, 3)));
    },
    /** The step dies with the agent: the call fails (a dropped connection or a 4xx/5xx). */
    async diesDuring(caller: AgentProcess, method: string, p: string, body: unknown, victim: AgentProcess): Promise<void> {
      const res = await caller.api(method, path(p), body).catch((err: Error) => ({ status: 0, body: err.message }));
      expect(res.status === 0 || res.status >= 400, `${name(caller)} ${method} ${p} should fail: ${res.status} ${JSON.stringify(res.body)}`).toBe(true);
      await victim.exited();
    },
    /** `primary` runs the VM's replication; `other` is its replica (or fenced) and may not start it. */
    async oneprimary(primary: AgentProcess, other: AgentProcess, otherRole: "replica" | "fenced"): Promise<void> {
      const p = await this.vm(primary);
      expect(p.isReplica, `${name(primary)} runs the VM as primary`).toBe(false);
      const mine = await this.rec(primary);
      // The primary side of the relationship, or a completed failover not reversed yet.
      if (otherRole === "fenced") expect(mine).toMatchObject({ role: "replica", state: "Failover complete" });
      else expect(mine?.role).toBe("primary");
      const o = await this.vm(other);
      expect(o.state).toBe("Off");
      if (otherRole === "replica") {
        expect(o.isReplica, `${name(other)} holds the replica`).toBe(true);
        expect((await this.rec(other))?.role).toBe("replica");
      } else {
        expect(await this.rec(other)).toMatchObject({ role: "primary", state: "Failover complete" });
      }
      const start = await other.api<{ error: { message: string } }>("POST", path("/power"), { action: "start" });
      expect(start.status, `${name(other)} must refuse to start the VM`).toBe(409);
      expect(start.body.error.message).toMatch(/replica|second primary|Reverse Replication/i);
    },
    /** A write on the primary and a cycle give equal disks on both hosts. */
    async replicatesFrom(primary: AgentProcess, replica: AgentProcess): Promise<void> {
      await this.scatter(primary, 3);
      const out = await this.replicateNow(primary);
      expect(out.ok, out.error).toBe(true);
      expect(await this.hash(replica)).toBe(await this.hash(primary));
    },
  };
}

async function replicatedPair(name: string, hours = 0): Promise<{ pair: Pair; vmId: string }> {
  const pair = await startPair();
  const vmId = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: DISK }] })).id;
  const path = (p: string) => `/api/v1/vms/${vmId}${p}`;
  const scatter = async (n: number) => {
    for (let i = 0; i < n; i++) await pair.primary.ok("PUT", path(`/disks/0/data?offset=${randomInt(DISK / 4096) * 4096}`), randomBytes(4096));
  };
  await scatter(10);
  await pair.primary.ok("POST", path("/replication"), { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, recoveryHistory: 2, startInitialReplication: false });
  expect((await pair.primary.ok<CycleOutcome>("POST", path("/replication/replicate-now"))).ok).toBe(true);
  for (let h = 0; h < hours; h++) {
    await pair.advanceClock(HOUR);
    await scatter(5);
    expect((await pair.primary.ok<CycleOutcome>("POST", path("/replication/replicate-now"))).ok).toBe(true);
  }
  return { pair, vmId };
}

describe("planned failover under kill -9", () => {
  let pair: Pair;
  let vmId: string;
  const h = helpers(() => ({ pair, vmId }));

  beforeAll(async () => {
    ({ pair, vmId } = await replicatedPair("planned-crash"));
  });
  afterAll(async () => pair?.cleanup());

  it("old primary killed after fencing itself, before converting its record: the retried failover finishes with no data loss", async () => {
    const { primary: A, replica: B } = pair;
    await h.scatter(A, 6); // not replicated yet: prepare must carry it
    const final = await h.hash(A);
    await A.restart(["failover.handover-fenced"]);
    await h.diesDuring(A, "POST", "/replication/planned-failover", { start: false }, A);
    await A.start();
    // Nothing half-converted is visible on hv02: it is still the replica, at the primary's bytes.
    expect(await h.rec(B)).toMatchObject({ role: "replica" });
    expect(await h.hash(B)).toBe(final);
    expect(await h.hash(A)).toBe(final);

    const run = await A.api<{ steps: { ok: boolean }[] }>("POST", h.path("/replication/planned-failover"), { start: false });
    expect(run.status, JSON.stringify(run.body)).toBe(200);
    expect(run.body.steps.every((s) => s.ok)).toBe(true);
    await h.oneprimary(B, A, "replica");
    expect(await h.rec(B)).toMatchObject({ role: "primary", state: "Replicating" });
    expect(await h.hash(B)).toBe(final);
    expect(await h.hash(A)).toBe(final);
    await h.replicatesFrom(B, A);
  });

  it("replica side killed after the old primary handed over: retried on it, the failback finishes with no data loss", async () => {
    // Now hv02 is the primary; failing back makes hv01 (the replica side) run the failover step.
    const { primary: A, replica: B } = pair;
    await h.scatter(B, 5);
    const final = await h.hash(B);
    await A.restart(["failover.after-handover"]);
    await h.diesDuring(B, "POST", "/replication/planned-failover", { start: false }, A);
    await A.start();
    // hv02 already handed over: it is hv01's replica, fenced; hv01 still holds its replica record.
    expect(await h.vm(B)).toMatchObject({ isReplica: true, state: "Off" });
    expect(await h.hash(A)).toBe(final);

    const step = await A.api<{ steps: { ok: boolean }[] }>("POST", h.path("/replication/planned-failover"), { start: false });
    expect(step.status, JSON.stringify(step.body)).toBe(200);
    await h.oneprimary(A, B, "replica");
    expect(await h.rec(A)).toMatchObject({ role: "primary", state: "Replicating" });
    expect(await h.hash(A)).toBe(final);
    expect(await h.hash(B)).toBe(final);
    await h.replicatesFrom(A, B);
  });

  // BUG: becomeReplica() (planned.ts) saves the VM config fenced (replicaOf) before it converts
  // the record; killed in between, hv01 restarts with a primary record "Prepared for planned
  // failover" and a VM marked as a replica. Cancel puts the record back to Replicating but
  // leaves replicaOf: the primary VM can never start again ("is a Replica virtual machine").
  it("old primary killed after fencing itself: cancelling instead rolls back to replication as before, and its VM can start", async () => {
    const { primary: A, replica: B } = pair;
    await h.scatter(A, 4);
    const final = await h.hash(A);
    await A.restart(["failover.handover-fenced"]);
    await h.diesDuring(A, "POST", "/replication/planned-failover", { start: false }, A);
    await A.start();
    expect((await A.ok<Rec>("POST", h.path("/replication/planned-failover/cancel"))).state).toBe("Replicating");
    expect(await h.hash(A)).toBe(final);
    expect(await h.hash(B)).toBe(final);
    // Rolled back: hv01 is the primary again, as if the failover had never been tried.
    const start = await A.api("POST", h.path("/power"), { action: "start" });
    expect(start.status, `the cancelled primary must be able to start: ${JSON.stringify(start.body)}`).toBe(200);
    expect((await h.vm(A)).isReplica, "the cancelled primary must not stay fenced as a replica").toBe(false);
    await A.ok("POST", h.path("/power"), { action: "turn-off" });
    await h.oneprimary(A, B, "replica");
    await h.replicatesFrom(A, B);
  });
});

describe("unplanned failover under kill -9: Complete, then Reverse Replication", () => {
  let pair: Pair;
  let vmId: string;
  const h = helpers(() => ({ pair, vmId }));

  beforeAll(async () => {
    ({ pair, vmId } = await replicatedPair("unplanned-crash-1", 2));
    await h.scatter(pair.primary, 4); // lost with the primary
    await pair.primary.kill();
  });
  afterAll(async () => pair?.cleanup());

  it("Replica server killed mid-completion: completion resumes at start-up into exactly the failed-over VM's bytes", async () => {
    const { primary: A, replica: B } = pair;
    const older = (await B.ok<RecoveryPointInfo[]>("GET", h.path("/recovery-points"))).filter((p) => p.kind !== "latest").at(-1)!;
    expect((await B.api("POST", h.path("/replication/failover"), { pointId: older.id, start: true })).status).toBe(200);
    await h.scatter(B, 6);
    await B.ok("POST", h.path("/power"), { action: "shutdown" });
    const failedOver = await h.hash(B);

    await B.restart(["failover.complete-mid"]);
    await h.diesDuring(B, "POST", "/replication/failover/complete", undefined, B);
    await B.start();
    await waitFor("the completion resumed at start-up", async () => (await h.rec(B))?.state === "Failover complete");
    expect(await h.hash(B)).toBe(failedOver);
    // Retrying Complete changes nothing.
    const again = await B.api("POST", h.path("/replication/failover/complete"));
    expect(again.status).toBe(409);
    expect(await h.hash(B)).toBe(failedOver);
    await B.restart();
    expect(await h.hash(B)).toBe(failedOver);

    // The old primary comes back and is fenced.
    await A.start();
    expect((await h.replicateNow(A)).ok).toBe(false);
    await h.oneprimary(B, A, "fenced");
  });

  it("Replica server killed after the old primary became the replica: Reverse Replication retried resynchronizes to equal disks", async () => {
    const { primary: A, replica: B } = pair;
    const failedOver = await h.hash(B);
    await B.restart(["failover.reverse-after-handover"]);
    await h.diesDuring(B, "POST", "/replication/reverse", {}, B);
    await B.start();
    expect(await h.vm(A)).toMatchObject({ isReplica: true, state: "Off" });
    expect(await h.hash(B)).toBe(failedOver);

    const reversed = await B.api<Rec>("POST", h.path("/replication/reverse"), {});
    expect(reversed.status, JSON.stringify(reversed.body)).toBe(200);
    await waitFor("the resynchronization after reversing", async () => (await h.rec(B))?.state === "Replicating");
    expect(await h.hash(B)).toBe(failedOver);
    expect(await h.hash(A)).toBe(failedOver);
    await h.oneprimary(B, A, "replica");
    await h.replicatesFrom(B, A);
  });
});

describe("unplanned failover under kill -9: completion written, record not saved", () => {
  let pair: Pair;
  let vmId: string;
  const h = helpers(() => ({ pair, vmId }));

  beforeAll(async () => {
    ({ pair, vmId } = await replicatedPair("unplanned-crash-2", 2));
    await pair.primary.kill();
  });
  afterAll(async () => pair?.cleanup());

  it("Complete retried after the restart leaves exactly the failed-over VM's bytes, and the reverse replicates", async () => {
    const { primary: A, replica: B } = pair;
    const older = (await B.ok<RecoveryPointInfo[]>("GET", h.path("/recovery-points"))).filter((p) => p.kind !== "latest").at(-1)!;
    expect((await B.api("POST", h.path("/replication/failover"), { pointId: older.id, start: false })).status).toBe(200);
    await h.scatter(B, 6);
    const failedOver = await h.hash(B);

    await B.restart(["failover.complete-before-save"]);
    await h.diesDuring(B, "POST", "/replication/failover/complete", undefined, B);
    await B.start();
    const rec = await h.rec(B);
    if (rec?.state !== "Failover complete") {
      const done = await B.api<Rec>("POST", h.path("/replication/failover/complete"));
      expect(done.status, JSON.stringify(done.body)).toBe(200);
    }
    expect(await h.rec(B)).toMatchObject({ role: "replica", state: "Failover complete" });
    expect(await h.hash(B)).toBe(failedOver);
    expect(await B.ok<RecoveryPointInfo[]>("GET", h.path("/recovery-points"))).toHaveLength(1);

    await A.start();
    expect((await h.replicateNow(A)).ok).toBe(false);
    await h.oneprimary(B, A, "fenced");
    expect((await B.api("POST", h.path("/replication/reverse"), {})).status).toBe(200);
    await waitFor("the resynchronization after reversing", async () => (await h.rec(B))?.state === "Replicating");
    expect(await h.hash(A)).toBe(failedOver);
    await h.oneprimary(B, A, "replica");
    await h.replicatesFrom(B, A);
  });
});
