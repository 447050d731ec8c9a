/**
 * A small NBD client (fixed newstyle handshake, structured replies, block status) for the
 * exports QEMU and qemu-storage-daemon serve on unix sockets: the agent reads and writes
 * QEMU disks and reads a frozen view and its dirty-bitmap extents through it.
 */
import { connect as netConnect, type Socket } from "node:net";
import { ByteReader } from "./byte-reader.js";

const IHAVEOPT = 0x49484156454f5054n;
const REPLY_MAGIC = 0x3e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY = 0x67446698;
const STRUCTURED_REPLY = 0x668e33ef;
const OPT = { GO: 7, STRUCTURED_REPLY: 8, SET_META_CONTEXT: 10 } as const;
const REP = { ACK: 1, INFO: 3, META_CONTEXT: 4 } as const;
const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, BLOCK_STATUS: 7 } as const;
const CMD_FLAG_FUA = 1;
const CHUNK = { NONE: 0, OFFSET_DATA: 1, OFFSET_HOLE: 2, BLOCK_STATUS: 5 } as const;
const MAX_IO = 4 * 1024 * 1024;

interface Pending {
  parts: Buffer[];
  readOffset: number;
  readBuf?: Buffer;
  extents: [number, number][];
  ok: () => void;
  fail: (e: Error) => void;
}

/** An extent reported by block status: [offset, length, flags]. */
export type Extent = [number, number, number];

export class NbdClient {
  private readonly reader: ByteReader;
  private ended: Error | undefined;
  private nextCookie = 1n;
  private readonly pending = new Map<bigint, Pending>();
  private metaContextId: number | undefined;
  sizeBytes = 0;

  private constructor(private readonly sock: Socket) {
    this.reader = new ByteReader(sock);
    const end = (err?: Error) => {
      this.ended ??= err ?? new Error("NBD connection closed");
      for (const p of this.pending.values()) p.fail(this.ended);
      this.pending.clear();
    };
    sock.on("error", end);
    sock.on("close", () => end());
  }

  /** Connects to `export` on a unix socket; `metaContext` (e.g. `qemu:dirty-bitmap:b1`) enables block status. */
  static async connect(socketPath: string, exportName: string, metaContext?: string): Promise<NbdClient> {
    const sock = await new Promise<Socket>((ok, fail) => {
      const s = netConnect(socketPath);
      s.once("connect", () => ok(s));
      s.once("error", fail);
    });
    const c = new NbdClient(sock);
    try {
      await c.handshake(exportName, metaContext);
    } catch (err) {
      sock.destroy();
      throw err;
    }
    void c.replyLoop();
    return c;
  }

  private async take(n: number): Promise<Buffer> {
    const out = await this.reader.take(n);
    if (!out) throw this.ended ?? this.reader.error ?? new Error("NBD connection closed");
    return out;
  }

  private sendOption(opt: number, data: Buffer): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(opt, 8);
    h.writeUInt32BE(data.length, 12);
    this.sock.write(Buffer.concat([h, data]));
  }

  /** Option replies until ACK; returns the non-ACK replies. */
  private async optionReplies(opt: number): Promise<{ type: number; data: Buffer }[]> {
    const out: { type: number; data: Buffer }[] = [];
    for (;;) {
      const h = await this.take(20);
      if (h.readBigUInt64BE(0) !== REPLY_MAGIC) throw new Error("NBD: bad option reply magic");
      const type = h.readUInt32BE(12);
      const data = Buffer.from(await this.take(h.readUInt32BE(16)));
      if (type & 0x80000000) throw new Error(`NBD: option ${opt} refused (${type & 0x7fffffff}): ${data.subarray(0).toString("utf8")}`);
      if (type === REP.ACK) return out;
      out.push({ type, data });
    }
  }

  private async handshake(exportName: string, metaContext?: string): Promise<void> {
    const hello = await this.take(18);
    if (hello.toString("latin1", 0, 8) !== "NBDMAGIC" || hello.readBigUInt64BE(8) !== IHAVEOPT) throw new Error("NBD: not a newstyle NBD server");
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(1 | 2); // fixed newstyle, no zeroes
    this.sock.write(flags);
    const name = Buffer.from(exportName);
    const nameField = Buffer.concat([u32(name.length), name]);
    // Structured replies (QEMU's servers) carry block status; a server without them (the
    // agent's own) is read and written with simple replies.
    this.sendOption(OPT.STRUCTURED_REPLY, Buffer.alloc(0));
    const structured = await this.optionReplies(OPT.STRUCTURED_REPLY).then(
      () => true,
      (err: Error) => {
        if (this.ended) throw err;
        return false;
      },
    );
    if (metaContext) {
      if (!structured) throw new Error(`NBD: export '${exportName}' offers no structured replies, so no meta context ${metaContext}`);
      const q = Buffer.from(metaContext);
      this.sendOption(OPT.SET_META_CONTEXT, Buffer.concat([nameField, u32(1), u32(q.length), q]));
      const replies = await this.optionReplies(OPT.SET_META_CONTEXT);
      const ctx = replies.find((r) => r.type === REP.META_CONTEXT);
      if (!ctx) throw new Error(`NBD: export '${exportName}' has no meta context ${metaContext}`);
      this.metaContextId = ctx.data.readUInt32BE(0);
    }
    this.sendOption(OPT.GO, Buffer.concat([nameField, Buffer.from([0, 0])]));
    for (const r of await this.optionReplies(OPT.GO)) {
      if (r.type === REP.INFO && r.data.readUInt16BE(0) === 0) this.sizeBytes = Number(r.data.readBigUInt64BE(2));
    }
  }

  private async replyLoop(): Promise<void> {
    try {
      for (;;) {
        const magic = (await this.take(4)).readUInt32BE(0);
        if (magic === SIMPLE_REPLY) {
          const h = await this.take(12);
          const error = h.readUInt32BE(0);
          const p = this.pending.get(h.readBigUInt64BE(4));
          if (!p) throw new Error("NBD: reply to an unknown request");
          this.pending.delete(h.readBigUInt64BE(4));
          if (error) p.fail(new Error(`NBD request failed with error ${error}`));
          else if (p.readBuf) {
            (await this.take(p.readBuf.length)).copy(p.readBuf);
            p.ok();
          } else p.ok();
        } else if (magic === STRUCTURED_REPLY) {
          const h = await this.take(16);
          const flags = h.readUInt16BE(0);
          const type = h.readUInt16BE(2);
          const cookie = h.readBigUInt64BE(4);
          const payload = await this.take(h.readUInt32BE(12));
          const p = this.pending.get(cookie);
          if (!p) throw new Error("NBD: reply to an unknown request");
          if (type & 0x8000) {
            const msgLen = payload.readUInt16BE(4);
            this.pending.delete(cookie);
            p.fail(new Error(`NBD request failed with error ${payload.readUInt32BE(0)}: ${payload.toString("utf8", 6, 6 + msgLen)}`));
            continue;
          }
          if (type === CHUNK.OFFSET_DATA && p.readBuf) payload.copy(p.readBuf, Number(payload.readBigUInt64BE(0)) - p.readOffset, 8);
          else if (type === CHUNK.OFFSET_HOLE && p.readBuf) {
            const at = Number(payload.readBigUInt64BE(0)) - p.readOffset;
            p.readBuf.fill(0, at, at + payload.readUInt32BE(8));
          } else if (type === CHUNK.BLOCK_STATUS) {
            for (let off = 4; off + 8 <= payload.length; off += 8) p.extents.push([payload.readUInt32BE(off), payload.readUInt32BE(off + 4)]);
          }
          if (flags & 1) {
            this.pending.delete(cookie);
            p.ok();
          }
        } else throw new Error(`NBD: bad reply magic ${magic.toString(16)}`);
      }
    } catch (err) {
      this.ended ??= err as Error;
      for (const p of this.pending.values()) p.fail(this.ended);
      this.pending.clear();
      this.sock.destroy();
    }
  }

  private request(type: number, offset: number, length: number, opts: { data?: Buffer; readBuf?: Buffer; flags?: number } = {}): Promise<Pending> {
    if (this.ended) return Promise.reject(this.ended);
    const cookie = this.nextCookie++;
    const h = Buffer.alloc(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(opts.flags ?? 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(cookie, 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    return new Promise((ok, fail) => {
      const p: Pending = { parts: [], readOffset: offset, readBuf: opts.readBuf, extents: [], ok: () => ok(p), fail };
      this.pending.set(cookie, p);
      this.sock.write(opts.data ? Buffer.concat([h, opts.data]) : h);
    });
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    const reqs: Promise<Pending>[] = [];
    for (let off = 0; off < length; off += MAX_IO) {
      const n = Math.min(MAX_IO, length - off);
      reqs.push(this.request(CMD.READ, offset + off, n, { readBuf: out.subarray(off, off + n) }));
    }
    await Promise.all(reqs);
    return out;
  }

  /** Writes `data`; with `fua` (forced unit access), each request is durable before it is answered. */
  async write(offset: number, data: Uint8Array, opts: { fua?: boolean } = {}): Promise<void> {
    const reqs: Promise<Pending>[] = [];
    for (let off = 0; off < data.length; off += MAX_IO) {
      const part = Buffer.from(data.buffer, data.byteOffset + off, Math.min(MAX_IO, data.length - off));
      reqs.push(this.request(CMD.WRITE, offset + off, part.length, { data: part, flags: opts.fua ? CMD_FLAG_FUA : 0 }));
    }
    await Promise.all(reqs);
  }

  async flush(): Promise<void> {
    await this.request(CMD.FLUSH, 0, 0);
  }

  /** Block status of the negotiated meta context over [offset, offset + length), as extents. */
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    if (this.metaContextId === undefined) throw new Error("NBD: no meta context was negotiated");
    const out: Extent[] = [];
    const end = offset + length;
    let at = offset;
    while (at < end) {
      const p = await this.request(CMD.BLOCK_STATUS, at, Math.min(end - at, 0x80000000));
      if (p.extents.length === 0) throw new Error("NBD: empty block status reply");
      for (const [len, flags] of p.extents) {
        const n = Math.min(len, end - at);
        if (n <= 0) break;
        out.push([at, n, flags]);
        at += n;
      }
    }
    return out;
  }

  close(): void {
    if (!this.ended) {
      const h = Buffer.alloc(28);
      h.writeUInt32BE(REQUEST_MAGIC, 0);
      h.writeUInt16BE(CMD.DISC, 6);
      this.sock.end(h);
    }
    this.ended ??= new Error("NBD connection closed");
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
