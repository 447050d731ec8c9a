/**
 * Tampering in transit over plain HTTP (signed token, per-frame checksums, stream HMAC): a
 * proxy between the primary and the Replica server corrupts, truncates, replays and forges
 * cycle uploads. Each tampered cycle must be rejected with nothing of it reaching the replica
 * disks, leave an error event, and go through when retried untouched, after which the
 * replica equals the primary again.
 */
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameType, HEADER_SIZE, type EndPayload } from "./replication/frames.js";
import { diskHash, startPair, waitFor, type AgentProcess, type Pair, type VmView } from "./testing/harness.js";
import { joinFrames, reseal, splitFrames, TamperProxy, type CycleUpload, type RawFrame, type Tamper } from "./testing/tamper-proxy.js";
import type { CycleOutcome as Outcome } from "./replication/primary.js";

const MiB = 1024 * 1024;
const DISK_BYTES = 32 * MiB;

interface AgentEvent {
  id: number;
  severity: string;
  kind: string;
  message: string;
  data: Record<string, unknown> | null;
}

interface Relationship {
  id: string;
  role: "primary" | "replica";
  state: string;
  lastAckedSeq?: number;
  lastAppliedSeq?: number;
  reason: string | null;
}

/** The first data frame with a payload: the guest's bytes on the wire. */
function dataFrame(frames: readonly RawFrame[]): RawFrame {
  const f = frames.find((x) => x.header.type === FrameType.Data && x.payload.length > 0);
  if (!f) throw new Error("the cycle carries no data frame to tamper with");
  return f;
}

function flipByte(body: Buffer, at: number): Buffer {
  const out = Buffer.from(body);
  out.writeUInt8(out.readUInt8(at) ^ 0x5a, at);
  return out;
}

interface Attack {
  name: string;
  tamper: Tamper;
  /** What the primary reports for the failed cycle. */
  primaryError: RegExp;
  /** The replica's error event: its kinds and, where the check that must catch it is known, its reason. */
  replicaKinds: string[];
  replicaReason?: RegExp;
  /** What the proxy did with the upload. */
  fate: CycleUpload["fate"];
}

const ATTACKS: Attack[] = [
  {
    name: "a flipped byte in a data frame's payload",
    tamper: (u) => {
      const f = dataFrame(splitFrames(u.body));
      return { action: "forward", body: flipByte(u.body, f.at + HEADER_SIZE + (f.payload.length >> 1)) };
    },
    primaryError: /answered 422: checksum mismatch/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /checksum mismatch/,
    fate: "tampered",
  },
  {
    name: "a data frame redirected to another disk offset",
    tamper: (u) => {
      const f = dataFrame(splitFrames(u.body));
      const body = Buffer.from(u.body);
      body.writeBigUInt64LE(BigInt(f.header.offset + 4096), f.at + 24);
      return { action: "forward", body };
    },
    primaryError: /answered 422: checksum mismatch/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /checksum mismatch/,
    fate: "tampered",
  },
  {
    name: "a body cut short inside a frame",
    tamper: (u) => {
      const f = dataFrame(splitFrames(u.body));
      return { action: "forward", body: u.body.subarray(0, f.at + HEADER_SIZE + (f.payload.length >> 1)) };
    },
    primaryError: /answered 422: stream ended inside a frame/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /truncated/,
    fate: "tampered",
  },
  {
    name: "a body cut short at a frame boundary (end frame dropped)",
    tamper: (u) => ({ action: "forward", body: joinFrames(splitFrames(u.body).slice(0, -1)) }),
    primaryError: /answered 422: stream ended without its end frame/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /truncated/,
    fate: "tampered",
  },
  {
    name: "a connection cut in the middle of the upload",
    tamper: (u) => {
      const f = dataFrame(splitFrames(u.body));
      return { action: "cut", body: u.body, after: f.at + HEADER_SIZE + (f.payload.length >> 1) };
    },
    primaryError: /cannot reach hv02\.lab\.test/,
    // An aborted request body is an I/O failure rather than a bad frame; either way it is an error.
    replicaKinds: ["replica.cycle-rejected", "replica.cycle-failed"],
    replicaReason: /aborted|truncated|closed|reset/i,
    fate: "cut",
  },
  {
    name: "the body of an earlier, applied cycle replayed",
    tamper: (u, history) => {
      const earlier = history.findLast((h) => h.relationshipId === u.relationshipId && h.seq < u.seq && h.status === 200);
      if (!earlier) throw new Error("no earlier applied cycle was recorded");
      return { action: "forward", body: earlier.body };
    },
    primaryError: /answered 422: frame belongs to cycle/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /replayed or misdirected/,
    fate: "tampered",
  },
  {
    name: "a data frame duplicated within the stream",
    tamper: (u) => {
      const frames = splitFrames(u.body);
      const i = frames.indexOf(dataFrame(frames));
      return { action: "forward", body: joinFrames([...frames.slice(0, i + 1), ...frames.slice(i)]) };
    },
    primaryError: /answered 422: frame \d+ arrived where frame \d+ was expected/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /replayed, dropped or reordered/,
    fate: "tampered",
  },
  {
    name: "guest data rewritten with a recomputed frame checksum",
    tamper: (u) => {
      const frames = splitFrames(u.body);
      const i = frames.indexOf(dataFrame(frames));
      const f = frames[i]!;
      // Random guest data goes uncompressed, so this really is other data for the same blocks.
      if (f.header.flags !== 0) throw new Error("expected an uncompressed data frame");
      frames[i] = reseal(f, {}, Buffer.alloc(f.payload.length, 0xee));
      return { action: "forward", body: joinFrames(frames) };
    },
    primaryError: /answered 422: stream signature does not match/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /stream signature does not match/,
    fate: "tampered",
  },
  {
    name: "a data frame dropped and the end frame recounted and resealed",
    tamper: (u) => {
      const frames = splitFrames(u.body);
      const end = frames.at(-1)!;
      const dropped = frames.at(-2)!;
      if (dropped.header.type !== FrameType.Data) throw new Error("expected a data frame before the end frame");
      const counts = JSON.parse(end.payload.toString("utf8")) as EndPayload;
      const forged: EndPayload = { ...counts, frames: counts.frames - 1, dataBytes: counts.dataBytes - dropped.header.length };
      const kept = frames.slice(0, -2);
      return { action: "forward", body: joinFrames([...kept, reseal(end, { index: kept.length }, Buffer.from(JSON.stringify(forged)))]) };
    },
    primaryError: /answered 422: stream signature does not match/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /stream signature does not match/,
    fate: "tampered",
  },
  {
    name: "the end frame's marks rewritten to force a recovery point",
    tamper: (u) => {
      const frames = splitFrames(u.body);
      const end = frames.at(-1)!;
      const payload = JSON.parse(end.payload.toString("utf8")) as EndPayload;
      const forged: EndPayload = { ...payload, marks: { ...payload.marks, recoveryHistory: 24, point: { kind: "application-consistent", at: new Date().toISOString() } } };
      return { action: "forward", body: joinFrames([...frames.slice(0, -1), reseal(end, {}, Buffer.from(JSON.stringify(forged)))]) };
    },
    primaryError: /answered 422: stream signature does not match/,
    replicaKinds: ["replica.cycle-rejected"],
    replicaReason: /stream signature does not match/,
    fate: "tampered",
  },
];

describe("replication over HTTP through a tampering proxy", () => {
  let pair: Pair;
  let proxy: TamperProxy;
  let primary: AgentProcess;
  let replica: AgentProcess;

  beforeAll(async () => {
    pair = await startPair();
    ({ primary, replica } = pair);
    proxy = await TamperProxy.start(replica.ports.http);
  });
  afterAll(async () => {
    await proxy?.close();
    await pair?.cleanup();
  });

  async function createVm(name: string): Promise<string> {
    const vm = await primary.ok<VmView>("POST", "/api/v1/vms", { name, disks: [{ sizeBytes: DISK_BYTES }], workload: { pattern: "idle", rateMiBps: 0 } });
    expect(vm.state).toBe("Off");
    return vm.id;
  }

  /** Random bytes, so frames carry real, incompressible data. */
  async function guestWrite(vmId: string, offset: number, bytes = 64 * 1024): Promise<void> {
    await primary.ok("PUT", `/api/v1/vms/${vmId}/disks/0/data?offset=${offset}`, randomBytes(bytes));
  }

  async function enable(vmId: string, startInitialReplication: boolean): Promise<string> {
    const rel = await primary.ok<Relationship>("POST", `/api/v1/vms/${vmId}/replication`, {
      replicaServer: "hv02.lab.test",
      replicaPort: proxy.port,
      authMode: "http",
      // The schedule never comes round during the test: apart from a failed initial copy's own
      // retries, every cycle is one the test asked for.
      frequencySeconds: 300,
      startInitialReplication,
    });
    return rel.id;
  }

  const replicateNow = (vmId: string) => primary.ok<Outcome>("POST", `/api/v1/vms/${vmId}/replication/replicate-now`);

  async function relationship(agent: AgentProcess, vmId: string): Promise<Relationship> {
    const recs = await agent.ok<Relationship[]>("GET", `/api/v1/vms/${vmId}/replication`);
    const rec = recs.find((r) => r.role === (agent === primary ? "primary" : "replica"));
    if (!rec) throw new Error(`no relationship for ${vmId} on ${agent.spec.hostName}`);
    return rec;
  }

  const events = (agent: AgentProcess, vmId: string | undefined, after = 0) =>
    agent.ok<AgentEvent[]>("GET", `/api/v1/events?${vmId ? `vmId=${vmId}&` : ""}after=${after}&limit=1000`);

  async function lastEventId(agent: AgentProcess, vmId: string): Promise<number> {
    return (await events(agent, vmId)).at(-1)?.id ?? 0;
  }

  /** Redo files left on the replica: a rejected cycle must leave none. */
  async function staged(vmId: string): Promise<string[]> {
    const storage = join(pair.dir, "hv02", "replicas", vmId);
    // Fails loudly if the replica keeps its files elsewhere, rather than finding nothing.
    expect(await readdir(storage)).not.toHaveLength(0);
    return readdir(join(storage, ".staging")).catch(() => []);
  }

  async function expectEqualDisks(vmId: string): Promise<void> {
    const [a, b] = await Promise.all([diskHash(primary, vmId), diskHash(replica, vmId)]);
    expect(b).toBe(a);
  }

  /** What every rejected delta cycle must leave behind: nothing applied, error events on both sides. */
  async function expectRejected(
    vmId: string,
    applied: number,
    hashBefore: string,
    marks: { primary: number; replica: number },
    attack: Pick<Attack, "primaryError" | "replicaKinds" | "replicaReason">,
    outcome: Outcome,
  ): Promise<void> {
    const seq = applied + 1;
    expect(outcome, "the primary must not count a tampered cycle as replicated").toMatchObject({ ok: false, seq });
    expect(outcome.error).toMatch(attack.primaryError);

    const rejected = await waitFor("the replica's error event", async () =>
      (await events(replica, vmId, marks.replica)).find((e) => e.severity === "error" && e.data?.seq === seq),
    );
    expect(attack.replicaKinds).toContain(rejected.kind);
    expect(rejected.message).toMatch(/was rejected and not applied/);
    if (attack.replicaReason) expect(rejected.message).toMatch(attack.replicaReason);
    const onReplica = await events(replica, vmId, marks.replica);
    expect(onReplica.filter((e) => e.kind === "replica.cycle-applied")).toEqual([]);

    expect((await relationship(replica, vmId)).lastAppliedSeq).toBe(applied);
    expect(await diskHash(replica, vmId)).toBe(hashBefore);
    expect(await staged(vmId)).toEqual([]);

    const failed = (await events(primary, vmId, marks.primary)).filter((e) => e.kind === "replication.cycle-failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ severity: "error", data: { seq } });
    expect(await relationship(primary, vmId)).toMatchObject({ state: "Error", lastAckedSeq: applied });
  }

  let mainVm = "";
  let mainRel = "";

  /** Corrupts the first data frame of the next upload: for the initial copy, the first frame of all. */
  const corruptFirstData: Tamper = (u) => {
    const f = dataFrame(splitFrames(u.body));
    return { action: "forward", body: flipByte(u.body, f.at + HEADER_SIZE + 100) };
  };

  it("rejects a corrupted initial copy and takes it when retried untouched", async () => {
    mainVm = await createVm("tamper-main");
    for (const offset of [0, 8 * MiB, 24 * MiB]) await guestWrite(mainVm, offset, 256 * 1024);
    mainRel = await enable(mainVm, false);
    const emptyHash = await diskHash(replica, mainVm);

    proxy.arm(corruptFirstData, mainRel);
    const outcome = await replicateNow(mainVm);
    expect(outcome).toMatchObject({ ok: false, seq: 0 });
    expect(outcome.error).toMatch(/answered 422: checksum mismatch/);
    const rejected = (await events(replica, mainVm)).filter((e) => e.kind === "replica.cycle-rejected");
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ severity: "error", data: { seq: 0 } });
    expect(rejected[0]!.message).toMatch(/was rejected and not applied: checksum mismatch/);
    expect(await relationship(replica, mainVm)).toMatchObject({ lastAppliedSeq: -1, state: "Waiting for initial replication" });
    // The corrupted frame was the first of the stream, so nothing reached the replica disk.
    expect(await diskHash(replica, mainVm)).toBe(emptyHash);
    expect(await relationship(primary, mainVm)).toMatchObject({ lastAckedSeq: -1, state: "Initial replication in progress" });

    expect(await replicateNow(mainVm)).toMatchObject({ ok: true, seq: 0 });
    expect(proxy.uploads.filter((u) => u.relationshipId === mainRel).map((u) => [u.seq, u.fate, u.status])).toEqual([
      [0, "tampered", 422],
      [0, "forwarded", 200],
    ]);
    expect(await relationship(replica, mainVm)).toMatchObject({ lastAppliedSeq: 0, state: "Replicating" });
    await expectEqualDisks(mainVm);
  });

  it.each(ATTACKS.map((a, i) => ({ ...a, i })))("rejects $name, applies none of it, and retries the cycle", async ({ tamper, i, ...attack }) => {
    expect(mainRel).not.toBe("");
    // Two separate extents, so the cycle carries at least two data frames.
    await guestWrite(mainVm, (2 + i) * MiB);
    await guestWrite(mainVm, (16 + i) * MiB + 4096, 32 * 1024);
    const applied = (await relationship(replica, mainVm)).lastAppliedSeq!;
    const hashBefore = await diskHash(replica, mainVm);
    expect(hashBefore).not.toBe(await diskHash(primary, mainVm));
    const marks = { primary: await lastEventId(primary, mainVm), replica: await lastEventId(replica, mainVm) };
    const seen = proxy.uploads.length;

    proxy.arm(tamper, mainRel);
    const outcome = await replicateNow(mainVm);
    expect(proxy.isArmed).toBe(false);
    expect(proxy.uploads.slice(seen).map((u) => u.error ?? u.fate)).toEqual([attack.fate]);
    await expectRejected(mainVm, applied, hashBefore, marks, attack, outcome);

    const retry = await replicateNow(mainVm);
    expect(retry).toMatchObject({ ok: true, seq: applied + 1 });
    expect(retry.changedBytes).toBeGreaterThanOrEqual(96 * 1024);
    expect(proxy.uploads.at(-1)).toMatchObject({ seq: applied + 1, fate: "forwarded", status: 200 });
    expect((await relationship(replica, mainVm)).lastAppliedSeq).toBe(applied + 1);
    expect(await relationship(primary, mainVm)).toMatchObject({ state: "Replicating", lastAckedSeq: applied + 1, reason: null });
    await expectEqualDisks(mainVm);
  });

  it("refuses a verbatim replay of an already applied upload, signed headers and all", async () => {
    const applied = (await relationship(replica, mainVm)).lastAppliedSeq!;
    const hashBefore = await diskHash(replica, mainVm);
    const mark = await lastEventId(replica, mainVm);
    const delivered = proxy.uploads.filter((u) => u.relationshipId === mainRel && u.status === 200);
    const initial = delivered.find((u) => u.seq === 0);
    const latest = delivered.at(-1);
    expect(initial).toBeDefined();
    expect(latest?.seq).toBe(applied);

    // Each request's nonce is accepted once: a verbatim replay is refused before its body is read.
    for (const u of [initial!, latest!]) {
      const answer = await proxy.resend(u);
      expect(answer.status).toBe(401);
      expect(answer.answer).toMatch(/replayed request is refused/);
    }
    const refused = (await events(replica, undefined, mark)).filter((e) => e.kind === "replica.refused" && /replayed/.test(e.message));
    expect(refused).toHaveLength(2);
    expect((await relationship(replica, mainVm)).lastAppliedSeq).toBe(applied);
    expect(await diskHash(replica, mainVm)).toBe(hashBefore);
    await expectEqualDisks(mainVm);
  });

  it("retries a tampered initial copy on its own when replication starts right away", async () => {
    const vmId = await createVm("tamper-auto");
    await guestWrite(vmId, 0, 256 * 1024);
    // Armed before enabling (no other upload is under way): the first upload is this VM's initial copy.
    proxy.arm(corruptFirstData);
    const seen = proxy.uploads.length;
    const relId = await enable(vmId, true);

    // The primary retries a failed scheduled cycle after about a second.
    await waitFor("the initial copy, retried by the primary's schedule", async () => {
      const rec = await relationship(primary, vmId);
      return rec.lastAckedSeq === 0 && rec.state === "Replicating";
    }, 10_000);
    expect(proxy.uploads.slice(seen).map((u) => [u.relationshipId, u.seq, u.fate, u.status])).toEqual([
      [relId, 0, "tampered", 422],
      [relId, 0, "forwarded", 200],
    ]);
    const onReplica = await events(replica, vmId);
    expect(onReplica.filter((e) => e.kind === "replica.cycle-rejected")).toMatchObject([{ severity: "error", data: { seq: 0 } }]);
    expect(onReplica.map((e) => e.kind)).toContain("replica.initial-complete");
    const onPrimary = (await events(primary, vmId)).map((e) => e.kind);
    expect(onPrimary.indexOf("replication.cycle-failed")).toBeGreaterThan(-1);
    expect(onPrimary.indexOf("replication.initial-complete")).toBeGreaterThan(onPrimary.indexOf("replication.cycle-failed"));
    await expectEqualDisks(vmId);
  });

  /** A VM replicated through the proxy with its initial copy done. */
  async function replicatedVm(name: string): Promise<{ vmId: string; relId: string }> {
    const vmId = await createVm(name);
    await guestWrite(vmId, 0, 128 * 1024);
    const relId = await enable(vmId, false);
    expect(await replicateNow(vmId)).toMatchObject({ ok: true, seq: 0 });
    return { vmId, relId };
  }

  it("refuses the body of another VM's cycle with the same sequence number", async () => {
    const left = await replicatedVm("tamper-left");
    const right = await replicatedVm("tamper-right");
    await guestWrite(left.vmId, 4 * MiB);
    expect(await replicateNow(left.vmId)).toMatchObject({ ok: true, seq: 1 });
    await expectEqualDisks(left.vmId);

    await guestWrite(right.vmId, 12 * MiB);
    const hashBefore = await diskHash(replica, right.vmId);
    const marks = { primary: await lastEventId(primary, right.vmId), replica: await lastEventId(replica, right.vmId) };
    proxy.arm((u, history) => {
      const other = history.findLast((h) => h.relationshipId === left.relId && h.seq === u.seq && h.status === 200);
      if (!other) throw new Error("no upload of the other VM with this sequence number was recorded");
      return { action: "forward", body: other.body };
    }, right.relId);
    const outcome = await replicateNow(right.vmId);
    expect(proxy.uploads.at(-1)).toMatchObject({ relationshipId: right.relId, seq: 1, fate: "tampered" });
    await expectRejected(right.vmId, 0, hashBefore, marks, { primaryError: /answered 422/, replicaKinds: ["replica.cycle-rejected"] }, outcome);

    expect(await replicateNow(right.vmId)).toMatchObject({ ok: true, seq: 1 });
    await expectEqualDisks(right.vmId);
  });

  it("refuses a replay of an earlier, undelivered attempt at the same cycle", async () => {
    const { vmId, relId } = await replicatedVm("tamper-stale");
    await guestWrite(vmId, 4 * MiB);
    // The first attempt at cycle 1 never arrives; the proxy keeps its body.
    proxy.arm(() => ({ action: "drop" }), relId);
    const lost = await replicateNow(vmId);
    expect(lost).toMatchObject({ ok: false, seq: 1 });
    expect(lost.error).toMatch(/cannot reach hv02\.lab\.test/);

    // The second attempt also carries newer writes; the proxy sends the first one's body instead.
    await guestWrite(vmId, 28 * MiB);
    const hashBefore = await diskHash(replica, vmId);
    const marks = { primary: await lastEventId(primary, vmId), replica: await lastEventId(replica, vmId) };
    proxy.arm((u, history) => {
      const stale = history.findLast((h) => h.relationshipId === u.relationshipId && h.seq === u.seq && h.fate === "dropped");
      if (!stale) throw new Error("the undelivered attempt was not recorded");
      return { action: "forward", body: stale.body };
    }, relId);
    const outcome = await replicateNow(vmId);
    expect(proxy.uploads.at(-1)).toMatchObject({ relationshipId: relId, seq: 1, fate: "tampered" });
    await expectRejected(vmId, 0, hashBefore, marks, { primaryError: /answered 422/, replicaKinds: ["replica.cycle-rejected"] }, outcome);

    expect(await replicateNow(vmId)).toMatchObject({ ok: true, seq: 1 });
    await expectEqualDisks(vmId);
  });

  it("does not take an acknowledgement the Replica server never sent", async () => {
    const { vmId, relId } = await replicatedVm("tamper-ack");
    await guestWrite(vmId, 6 * MiB);
    const mark = await lastEventId(primary, vmId);
    proxy.arm((u: CycleUpload) => ({
      action: "answer",
      status: 200,
      body: { relationshipId: u.relationshipId, seq: u.seq, appliedAt: new Date().toISOString(), dataBytes: 0, wireBytes: 0 },
    }), relId);
    const outcome = await replicateNow(vmId);
    expect(proxy.uploads.at(-1)).toMatchObject({ relationshipId: relId, seq: 1, fate: "answered" });
    expect(outcome, "the primary must not commit a cycle on an acknowledgement forged in transit").toMatchObject({ ok: false, seq: 1 });
    expect((await events(primary, vmId, mark)).filter((e) => e.kind === "replication.cycle-failed" && e.severity === "error")).toHaveLength(1);
    expect((await relationship(replica, vmId)).lastAppliedSeq).toBe(0);

    expect(await replicateNow(vmId)).toMatchObject({ ok: true, seq: 1 });
    await expectEqualDisks(vmId);
  });
});
