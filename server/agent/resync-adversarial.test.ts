/**
 * Adversarial tests of resynchronization by block hashes: kill -9 of either agent in the
 * middle of a range, and a guest writing all through it (HTTP tampering: resync-tamper.test.ts).
 * Every scenario ends with equal disk hashes.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome } from "./replication/primary.js";
import { diskHash, startPair, type Pair } from "./testing/harness.js";
import { replicationHelpers } from "./testing/replication-helpers.js";

const MiB = 1024 * 1024;

describe("resynchronization, adversarially", () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => pair?.cleanup());

  const { rel, lastEventId, replicated, writeBehindTheAgentsBack, completion } = replicationHelpers(() => pair);





  // A disk of two ranges (256 MiB, then 16 MiB), differing blocks in each and across the boundary.
  const SIZE = 272 * MiB;
  const WRITES: [number, number][] = [
    [MiB, 4096],
    [3 * MiB + 8192, 8192],
    [100 * MiB, 65536],
    [256 * MiB - 4096, 8192],
    [260 * MiB, 12288],
    [SIZE - 4096, 4096],
  ];
  const DIFFERING = WRITES.reduce((n, [, l]) => n + l, 0);

  it.each([
    ["replica", "replica.receive-mid"],
    ["replica", "replica.apply-mid"],
    ["replica", "replica.after-apply"],
    ["primary", "primary.send-mid"],
    ["primary", "primary.after-ack"],
  ] as const)("continues after the %s is killed at %s during a range, and ends with equal disks", async (who, fp) => {
    const vmId = await replicated(`kill-${fp}`, [SIZE]);
    await writeBehindTheAgentsBack(vmId, WRITES);
    const agent = who === "replica" ? pair.replica : pair.primary;
    // Armed now: the only cycles from here on are the resynchronization's ranges.
    if (who === "replica") await pair.replica.restart([fp]);
    else {
      await pair.primary.restart([fp]);
      expect((await rel(vmId)).state).toBe("Resynchronization required");
    }
    const mark = await lastEventId(vmId);
    const started = await pair.primary.api("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await agent.exited(60_000);
    await agent.start();
    const done = await completion(vmId, mark);
    expect(await rel(vmId)).toMatchObject({ state: "Replicating", reason: null, resync: null });
    expect(done.data?.comparedBytes).toBe(SIZE);
    // A range compared twice (its cycle was applied, the acknowledgement lost) differs 0 the second time.
    expect(done.data!.differingBytes).toBeLessThanOrEqual(DIFFERING);
    // Ordinary cycles follow (a 4 KiB change away from every repaired block, so equal disks
    // below also prove the resynchronization itself left none behind).
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${7 * MiB}`, randomBytes(4096));
    const next = await pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(next.ok, next.error).toBe(true);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    await pair.primary.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
    await pair.replica.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
  });

  it("ends with equal disks when the guest writes all through the resynchronization", async () => {
    const vmId = await replicated("busy-guest", [SIZE]);
    await writeBehindTheAgentsBack(vmId, WRITES);
    await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/workload`, { pattern: "random-4k", rateMiBps: 8 });
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "start" });
    const mark = await lastEventId(vmId);
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/replication/resynchronize`, {});
    const done = await completion(vmId, mark);
    expect(done.data?.comparedBytes).toBe(SIZE);
    // Keep writing a little after the end, then stop and send the rest.
    await new Promise((r) => setTimeout(r, 500));
    await pair.primary.ok("POST", `/api/v1/vms/${vmId}/power`, { action: "turn-off" });
    const last = await pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
    expect(last.ok, last.error).toBe(true);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    await pair.primary.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
    await pair.replica.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
  });
});
