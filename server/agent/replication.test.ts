/**
 * Invariant 1, end to end: a 1 GiB lab disk replicated while its guest writes; once the
 * guest is quiet and one more cycle ran, the replica's bytes equal the primary's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diskHash, startPair, type Pair, type VmView } from "./testing/harness.js";

const GiB = 1024 ** 3;

describe.each([
  { mode: "https" as const, label: "HTTPS with mutual TLS" },
  { mode: "http" as const, label: "HTTP with a signed token" },
])("replication over $label", ({ mode }) => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => pair?.cleanup());

  it("keeps the replica byte-for-byte equal to the primary under a running workload", async () => {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", {
      name: `db-${mode}`,
      disks: [{ sizeBytes: GiB }, { sizeBytes: 64 * 1024 * 1024 }],
      workload: { pattern: "random-4k", rateMiBps: 8 },
    });
    // Some data before replication starts, so the initial copy carries real bytes.
    await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=${512 * 1024 * 1024}`, Buffer.alloc(3 * 1024 * 1024, 0xab));
    await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });

    const rel = await primary.ok<{ id: string; state: string }>("POST", `/api/v1/vms/${vm.id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: mode === "https" ? replica.ports.https : replica.ports.http,
      authMode: mode,
      frequencySeconds: 30,
      startInitialReplication: false,
    });
    expect(rel.state).toBe("Ready for initial replication");

    const initial = await primary.ok<{ ok: boolean; seq: number; wireBytes: number }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
    expect(initial).toMatchObject({ ok: true, seq: 0 });
    // Zero blocks are not sent as data: the initial copy of a mostly empty 1 GiB disk is small.
    expect(initial.wireBytes).toBeLessThan(64 * 1024 * 1024);

    for (let i = 1; i <= 3; i++) {
      await new Promise((r) => setTimeout(r, 700));
      const cycle = await primary.ok<{ ok: boolean; seq: number; changedBytes: number }>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
      expect(cycle).toMatchObject({ ok: true, seq: i });
      expect(cycle.changedBytes).toBeGreaterThan(0);
    }

    await primary.ok("PUT", `/api/v1/vms/${vm.id}/workload`, { pattern: "idle", rateMiBps: 0 });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);

    for (const disk of [0, 1]) {
      const [a, b] = await Promise.all([diskHash(primary, vm.id, disk), diskHash(replica, vm.id, disk)]);
      expect(b).toBe(a);
    }
    const onReplica = await replica.ok<VmView>("GET", `/api/v1/vms/${vm.id}`);
    expect(onReplica.replication[0]).toMatchObject({ role: "replica", state: "Replicating", lastAppliedSeq: 4 });
    const onPrimary = await primary.ok<VmView>("GET", `/api/v1/vms/${vm.id}`);
    expect(onPrimary.replication[0]).toMatchObject({ role: "primary", state: "Replicating", lastAckedSeq: 4 });
  });
});
