/**
 * Invariant 2: every kept recovery point restores byte for byte to the primary's content at
 * its point, read through the API or exported, while replication goes on; pruning keeps the
 * configured count; a replica killed while applying never damages an older point. Hours are
 * compressed by the agents' test clock.
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome } from "./replication/primary.js";
import type { RecoveryPointInfo } from "./replication/replica-store.js";
import { diskHash, startPair, waitFor, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const DISK = 96 * MiB;
const HOUR = 3600_000;

describe("recovery points (undo logs on the replica)", () => {
  let pair: Pair;
  let vmId: string;
  /** Primary hash at each point, by the cycle that made it. */
  const expected = new Map<number, string>();

  const replicateNow = () => pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
  const points = () => pair.replica.ok<RecoveryPointInfo[]>("GET", `/api/v1/vms/${vmId}/recovery-points`);
  const pointHash = async (id: string) => (await pair.replica.ok<{ sha256: string }>("GET", `/api/v1/vms/${vmId}/recovery-points/${id}/disks/0/hash`)).sha256;

  /** Scattered writes, many landing on blocks that earlier cycles already changed. */
  async function churn(count = 12): Promise<void> {
    for (let i = 0; i < count; i++) {
      const length = randomInt(1, 5) * 16 * 1024;
      // Anywhere on the disk, the last 64 KiB included, but never past its end.
      const offset = randomInt((DISK - length) / (16 * 1024) + 1) * 16 * 1024;
      await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${offset}`, randomBytes(length));
    }
    // The same hot region every time: its before-images must be the first per interval.
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${8 * MiB}`, randomBytes(256 * 1024));
  }

  /** Moves to the next hour, changes the disk and replicates: that cycle makes a point. */
  async function nextHourPoint(): Promise<number> {
    await pair.advanceClock(HOUR);
    await churn();
    const hash = await diskHash(pair.primary, vmId);
    const out = await replicateNow();
    expect(out.ok, out.error).toBe(true);
    expected.set(out.seq, hash);
    // A second cycle in the same hour: recorded in this point's undo log, no new point.
    await churn(4);
    expect((await replicateNow()).ok).toBe(true);
    return out.seq;
  }

  async function expectPointsIntact(): Promise<RecoveryPointInfo[]> {
    const list = await points();
    for (const p of list.filter((x) => x.kind !== "latest")) {
      expect(await pointHash(p.id), `point of cycle ${p.seq}`).toBe(expected.get(p.seq));
    }
    expect(await pointHash("latest")).toBe(await diskHash(pair.primary, vmId));
    return list;
  }

  beforeAll(async () => {
    pair = await startPair();
    const vm = await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "history", disks: [{ sizeBytes: DISK }] });
    vmId = vm.id;
    await churn();
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: pair.replica.ports.https,
      frequencySeconds: 900,
      recoveryHistory: 3,
      startInitialReplication: false,
    });
    expected.set(0, await diskHash(pair.primary, vmId));
    expect((await replicateNow()).ok).toBe(true);
  });
  afterAll(async () => pair?.cleanup());

  it("makes a point at the initial copy and one per hour after, each restoring to its primary hash", async () => {
    expect((await points()).map((p) => p.kind)).toEqual(["latest", "standard"]);
    await nextHourPoint();
    await nextHourPoint();
    const list = await expectPointsIntact();
    expect(list.map((p) => p.kind)).toEqual(["latest", "standard", "standard", "standard"]);
    // Listed newest first, each with the storage its undo log takes.
    const [, newest, middle, oldest] = list;
    expect(Date.parse(newest!.at!)).toBeGreaterThan(Date.parse(middle!.at!));
    expect(oldest!.sizeBytes).toBeGreaterThan(0);
    expect(newest!.sizeBytes).toBeGreaterThan(0);
  });

  it("prunes to exactly the configured count, the oldest first", async () => {
    await nextHourPoint();
    await nextHourPoint();
    const list = await expectPointsIntact();
    const kept = list.filter((p) => p.kind !== "latest").map((p) => p.seq);
    expect(kept).toHaveLength(3);
    expect(kept).toEqual([...expected.keys()].sort((a, b) => b - a).slice(0, 3));
    const events = await pair.replica.ok<{ kind: string }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
    expect(events.filter((e) => e.kind === "replica.point-pruned")).toHaveLength(2);
  });

  it("exports a point as raw images whose hash is the point's, while the primary keeps writing and replicating", async () => {
    const oldest = (await points()).at(-1)!;
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/workload`, { pattern: "random-4k", rateMiBps: 4 });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    const folder = join(pair.dir, "export-oldest");
    const exporting = pair.replica.ok<{ disks: { file: string; sha256: string }[] }>("POST", `/api/v1/vms/${vmId}/recovery-points/${oldest.id}/export`, { folder });
    // Cycles keep arriving during the export.
    const during = [await replicateNow(), await replicateNow()];
    const manifest = await exporting;
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
    expect(during.every((o) => o.ok)).toBe(true);
    expect(manifest.disks[0]!.sha256).toBe(expected.get(oldest.seq));
    const raw = await readFile(join(folder, manifest.disks[0]!.file));
    expect(createHash("sha256").update(raw).digest("hex")).toBe(expected.get(oldest.seq));
    expect((await replicateNow()).ok).toBe(true);
    await expectPointsIntact();
  });

  it.each(["replica.apply-mid", "replica.after-apply"])("keeps every older point intact when the replica is killed at %s", async (failpoint) => {
    await pair.replica.restart([failpoint]);
    await churn();
    expect((await replicateNow()).ok).toBe(false);
    await pair.replica.exited();
    await pair.replica.start();
    // The cycle is re-applied on start; the primary learns it was applied and carries on.
    const next = await waitFor("a cycle after the crash", async () => {
      const out = await replicateNow();
      return out.ok ? out : undefined;
    });
    expect(next.ok).toBe(true);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    await expectPointsIntact();
  });

  it("takes a new recovery history from the next hour, without a resync", async () => {
    await pair.primary.ok("PATCH", `/api/v1/vms/${vmId}/replication`, { recoveryHistory: 1 });
    expect((await points()).filter((p) => p.kind !== "latest")).toHaveLength(3);
    await nextHourPoint();
    const list = await expectPointsIntact();
    expect(list.filter((p) => p.kind !== "latest")).toHaveLength(1);
    await pair.primary.ok("PATCH", `/api/v1/vms/${vmId}/replication`, { recoveryHistory: 0 });
    await nextHourPoint();
    expect((await points()).map((p) => p.kind)).toEqual(["latest"]);
    const [rel] = await pair.replica.ok<{ state: string; recoveryHistory: number }[]>("GET", `/api/v1/vms/${vmId}/replication`);
    expect(rel).toMatchObject({ state: "Replicating", recoveryHistory: 0 });
  });

  it("marks application-consistent points when the guest quiesces, and falls back with a warning when it cannot", async () => {
    await pair.primary.ok("PATCH", `/api/v1/vms/${vmId}/replication`, { recoveryHistory: 4, appConsistentFrequencyHours: 2 });
    await nextHourPoint();
    await nextHourPoint();
    await nextHourPoint();
    expect((await points()).slice(1).map((p) => p.kind)).toEqual(["application-consistent", "standard", "application-consistent"]);
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/workload`, { pattern: "idle", rateMiBps: 0, quiesce: "fails" });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    await nextHourPoint();
    await nextHourPoint();
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
    expect((await points())[1]!.kind).toBe("standard");
    const events = await pair.primary.ok<{ kind: string; severity: string; message: string }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
    const warning = events.find((e) => e.kind === "replication.quiesce-failed");
    expect(warning?.severity).toBe("warning");
    expect(warning?.message).toMatch(/crash-consistent/);
    await expectPointsIntact();
  });

  it("drops a point whose undo log was damaged on disk, says so, and keeps the newer ones", async () => {
    const before = (await points()).filter((p) => p.kind !== "latest");
    const oldest = before.at(-1)!;
    await pair.replica.stop();
    const file = join(pair.dir, "hv02", "replicas", vmId, ".points", `${oldest.id}.undo`);
    await writeFile(file, Buffer.alloc(64, 0xee), { flag: "r+" });
    await pair.replica.start();
    const after = (await points()).filter((p) => p.kind !== "latest");
    expect(after.map((p) => p.id)).toEqual(before.slice(0, -1).map((p) => p.id));
    const events = await pair.replica.ok<{ kind: string; message: string }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
    expect(events.find((e) => e.kind === "replica.points-lost")?.message).toMatch(/1 recovery point/);
    expect((await replicateNow()).ok).toBe(true);
    await expectPointsIntact();
  });

  it("refuses bad requests clearly and changes nothing", async () => {
    const before = await points();
    const bad = async (method: string, path: string, body: unknown, status: number, text: RegExp) => {
      const r = await pair.replica.api(method, path, body);
      expect(r.status, `${method} ${path}`).toBe(status);
      expect(JSON.stringify(r.body)).toMatch(text);
    };
    await bad("GET", `/api/v1/vms/${vmId}/recovery-points/00000000-0000-4000-8000-000000000000/disks/0/hash`, undefined, 404, /not kept/);
    await bad("GET", `/api/v1/vms/${vmId}/recovery-points/yesterday/disks/0/hash`, undefined, 400, /pointId/);
    await bad("GET", `/api/v1/vms/${vmId}/recovery-points/latest/disks/1/hash`, undefined, 400, /no disk 1/);
    await bad("POST", `/api/v1/vms/${vmId}/recovery-points/latest/export`, { folder: "relative/dir" }, 400, /absolute/);
    await bad("POST", `/api/v1/vms/${vmId}/recovery-points/latest/export`, { folder: join(pair.dir, "export-oldest") }, 409, /not empty/);
    const r = await pair.primary.api("GET", `/api/v1/vms/${vmId}/recovery-points`);
    expect(r.status).toBe(409);
    expect(JSON.stringify(r.body)).toMatch(/not a Replica virtual machine/);
    const patch = async (body: unknown, text: RegExp) => {
      const res = await pair.primary.api("PATCH", `/api/v1/vms/${vmId}/replication`, body);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toMatch(text);
    };
    await patch({ recoveryHistory: 25 }, /recoveryHistory must be 0-24/);
    await patch({ appConsistentFrequencyHours: 13 }, /1-12 hours/);
    await patch({ recoveryHistory: 0 }, /application-consistent points need/);
    expect(await points()).toEqual(before);
  });
});
