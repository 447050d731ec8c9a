/**
 * The agent as a daemon: ordered shutdown that nothing holds hostage, the event stream,
 * and replicating a chosen subset of a VM's disks.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome as Outcome } from "./replication/primary.js";
import { diskHash, startPair, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe("agent lifecycle", () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => pair?.cleanup());

  it("replicates only the chosen disks, keeping their numbers", async () => {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "no-swap", disks: [{ sizeBytes: 16 * MiB }, { sizeBytes: 32 * MiB }, { sizeBytes: 8 * MiB }] });
    for (const disk of [0, 1, 2]) await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/${disk}/data?offset=${MiB}`, randomBytes(256 * 1024));
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: replica.ports.https,
      disks: [1, 2],
      frequencySeconds: 900,
      startInitialReplication: false,
    });
    expect(await primary.ok<Outcome>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).toMatchObject({ ok: true, seq: 0 });
    await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/2/data?offset=0`, randomBytes(64 * 1024));
    expect(await primary.ok<Outcome>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).toMatchObject({ ok: true, seq: 1 });

    const onReplica = await replica.ok<VmView>("GET", `/api/v1/vms/${vm.id}`);
    expect(onReplica.disks.map((d) => d.index)).toEqual([1, 2]);
    for (const disk of [1, 2]) expect(await diskHash(replica, vm.id, disk)).toBe(await diskHash(primary, vm.id, disk));
  });

  it("streams only the asked VM's events", async () => {
    const { primary } = pair;
    const a = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "stream-a", disks: [{ sizeBytes: MiB }] });
    const b = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "stream-b", disks: [{ sizeBytes: MiB }] });
    const controller = new AbortController();
    const res = await fetch(`${primary.url}/api/v1/events/stream?vmId=${a.id}`, { headers: { authorization: `Bearer ${primary.opts.token}` }, signal: controller.signal });
    const ids: string[] = [];
    const reading = (async () => {
      let text = "";
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += Buffer.from(chunk).toString();
        for (const m of text.matchAll(/data: (.*)\n/g)) ids.push((JSON.parse(m[1]!) as { vmId: string }).vmId);
        text = text.slice(text.lastIndexOf("\n\n") + 2);
        if (ids.length >= 4) break;
      }
    })();
    for (const vm of [b, a, b, a]) {
      await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
      await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "turn-off" });
    }
    await reading;
    controller.abort();
    expect(ids.length).toBeGreaterThanOrEqual(4);
    expect(new Set(ids)).toEqual(new Set([a.id]));
  });

  it("reports the CPU usage of running VMs, with the VM and as metrics on the event stream", async () => {
    const { primary } = pair;
    const busy = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "cpu-busy", cpus: 1, disks: [{ sizeBytes: 64 * MiB }], workload: { pattern: "sequential-1m", rateMiBps: 128 } });
    const idle = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "cpu-idle", cpus: 2, disks: [{ sizeBytes: MiB }], workload: { pattern: "idle", rateMiBps: 0 } });
    type Cpu = { cpuUsagePercent: number | null };
    expect((await primary.ok<Cpu>("GET", `/api/v1/vms/${busy.id}`)).cpuUsagePercent).toBeNull();
    for (const vm of [busy, idle]) await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });

    const controller = new AbortController();
    const res = await fetch(`${primary.url}/api/v1/events/stream?metricsSeconds=1&after=999999`, { headers: { authorization: `Bearer ${primary.opts.token}` }, signal: controller.signal });
    const snapshots: { vms: { id: string; cpuUsagePercent: number }[] }[] = [];
    let text = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += Buffer.from(chunk).toString();
      for (const m of text.matchAll(/event: metrics\ndata: (.*)\n\n/g)) snapshots.push(JSON.parse(m[1]!));
      text = text.slice(text.lastIndexOf("\n\n") + 2);
      if (snapshots.length >= 3) break;
    }
    controller.abort();
    const last = snapshots.at(-1)!.vms;
    // The guest making 128 MiB/s of data keeps a processor measurably busy; the idle one does not.
    expect(last.find((v) => v.id === busy.id)!.cpuUsagePercent).toBeGreaterThan(0);
    expect(last.find((v) => v.id === idle.id)!.cpuUsagePercent).toBe(0);
    expect((await primary.ok<Cpu>("GET", `/api/v1/vms/${busy.id}`)).cpuUsagePercent).toBeGreaterThan(0);

    for (const vm of [busy, idle]) await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "turn-off" });
    expect((await primary.ok<Cpu>("GET", `/api/v1/vms/${busy.id}`)).cpuUsagePercent).toBeNull();
    expect((await primary.api("GET", "/api/v1/events/stream?metricsSeconds=0")).status).toBe(400);
  });

  it("stops cleanly (exit 0, VMs saved) even with an event stream open", async () => {
    const { primary } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "running", disks: [{ sizeBytes: MiB }] });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/power`, { action: "start" });
    const controller = new AbortController();
    const res = await fetch(`${primary.url}/api/v1/events/stream`, { headers: { authorization: `Bearer ${primary.opts.token}` }, signal: controller.signal });
    expect(res.status).toBe(200);
    const started = Date.now();
    expect(await primary.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    controller.abort();
    await primary.start();
    expect((await primary.ok<VmView>("GET", `/api/v1/vms/${vm.id}`)).state).toBe("Saved");
  });

  it("stops promptly in the middle of a long initial copy, which then starts over", async () => {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "big", disks: [{ sizeBytes: 64 * GiB }] });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    const copy = primary.api("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1500));
    const started = Date.now();
    expect(await primary.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    await copy;
    await primary.start();
    const rec = (await primary.ok<VmView>("GET", `/api/v1/vms/${vm.id}`)).replication[0]!;
    expect(rec.state).toBe("Initial replication in progress");
    expect(rec.lastAckedSeq).toBe(-1);
    // The copy resumed at start-up; removing replication cuts it short too, even while the
    // cycle is still asking the replica where it stands.
    const removing = Date.now();
    await primary.ok("DELETE", `/api/v1/vms/${vm.id}/replication`);
    expect(Date.now() - removing).toBeLessThan(5000);
  });

  it("says Resynchronization required when the replica holds less than it acknowledged", async () => {
    const { primary, replica } = pair;
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name: "restored", disks: [{ sizeBytes: 4 * MiB }] });
    await primary.ok("POST", `/api/v1/vms/${vm.id}/replication`, { replicaServer: "hv02.lab.test", replicaPort: replica.ports.https, frequencySeconds: 900, startInitialReplication: false });
    for (let i = 0; i < 3; i++) {
      await primary.ok("PUT", `/api/v1/vms/${vm.id}/disks/0/data?offset=${i * 4096}`, randomBytes(4096));
      await primary.ok("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
    }
    // The Replica server comes back from an old backup of its state: it holds cycle 0 only.
    await replica.stop();
    const db = new Database(join(pair.dir, "hv02", "agent.db"));
    const row = db.prepare("SELECT id, record FROM relationships WHERE vm_id = ?").get(vm.id) as { id: string; record: string };
    db.prepare("UPDATE relationships SET record = ? WHERE id = ?").run(JSON.stringify({ ...JSON.parse(row.record), lastAppliedSeq: 0 }), row.id);
    db.close();
    await replica.start();
    await primary.restart();

    const failed = await primary.ok<Outcome>("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`);
    expect(failed.ok).toBe(false);
    const rec = (await primary.ok<VmView>("GET", `/api/v1/vms/${vm.id}`)).replication[0]!;
    expect(rec.state).toBe("Resynchronization required");
    expect(rec.reason).toMatch(/holds cycle 0 but had acknowledged cycle 2/);
    expect((await primary.api("POST", `/api/v1/vms/${vm.id}/replication/replicate-now`)).status).toBe(409);
  });
});
