/**
 * A small NBD server (fixed newstyle, simple replies) on a unix socket: the agent serves the
 * disks it keeps itself (a replica's raw images with in-agent change tracking, test failover
 * and failover overlays on a recovery point) to a QEMU process, so every guest write goes
 * through the agent's block layer and its guarantees.
 */
import { createServer, type Server, type Socket } from "node:net";
import { rm } from "node:fs/promises";
import { ByteReader } from "./byte-reader.js";

export interface ServedDisk {
  sizeBytes: number;
  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer): Promise<void>;
  /** Makes every acknowledged write durable (the guest's flush, or a write with FUA). */
  flush(): Promise<void>;
}

const IHAVEOPT = 0x49484156454f5054n;
const REPLY_MAGIC = 0x3e889045565a9n;
const OPT = { EXPORT_NAME: 1, ABORT: 2, GO: 7 } as const;
const REP = { ACK: 1, INFO: 3, ERR_UNSUP: 0x80000001, ERR_UNKNOWN: 0x80000006 } as const;
const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3 } as const;
/** Request flag: this write must be durable before it is acknowledged. */
const CMD_FLAG_FUA = 1;
const FLAGS = 1 | 4 | 8; // has flags, send flush, send FUA
const EINVAL = 22;
const EIO = 5;

export class NbdServer {
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /** Serves `disk(name)` (looked up on every connection: disks may be swapped) on `path`. */
  static async listen(path: string, disk: (exportName: string) => ServedDisk | undefined, onError: (err: Error) => void = () => undefined): Promise<NbdServer> {
    await rm(path, { force: true });
    let self: NbdServer | undefined;
    const server = createServer((sock) => {
      self?.sockets.add(sock);
      sock.on("close", () => self?.sockets.delete(sock));
      serve(sock, disk).catch((err: Error) => {
        onError(err);
        sock.destroy();
      });
    });
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(path, () => ok());
    });
    self = new NbdServer(server, path);
    return self;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((ok) => this.server.close(() => ok()));
    await rm(this.path, { force: true });
  }
}

function optionReply(sock: Socket, opt: number, type: number, data = Buffer.alloc(0)): void {
  const h = Buffer.alloc(20);
  h.writeBigUInt64BE(REPLY_MAGIC, 0);
  h.writeUInt32BE(opt, 8);
  h.writeUInt32BE(type, 12);
  h.writeUInt32BE(data.length, 16);
  sock.write(Buffer.concat([h, data]));
}

function simpleReply(sock: Socket, cookie: Buffer, error: number, data?: Buffer): void {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(0x67446698, 0);
  h.writeUInt32BE(error, 4);
  cookie.copy(h, 8);
  sock.write(data ? Buffer.concat([h, data]) : h);
}

async function serve(sock: Socket, lookup: (name: string) => ServedDisk | undefined): Promise<void> {
  const reader = new ByteReader(sock);
  const take = (n: number) => reader.take(n);
  const hello = Buffer.alloc(18);
  hello.write("NBDMAGIC", 0, "latin1");
  hello.writeBigUInt64BE(IHAVEOPT, 8);
  hello.writeUInt16BE(1 | 2, 16); // fixed newstyle, no zeroes
  sock.write(hello);
  const clientFlags = await take(4);
  if (!clientFlags) return;
  const noZeroes = (clientFlags.readUInt32BE(0) & 2) !== 0;
  let disk: ServedDisk | undefined;
  let exportName = "";
  // Option haggling, until the client picks an export.
  while (!disk) {
    const h = await take(16);
    if (!h) return;
    if (h.readBigUInt64BE(0) !== IHAVEOPT) throw new Error("NBD server: bad option magic");
    const opt = h.readUInt32BE(8);
    const data = (await take(h.readUInt32BE(12))) ?? Buffer.alloc(0);
    if (opt === OPT.ABORT) {
      optionReply(sock, opt, REP.ACK);
      sock.end();
      return;
    }
    if (opt === OPT.EXPORT_NAME || opt === OPT.GO) {
      exportName = opt === OPT.GO ? data.toString("utf8", 4, 4 + data.readUInt32BE(0)) : data.toString("utf8");
      const found = lookup(exportName);
      const info = Buffer.alloc(10);
      info.writeBigUInt64BE(BigInt(found?.sizeBytes ?? 0), 0);
      info.writeUInt16BE(FLAGS, 8);
      if (!found) {
        if (opt === OPT.EXPORT_NAME) return void sock.destroy();
        optionReply(sock, opt, REP.ERR_UNKNOWN, Buffer.from(`no export named '${exportName}'`));
        continue;
      }
      disk = found;
      if (opt === OPT.EXPORT_NAME) sock.write(noZeroes ? info : Buffer.concat([info, Buffer.alloc(124)]));
      else {
        optionReply(sock, opt, REP.INFO, Buffer.concat([Buffer.from([0, 0]), info]));
        optionReply(sock, opt, REP.ACK);
      }
      break;
    }
    optionReply(sock, opt, REP.ERR_UNSUP);
  }
  // Transmission: requests answered in order.
  for (;;) {
    const h = await take(28);
    if (!h) return;
    if (h.readUInt32BE(0) !== 0x25609513) throw new Error("NBD server: bad request magic");
    const commandFlags = h.readUInt16BE(4);
    const type = h.readUInt16BE(6);
    const cookie = Buffer.from(h.subarray(8, 16));
    const offset = Number(h.readBigUInt64BE(16));
    const length = h.readUInt32BE(24);
    const current = lookup(exportName) ?? disk;
    if (type === CMD.DISC) return void sock.end();
    if (type === CMD.WRITE) {
      const data = await take(length);
      if (!data) return;
      const durable = async () => {
        await current.write(offset, Buffer.from(data));
        if (commandFlags & CMD_FLAG_FUA) await current.flush();
      };
      const err = offset + length > current.sizeBytes ? EINVAL : await durable().then(() => 0, () => EIO);
      simpleReply(sock, cookie, err);
    } else if (type === CMD.READ) {
      if (offset + length > current.sizeBytes) simpleReply(sock, cookie, EINVAL);
      else {
        const data = await current.read(offset, length).catch(() => undefined);
        if (data) simpleReply(sock, cookie, 0, data);
        else simpleReply(sock, cookie, EIO);
      }
    } else if (type === CMD.FLUSH) {
      // Answered once what was written before it is on stable storage: the guest's fsync relies on it.
      simpleReply(sock, cookie, await current.flush().then(() => 0, () => EIO));
    } else simpleReply(sock, cookie, EINVAL);
  }
}
