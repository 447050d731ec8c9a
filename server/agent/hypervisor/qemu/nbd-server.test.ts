/**
 * The agent's NBD server keeps the guest's durability promises: a flush is answered only once
 * the served disk made earlier writes durable, a write with FUA only once it is durable itself,
 * and a disk that cannot make them durable answers an error instead of success.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../../testing/harness.js";
import { NbdClient } from "./nbd-client.js";
import { NbdServer, type ServedDisk } from "./nbd-server.js";

const SIZE = 1024 * 1024;

/** A disk in memory that logs what was asked of it, in order; `failFlush` makes flushes fail. */
function recordingDisk(opts: { failFlush?: boolean } = {}): { disk: ServedDisk; log: string[]; durable: Buffer } {
  const data = Buffer.alloc(SIZE);
  const durable = Buffer.alloc(SIZE);
  const log: string[] = [];
  const disk: ServedDisk = {
    sizeBytes: SIZE,
    read: async (offset, length) => Buffer.from(data.subarray(offset, offset + length)),
    write: async (offset, bytes) => {
      log.push(`write ${offset}+${bytes.length}`);
      bytes.copy(data, offset);
    },
    flush: async () => {
      // Slow on purpose: an answer sent before the flush finished would be seen first.
      await new Promise((r) => setTimeout(r, 20));
      if (opts.failFlush) throw new Error("EIO");
      data.copy(durable);
      log.push("flush");
    },
  };
  return { disk, log, durable };
}

describe("NBD server durability", () => {
  let server: NbdServer | undefined;
  let client: NbdClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.close();
  });

  async function connect(disk: ServedDisk): Promise<NbdClient> {
    const path = join(await tempDir(), "nbd.sock");
    server = await NbdServer.listen(path, (name) => (name === "disk0" ? disk : undefined));
    return (client = await NbdClient.connect(path, "disk0"));
  }

  it("answers a flush only once the disk made the writes before it durable", async () => {
    const { disk, log, durable } = recordingDisk();
    const nbd = await connect(disk);
    await nbd.write(4096, Buffer.alloc(8192, 0xab));
    expect(durable.subarray(4096, 4096 + 8192).every((b) => b === 0)).toBe(true);
    await nbd.flush();
    expect(log).toEqual(["write 4096+8192", "flush"]);
    expect(durable.subarray(4096, 4096 + 8192).every((b) => b === 0xab)).toBe(true);
  });

  it("makes a write with FUA durable before answering it; a plain write is not flushed", async () => {
    const { disk, log, durable } = recordingDisk();
    const nbd = await connect(disk);
    await nbd.write(0, Buffer.alloc(4096, 1));
    expect(log).toEqual(["write 0+4096"]);
    await nbd.write(8192, Buffer.alloc(4096, 2), { fua: true });
    expect(log).toEqual(["write 0+4096", "write 8192+4096", "flush"]);
    expect(durable[8192]).toBe(2);
  });

  it("answers an error when the disk cannot make the writes durable", async () => {
    const { disk } = recordingDisk({ failFlush: true });
    const nbd = await connect(disk);
    await nbd.write(0, Buffer.alloc(4096, 1));
    await expect(nbd.flush()).rejects.toThrow();
    await expect(nbd.write(0, Buffer.alloc(4096, 1), { fua: true })).rejects.toThrow();
  });
});
