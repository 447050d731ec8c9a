/**
 * Invariants 1 and 3 under kill -9: whichever agent dies, at whichever point of a cycle,
 * the replica disk afterwards equals one completed freeze point (the one before or the one
 * being sent), never a mix; and replication then carries on to equal disks.
 */
import { randomBytes, randomInt } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome as Outcome } from "./replication/primary.js";
import { diskHash, startPair, type AgentProcess, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const DISK = 256 * MiB;

describe("crash safety (kill -9 of either agent)", () => {
  let pair: Pair;
  let vmId: string;
  const replicateNow = (a: AgentProcess) => a.ok<Outcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);

  /** Scattered incompressible writes: several frames per cycle, so "mid" points exist. */
  async function scatterWrites(count = 8): Promise<void> {
    for (let i = 0; i < count; i++) {
      await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${randomInt(DISK / (64 * 1024)) * 64 * 1024}`, randomBytes(64 * 1024));
    }
  }

  async function replicaState(): Promise<{ state: string; lastAppliedSeq: number }> {
    const recs = await pair.replica.ok<{ state: string; lastAppliedSeq: number }[]>("GET", `/api/v1/vms/${vmId}/replication`);
    return recs[0]!;
  }

  beforeAll(async () => {
    pair = await startPair();
    const vm = await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "crashy", disks: [{ sizeBytes: DISK }] });
    vmId = vm.id;
    await scatterWrites(6);
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: pair.replica.ports.http,
      authMode: "http",
      frequencySeconds: 900,
      startInitialReplication: false,
    });
  });
  afterAll(async () => pair?.cleanup());

  it("restarts an initial copy that the replica's crash interrupted", async () => {
    await pair.replica.restart(["replica.initial-mid"]);
    const failed = await replicateNow(pair.primary);
    expect(failed.ok).toBe(false);
    await pair.replica.exited();
    await pair.replica.start();
    expect((await replicaState()).lastAppliedSeq).toBe(-1);
    expect(await replicateNow(pair.primary)).toMatchObject({ ok: true, seq: 0 });
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it.each([
    { point: "replica.receive-mid", recovered: false },
    { point: "replica.after-staged", recovered: true },
    { point: "replica.apply-mid", recovered: true },
    { point: "replica.after-apply", recovered: true },
  ])("replica killed at $point: never torn, then catches up", async ({ point, recovered }) => {
    const before = await diskHash(pair.primary, vmId);
    expect(await diskHash(pair.replica, vmId)).toBe(before);
    const seqBefore = (await replicaState()).lastAppliedSeq;
    await scatterWrites();
    const after = await diskHash(pair.primary, vmId);

    await pair.replica.restart([point]);
    expect((await replicateNow(pair.primary)).ok).toBe(false);
    await pair.replica.exited();
    await pair.replica.start();

    // A staged cycle is re-applied from its redo file at start-up: the new point, whole.
    const onReplica = await diskHash(pair.replica, vmId);
    expect(onReplica).toBe(recovered ? after : before);
    expect((await replicaState()).lastAppliedSeq).toBe(recovered ? seqBefore + 1 : seqBefore);

    const next = await replicateNow(pair.primary);
    expect(next).toMatchObject({ ok: true, seq: (recovered ? seqBefore + 1 : seqBefore) + 1 });
    expect(await diskHash(pair.replica, vmId)).toBe(after);
  });

  it.each(["primary.send-mid", "primary.after-ack"])("primary killed at %s: never torn, then catches up", async (point) => {
    const before = await diskHash(pair.primary, vmId);
    await scatterWrites();
    const after = await diskHash(pair.primary, vmId);

    await pair.primary.restart([point]);
    await expect(replicateNow(pair.primary)).rejects.toThrow();
    await pair.primary.exited();
    await pair.primary.start();

    expect([before, after]).toContain(await diskHash(pair.replica, vmId));
    // The primary does not know whether its last cycle was applied; it asks, then sends
    // everything its write-ahead log says may differ.
    expect(await replicateNow(pair.primary)).toMatchObject({ ok: true });
    expect(await diskHash(pair.replica, vmId)).toBe(after);
    expect(await diskHash(pair.primary, vmId)).toBe(after);
  });

  it("loses no write when the primary is killed under a running workload", async () => {
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/workload`, { pattern: "random-4k", rateMiBps: 4 });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    for (let round = 0; round < 3; round++) {
      await new Promise((r) => setTimeout(r, 200 + randomInt(600)));
      const cycle = replicateNow(pair.primary).catch(() => undefined);
      await new Promise((r) => setTimeout(r, randomInt(150)));
      await pair.primary.kill();
      await cycle;
      await pair.primary.start();
      const vm = await pair.primary.ok<VmView>("GET", `/api/v1/vms/${vmId}`);
      // The lab guest died with its host; tracking survived it.
      expect(vm.state).toBe("Off");
      expect(vm.replication[0]!.state).not.toBe("Resynchronization required");
      expect(await replicateNow(pair.primary)).toMatchObject({ ok: true });
      expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
      await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    }
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
  });

  it("survives the replica being killed at random moments under a running workload", async () => {
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    for (let round = 0; round < 3; round++) {
      await new Promise((r) => setTimeout(r, 200 + randomInt(400)));
      const cycle = replicateNow(pair.primary);
      await new Promise((r) => setTimeout(r, randomInt(100)));
      await pair.replica.kill();
      await cycle;
      await pair.replica.start();
      expect(await replicateNow(pair.primary)).toMatchObject({ ok: true });
    }
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
    await replicateNow(pair.primary);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("says Resynchronization required when a disk changed while tracking was off", async () => {
    await pair.primary.stop();
    const fh = await open(join(pair.dir, "hv01", "vms", vmId, "disk0.raw"), "r+");
    await fh.write(Buffer.from("changed behind the agent's back"), 0, undefined, 4096);
    await fh.close();
    await pair.primary.start();
    const rec = (await pair.primary.ok<VmView>("GET", `/api/v1/vms/${vmId}`)).replication[0]!;
    expect(rec.state).toBe("Resynchronization required");
    expect(rec.reason).toMatch(/modified while change tracking was off/);
    const refused = await pair.primary.api<{ error: { message: string } }>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/Resynchronization required/);
    // Pausing and resuming must not clear the state without a resynchronization.
    const pause = await pair.primary.api<{ error: { message: string } }>("POST", `/api/v1/vms/${vmId}/replication/pause`);
    expect(pause.status).toBe(409);
    expect(pause.body.error.message).toMatch(/would not repair it/);
    const events = await pair.primary.ok<{ kind: string; severity: string; message: string }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
    expect(events.some((e) => e.severity === "error" && /Resynchronization required/.test(e.message))).toBe(true);
  });
});
