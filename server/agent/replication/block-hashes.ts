/**
 * Block hashes for resynchronization: both sides hash the same blocks (XXH3-128, 16 bytes
 * each) and only blocks whose hashes differ are sent. In HTTP mode the replica signs its
 * answer with the shared token, bound to the request and its nonce, so a tampered answer
 * cannot make the primary skip blocks.
 */
import { createHmac } from "node:crypto";
import { xxh3 } from "@node-rs/xxhash";
import type { BlockHashesBody } from "../../shared/agent-api.js";

export const HASH_BYTES = 16;

/** Hashes each blockSize piece of buf into out at slot `at` onwards; returns the next slot. */
export function hashBlocks(buf: Buffer, blockSize: number, out: Buffer, at: number): number {
  for (let off = 0; off < buf.length; off += blockSize) {
    const h = xxh3.xxh128(buf.subarray(off, off + blockSize));
    out.writeBigUInt64LE(h & 0xffffffffffffffffn, at * HASH_BYTES);
    out.writeBigUInt64LE(h >> 64n, at * HASH_BYTES + 8);
    at++;
  }
  return at;
}

const READ = 4 * 1024 * 1024;

/**
 * The hashes of every `blockSize` block of `ranges` ([offset, length] pairs), in order, read
 * a few MiB at a time through `read(offset, length)`: the same on both sides of a resync.
 */
export async function hashRanges(ranges: [number, number][], blockSize: number, read: (offset: number, length: number) => Promise<Buffer>): Promise<Buffer> {
  const total = ranges.reduce((n, [, l]) => n + l, 0);
  const out = Buffer.alloc((total / blockSize) * HASH_BYTES);
  let slot = 0;
  for (const [offset, length] of ranges) {
    for (let off = offset; off < offset + length; off += READ) {
      slot = hashBlocks(await read(off, Math.min(READ, offset + length - off)), blockSize, out, slot);
    }
  }
  return out;
}

export function blockHashesMac(token: string, relationshipId: string, nonce: string, req: BlockHashesBody, hashes: Buffer): string {
  return createHmac("sha256", token)
    .update(`replica-manager block-hashes v1\n${relationshipId}\n${nonce}\n${JSON.stringify([req.disk, req.blockSize, req.ranges])}\n`)
    .update(hashes)
    .digest("hex");
}
