/**
 * Every initial-replication method (issue 3, test 4): external media (export, placeholder,
 * Import Initial Replica, then ordinary cycles), an existing copy on the Replica server (only
 * differences sent), and a network copy scheduled for later that survives an agent restart.
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CycleOutcome } from "./replication/primary.js";
import { diskHash, startPair, waitFor, type AgentProcess, type Pair, type VmView } from "./testing/harness.js";

const MiB = 1024 * 1024;
const DISK = 32 * MiB;
const HOUR = 3600_000;

interface Rel {
  state: string;
  health: string;
  healthReasons: string[];
  lastAckedSeq?: number;
  lastAppliedSeq?: number;
}

describe("initial replication methods", () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => pair?.cleanup());

  const rel = async (a: AgentProcess, vmId: string) => (await a.ok<Rel[]>("GET", `/api/v1/vms/${vmId}/replication`))[0]!;
  const replicateNow = (vmId: string) => pair.primary.ok<CycleOutcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);
  const enable = (vmId: string, extra: Record<string, unknown>) =>
    pair.primary.api<Rel & { error?: { message: string } }>("POST", `/api/v1/vms/${vmId}/replication`, { replicaServer: "hv02.lab.test", replicaPort: pair.replica.ports.https, frequencySeconds: 900, ...extra });

  async function vmWithData(name: string): Promise<string> {
    const id = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: DISK }] })).id;
    for (let i = 0; i < 8; i++) await pair.primary.ok("PUT", `/api/v1/vms/${id}/disks/0/data?offset=${randomInt(DISK / 65536) * 65536}`, randomBytes(65536));
    return id;
  }

  async function writeSome(vmId: string, count: number): Promise<number> {
    for (let i = 0; i < count; i++) await pair.primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${(3 + i * 5) * MiB}`, randomBytes(4096));
    return count * 4096;
  }

  it("exports to external media, imports into the placeholder, then sends only the changes since", async () => {
    const vmId = await vmWithData("media-01");
    const atExport = await diskHash(pair.primary, vmId);
    const folder = join(pair.dir, "usb-drive");
    const res = await enable(vmId, { initialReplication: { method: "external-media", folder } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ state: "Initial replication in progress", lastAckedSeq: 0 });
    const manifest = JSON.parse(await readFile(join(folder, "manifest.json"), "utf8")) as { disks: { file: string; sha256: string }[] };
    expect(manifest.disks[0]!.sha256).toBe(atExport);
    expect(createHash("sha256").update(await readFile(join(folder, "disk0.raw"))).digest("hex")).toBe(atExport);

    expect(await rel(pair.replica, vmId)).toMatchObject({ state: "Waiting for initial replication", health: "Warning", healthReasons: ["The replica is a placeholder waiting for Import Initial Replica from external media."] });
    const changed = await writeSome(vmId, 3);
    const waiting = await replicateNow(vmId);
    expect(waiting.ok).toBe(false);
    expect(waiting.error).toMatch(/waiting for Import Initial Replica/);
    expect((await rel(pair.primary, vmId)).state).toBe("Initial replication in progress");

    // Damaged media is refused and nothing of it is kept.
    const fh = await open(join(folder, "disk0.raw"), "r+");
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, 4096);
    await fh.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 4096);
    const bad = await pair.replica.api<{ error: { code: string; message: string } }>("POST", `/api/v1/vms/${vmId}/replication/import`, { folder });
    expect(bad.status).toBe(422);
    expect(bad.body.error.message).toMatch(/does not match its manifest/);
    expect((await rel(pair.replica, vmId)).lastAppliedSeq).toBe(-1);
    await fh.write(byte, 0, 1, 4096);
    await fh.close();

    const imported = await pair.replica.ok<Rel>("POST", `/api/v1/vms/${vmId}/replication/import`, { folder });
    expect(imported).toMatchObject({ state: "Replicating", lastAppliedSeq: 0 });
    expect(await diskHash(pair.replica, vmId)).toBe(atExport);
    const next = await replicateNow(vmId);
    expect(next).toMatchObject({ ok: true, seq: 1, changedBytes: changed });
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    expect(await rel(pair.primary, vmId)).toMatchObject({ state: "Replicating", health: "Normal" });
    const again = await pair.replica.api("POST", `/api/v1/vms/${vmId}/replication/import`, { folder });
    expect(again.status).toBe(409);
  });

  it("uses an existing copy on the Replica server, sending only the blocks that differ", async () => {
    const vmId = await vmWithData("restored-01");
    expect((await enable(vmId, {})).status).toBe(201);
    await waitFor("initial copy", async () => (await rel(pair.primary, vmId)).state === "Replicating");
    // Replication is removed on both sides; the replica VM stays, like a restored backup.
    await pair.primary.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
    await pair.replica.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
    const changed = await writeSome(vmId, 4);
    const mark = (await pair.primary.ok<{ id: number }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`)).at(-1)!.id;
    const res = await enable(vmId, { initialReplication: { method: "existing-copy" } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const done = await waitFor("the comparison to finish", async () => {
      const events = await pair.primary.ok<{ id: number; kind: string; data: { differingBytes: number } }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
      return events.find((e) => e.id > mark && e.kind === "replication.resync-complete");
    });
    expect(done.data.differingBytes).toBe(changed);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
    expect(await rel(pair.replica, vmId)).toMatchObject({ state: "Replicating" });

    const none = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "nowhere", disks: [{ sizeBytes: MiB }] })).id;
    const refused = await enable(none, { initialReplication: { method: "existing-copy" } });
    expect(refused.status).toBe(409);
    expect(refused.body.error!.message).toMatch(/no virtual machine with id .* to use as the initial copy/);
    expect(await pair.primary.ok("GET", `/api/v1/vms/${none}/replication`)).toEqual([]);
  });

  it("starts a scheduled initial replication at its time, across an agent restart", async () => {
    const vmId = await vmWithData("later-01");
    const startAt = new Date(Date.now() + 2 * HOUR).toISOString();
    const res = await enable(vmId, { initialReplication: { method: "network", startAt } });
    expect(res.body).toMatchObject({ state: "Ready for initial replication", lastAckedSeq: -1 });
    await pair.primary.restart();
    expect((await rel(pair.primary, vmId)).state).toBe("Ready for initial replication");
    await pair.advanceClock(3 * HOUR);
    await waitFor("the scheduled initial copy", async () => (await rel(pair.primary, vmId)).state === "Replicating", 30_000);
    expect(await diskHash(pair.replica, vmId)).toBe(await diskHash(pair.primary, vmId));
  });

  it("reports the progress of a long initial copy on the event stream", async () => {
    const size = 2 * 1024 * MiB;
    const vmId = (await pair.primary.ok<VmView>("POST", "/api/v1/vms", { name: "big-initial", disks: [{ sizeBytes: size }] })).id;
    expect((await enable(vmId, { startInitialReplication: false })).status).toBe(201);
    expect((await replicateNow(vmId)).ok).toBe(true);
    const events = await pair.primary.ok<{ kind: string; data: { done: number; total: number; bytesPerSecond: number; etaSeconds: number } }[]>("GET", `/api/v1/events?vmId=${vmId}&limit=1000`);
    const progress = events.filter((e) => e.kind === "replication.initial-progress");
    expect(progress.length).toBeGreaterThan(0);
    for (const e of progress) {
      expect(e.data.total).toBe(size);
      expect(e.data.done).toBeLessThanOrEqual(size);
      expect(e.data.bytesPerSecond).toBeGreaterThan(0);
      expect(e.data.etaSeconds).toBeGreaterThanOrEqual(0);
    }
    await pair.primary.ok("DELETE", `/api/v1/vms/${vmId}/replication`);
  });

  it("refuses bad choices clearly", async () => {
    const vmId = await vmWithData("bad-01");
    const late = await enable(vmId, { initialReplication: { method: "network", startAt: new Date(Date.now() + 30 * 24 * HOUR).toISOString() } });
    expect(late.status).toBe(400);
    expect(JSON.stringify(late.body)).toMatch(/at most 7 days ahead/);
    const relative = await enable(vmId, { initialReplication: { method: "external-media", folder: "usb" } });
    expect(relative.status).toBe(400);
    expect(JSON.stringify(relative.body)).toMatch(/initialReplication.folder/);
    const unknown = await enable(vmId, { initialReplication: { method: "carrier-pigeon" } });
    expect(unknown.status).toBe(400);
    expect(await pair.primary.ok("GET", `/api/v1/vms/${vmId}/replication`)).toEqual([]);
  });
});
