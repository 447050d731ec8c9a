/**
 * What the receiver refuses, without the network: frames altered and re-checksummed, dropped,
 * duplicated or reordered; oversized compressed frames; streams of another cycle,
 * relationship, base or disk set; and, in HTTP mode, any stream not signed with the shared
 * token for this very request.
 */
import { afterAll, describe, expect, it } from "vitest";
import { compress } from "zstd-napi";
import { CodecPool } from "./codec-pool.js";
import { encodeFrame, FLAG_ZSTD, FrameError, FrameType, HEADER_SIZE, MAX_PAYLOAD } from "./frames.js";
import { receiveCycle } from "./receiver.js";
import { cycleStream } from "./sender.js";
import type { StreamAuth } from "./stream-auth.js";
import { collect, expectations, expectReplicaMatches, feed, makeDisk, memCycle, mixedDisks, newStats, receiveError, replicaSink, sendOpts, splitFrames, type Kind, type MemDisk } from "../testing/mem-cycle.js";

const pool = new CodecPool();
afterAll(async () => {
  await pool.close();
});

describe("stream integrity", () => {
  async function wireOf(disks: MemDisk[], seq: number, auth?: StreamAuth, stats = newStats()): Promise<Buffer[]> {
    return splitFrames(await collect(cycleStream(memCycle(disks), pool, sendOpts(seq, true, { auth, chunkBytes: 16 * 1024 }), stats)));
  }

  const authA: StreamAuth = { token: "shared-token-A", nonce: "nonce-1" };

  it("the HMAC check passes with the same token and nonce, and fails with another token, another nonce or none from the sender", async () => {
    const disks = mixedDisks(21);
    const stats = newStats();
    const frames = await wireOf(disks, 4, authA, stats);
    const { replica, sink } = replicaSink(disks, pool);
    const result = await receiveCycle(feed(frames), expectations(disks, 4, authA), sink);
    expectReplicaMatches(disks, replica);
    // Both sides agree on the MAC the acknowledgement will cover.
    expect(result.mac).toMatch(/^[0-9a-f]{64}$/);
    expect(result.mac).toBe(stats.mac);

    for (const [name, auth] of [
      ["another token", { ...authA, token: "shared-token-B" }],
      ["another nonce (a replayed upload)", { ...authA, nonce: "nonce-2" }],
    ] as const) {
      const err = await receiveError(frames, expectations(disks, 4, auth));
      expect(err, name).toBeInstanceOf(FrameError);
      expect((err as Error).message, name).toMatch(/signature/);
    }

    const unsigned = await wireOf(disks, 4);
    const missing = await receiveError(unsigned, expectations(disks, 4, authA));
    expect(missing).toBeInstanceOf(FrameError);
    expect((missing as Error).message).toMatch(/signature/);
  });

  it("a data frame altered and re-checksummed in transit is caught by the HMAC", async () => {
    const disks = mixedDisks(22);
    const frames = await wireOf(disks, 5, authA);
    const i = frames.findIndex((f) => f.readUInt8(4) === FrameType.Data && f.readUInt8(5) === 0);
    expect(i).toBeGreaterThanOrEqual(0);
    const f = frames[i]!;
    const payload = Buffer.from(f.subarray(HEADER_SIZE));
    payload[0]! ^= 0xff;
    // xxh3 is not keyed: an attacker can recompute it. Only the stream MAC can notice.
    const header = encodeFrame(
      {
        type: f.readUInt8(4),
        flags: f.readUInt8(5),
        disk: f.readUInt8(6),
        seq: Number(f.readBigUInt64LE(8)),
        index: f.readUInt32LE(16),
        offset: Number(f.readBigUInt64LE(24)),
        length: Number(f.readBigUInt64LE(32)),
      },
      payload,
    );
    const tampered = [...frames.slice(0, i), Buffer.concat([header, payload]), ...frames.slice(i + 1)];
    const err = await receiveError(tampered, expectations(disks, 5, authA));
    expect(err).toBeInstanceOf(FrameError);
    expect((err as Error).message).toMatch(/signature/);
  });

  it("a frame dropped from the middle, duplicated, or reordered is rejected", async () => {
    const disks = mixedDisks(23);
    const frames = await wireOf(disks, 6);
    expect(frames.length).toBeGreaterThan(6);
    const mid = Math.floor(frames.length / 2);
    const variants: [string, Buffer[]][] = [
      ["dropped", [...frames.slice(0, mid), ...frames.slice(mid + 1)]],
      ["duplicated", [...frames.slice(0, mid + 1), frames[mid]!, ...frames.slice(mid + 1)]],
      ["swapped", [...frames.slice(0, mid), frames[mid + 1]!, frames[mid]!, ...frames.slice(mid + 2)]],
      ["last data frame dropped", [...frames.slice(0, -2), frames[frames.length - 1]!]],
    ];
    for (const [name, v] of variants) {
      const err = await receiveError(v, expectations(disks, 6));
      expect(err, name).toBeInstanceOf(FrameError);
      expect((err as Error).message, name).toMatch(/expected/);
    }
    // The untouched stream is accepted, so the rejections above are due to the edits.
    expect(await receiveError(frames, expectations(disks, 6))).toBeUndefined();
  });

  it("a compressed frame that claims more than a frame may carry is rejected before anything is decoded", async () => {
    const d = makeDisk(0, 4096, new Array<Kind>(2048).fill("zero"), 25); // 8 MiB
    const payload = compress(Buffer.alloc(MAX_PAYLOAD + 4096));
    const header = encodeFrame({ type: FrameType.Data, flags: FLAG_ZSTD, disk: 0, seq: 2, index: 0, offset: 0, length: MAX_PAYLOAD + 4096 }, payload);
    const err = await receiveError([Buffer.concat([header, payload])], expectations([d], 2));
    expect(err).toBeInstanceOf(FrameError);
    expect((err as Error).message).toMatch(/more than the 4194304 a frame may carry/);
  });

  it("a stream without its end frame, or for another cycle, relationship, base or disk set is rejected", async () => {
    const disks = mixedDisks(24);
    const frames = await wireOf(disks, 8);
    const noEnd = await receiveError(frames.slice(0, -1), expectations(disks, 8));
    expect(noEnd).toBeInstanceOf(FrameError);
    expect((noEnd as Error).message).toMatch(/end frame/);

    const otherCycle = await receiveError(frames, expectations(disks, 9));
    expect(otherCycle).toBeInstanceOf(FrameError);
    expect((otherCycle as Error).message).toMatch(/cycle 8/);

    const otherRel = await receiveError(frames, expectations(disks, 8, undefined, { relationshipId: "rel-0002" }));
    expect(otherRel).toBeInstanceOf(FrameError);
    expect((otherRel as Error).message).toMatch(/relationship/);

    const otherBase = await receiveError(frames, expectations(disks, 8, undefined, { base: 5 }));
    expect(otherBase).toBeInstanceOf(FrameError);
    expect((otherBase as Error).message).toMatch(/based on cycle 7/);

    const onlyDisk0 = await receiveError(frames, expectations(disks.slice(0, 1), 8));
    expect(onlyDisk0).toBeInstanceOf(FrameError);
    expect((onlyDisk0 as Error).message).toMatch(/disk 2/);
  });
});
