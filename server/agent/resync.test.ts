/**
 * Resynchronization (issue 3, test 2): each trigger leads to "Resynchronization required";
 * the resynchronization compares the disks by hash and sends exactly the differing 4 KiB
 * blocks (asserted in bytes), can be paused and continues where it stopped, runs by policy
 * or at a scheduled time, deletes the replica's older recovery points, and ends with equal disks.
 */
import { randomBytes } from "node:crypto";
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, startPair, waitFor, type Pair } from "./testing/harness.js";
import { replicationHelpers, type RelView as Rel } from "./testing/replication-helpers.js";

const MiB = 1024 * 1024;
const HOUR = 3600_000;

describe("resynchronization", () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => pair?.cleanup());

  const { rel, events, replicateNow, replicated, writeBehindTheAgentsBack, resyncAndWait, completion } = replicationHelpers(() => pair);

  it("repairs a disk changed while tracking was off, sending exactly the differing blocks", async () => {
    const vmId = await replicated("changed-offline", [64 * MiB], { recoveryHistory: 2 });
    await pair.advanceClock(HOUR);
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=0`, randomBytes(4096));
    expect((await replicateNow(vmId)).ok).toBe(true);
    expect((await pair.replica.ok<unknown[]>("GET", `/api/v1/vms/${vmId}/recovery-points`)).length).toBe(3);

    await writeBehindTheAgentsBack(vmId, [
      [4096, 4096],
      [20 * MiB, 64 * 1024],
      [63 * MiB, 3 * 4096],
    ]);
    expect(await rel(vmId)).toMatchObject({ state: "Resynchronization required" });
    const done = await resyncAndWait(vmId);
    expect(done.data).toMatchObject({ comparedBytes: 64 * MiB, differingBytes: 4096 + 64 * 1024 + 3 * 4096 });
    expect(await rel(vmId)).toMatchObject({ state: "Replicating", reason: null, resync: null });
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    // Points older than the resynchronization no longer describe a history: only the latest stays.
    expect((await pair.replica.ok<{ kind: string }[]>("GET", `/api/v1/vms/${vmId}/recovery-points`)).map((p) => p.kind)).toEqual(["latest"]);
    expect((await events(vmId, pair.replica)).some((e) => e.kind === "replica.points-deleted")).toBe(true);
    // Ordinary cycles follow.
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${8 * MiB}`, randomBytes(8192));
    expect(await replicateNow(vmId)).toMatchObject({ ok: true, changedBytes: 8192 });
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("repairs a replica restored from an old backup (it holds less than it acknowledged)", async () => {
    const vmId = await replicated("restored", [32 * MiB]);
    const replicaDir = join(pair.dir, "hv02", "replicas", vmId);
    await pair.replica.stop();
    await copyFile(join(replicaDir, "disk0.raw"), join(pair.dir, "backup.raw"));
    await pair.replica.start();
    const changed = [2 * MiB, 9 * MiB + 8192, 30 * MiB];
    for (const offset of changed) {
      await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${offset}`, randomBytes(4096));
      expect((await replicateNow(vmId)).ok).toBe(true);
    }
    // The Replica server comes back from the backup: disk and state as of cycle 0.
    await pair.replica.stop();
    await copyFile(join(pair.dir, "backup.raw"), join(replicaDir, "disk0.raw"));
    const db = new Database(join(pair.dir, "hv02", "agent.db"));
    const row = db.prepare("SELECT id, record FROM relationships WHERE vm_id = ?").get(vmId) as { id: string; record: string };
    db.prepare("UPDATE relationships SET record = ? WHERE id = ?").run(JSON.stringify({ ...JSON.parse(row.record), lastAppliedSeq: 0 }), row.id);
    db.close();
    await pair.replica.start();
    // The replica refuses the next cycle (out of sequence); the retry asks where it stands.
    expect((await replicateNow(vmId)).ok).toBe(false);
    await waitFor("Resynchronization required", async () => (await rel(vmId)).state === "Resynchronization required");
    expect((await rel(vmId)).reason).toMatch(/holds cycle 0 but had acknowledged cycle 3/);
    const done = await resyncAndWait(vmId);
    expect(done.data?.differingBytes).toBe(changed.length * 4096);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    expect((await replicateNow(vmId)).ok).toBe(true);
  });

  it("requires a resynchronization when pending changes exceed half the disk", async () => {
    const vmId = await replicated("paused-long", [8 * MiB]);
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/pause`);
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${MiB}`, randomBytes(5 * MiB));
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resume`);
    await waitFor("Resynchronization required", async () => (await rel(vmId)).state === "Resynchronization required");
    expect((await rel(vmId)).reason).toMatch(/more than half/);
    const done = await resyncAndWait(vmId);
    expect(done.data?.differingBytes).toBe(5 * MiB);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("can be paused and continues where it stopped", async () => {
    const size = 640 * MiB;
    const vmId = await replicated("big-resync", [size]);
    const writes: [number, number][] = [
      [10 * MiB, 4096],
      [300 * MiB, 8192],
      [600 * MiB, 4096],
    ];
    await writeBehindTheAgentsBack(vmId, writes);
    const mark = (await events(vmId)).at(-1)!.id;
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
    const first = await waitFor("a first range compared", async () => (await events(vmId)).find((e) => e.id > mark && e.kind === "replication.resync-progress"), 60_000, 50);
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/pause`);
    const paused = await rel(vmId);
    expect(paused.state).toBe("Suspended");
    expect(paused.resync!.comparedBytes).toBeGreaterThanOrEqual(first.data!.comparedBytes!);
    expect(paused.resync!.comparedBytes).toBeLessThan(size);
    const afterPause = (await events(vmId)).at(-1)!.id;
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resume`);
    const done = await completion(vmId, afterPause);
    const progress = (await events(vmId)).filter((e) => e.id > afterPause && e.kind === "replication.resync-progress");
    // Continued, not restarted: no range after the pause counts less than what was done before it.
    for (const e of progress) expect(e.data!.comparedBytes).toBeGreaterThan(paused.resync!.comparedBytes);
    expect(done.data).toMatchObject({ comparedBytes: size, differingBytes: 4096 + 8192 + 4096 });
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("starts by itself at a scheduled time, or at once under the automatic policy", async () => {
    const vmId = await replicated("scheduled", [16 * MiB]);
    await writeBehindTheAgentsBack(vmId, [[MiB, 4096]]);
    const at = new Date(Date.now() + 2 * HOUR).toISOString();
    const scheduled = await pair.primary.ok<Rel & { resyncAt: string }>("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, { at });
    expect(scheduled).toMatchObject({ state: "Resynchronization required" });
    const mark = (await events(vmId)).at(-1)!.id;
    await pair.advanceClock(3 * HOUR);
    expect((await completion(vmId, mark)).data?.differingBytes).toBe(4096);

    await pair.primary.ok("PATCH", `/api/v1/vms/${vmId}/replication`, { resyncPolicy: { mode: "automatic" } });
    const again = (await events(vmId)).at(-1)!.id;
    await writeBehindTheAgentsBack(vmId, [[2 * MiB, 4096]], { resyncStartsByItself: true });
    expect((await completion(vmId, again)).data?.differingBytes).toBe(4096);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("refuses what makes no sense, clearly", async () => {
    const vmId = await replicated("healthy", [4 * MiB]);
    const now = await pair.primary.api("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
    expect(now.status).toBe(409);
    expect(JSON.stringify(now.body)).toMatch(/starts from Resynchronization required/);
    const late = await pair.primary.api("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, { at: new Date(Date.now() + 8 * 24 * HOUR).toISOString() });
    expect(late.status).toBe(400);
    expect(JSON.stringify(late.body)).toMatch(/at most 7 days/);
    const window = await pair.primary.api("PATCH", `/api/v1/vms/${vmId}/replication`, { resyncPolicy: { mode: "window", start: "25:00", end: "06:00" } });
    expect(window.status).toBe(400);
    expect(JSON.stringify(window.body)).toMatch(/HH:MM/);
    const onReplica = await pair.replica.api("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
    expect(onReplica.status).toBe(409);
    expect(await rel(vmId)).toMatchObject({ state: "Replicating" });
  });
});
