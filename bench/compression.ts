/** zstd against gzip on guest-like data: why the replication stream uses zstd level 1. */
import { randomFillSync } from "node:crypto";
import { gzipSync } from "node:zlib";
import { Compressor } from "zstd-napi";

export interface CompressionResult {
  codec: string;
  MiBps: number;
  ratio: number;
}

export function benchCompression(): CompressionResult[] {
  const MiB = 1024 * 1024;
  const chunks = Array.from({ length: 64 }, () => {
    const b = Buffer.allocUnsafe(MiB);
    randomFillSync(b, 0, MiB / 2);
    b.fill("invoice 2026-11-22 customer=ACME total=1234.56 status=paid ", MiB / 2);
    return b;
  });
  const codecs: [string, (b: Buffer) => Buffer][] = [
    ["zstd level -1", (() => {
      const c = new Compressor();
      c.setParameters({ compressionLevel: -1 });
      return (b: Buffer) => c.compress(b);
    })()],
    ["zstd level 1", (() => {
      const c = new Compressor();
      c.setParameters({ compressionLevel: 1 });
      return (b: Buffer) => c.compress(b);
    })()],
    ["zstd level 3", (() => {
      const c = new Compressor();
      c.setParameters({ compressionLevel: 3 });
      return (b: Buffer) => c.compress(b);
    })()],
    ["gzip level 1", (b) => gzipSync(b, { level: 1 })],
    ["gzip level 6", (b) => gzipSync(b, { level: 6 })],
  ];
  return codecs.map(([codec, fn]) => {
    // A warm-up pass first: whichever codec ran first used to pay for the others' warm-up.
    for (const c of chunks.slice(0, 8)) fn(c);
    let out = 0;
    const t = process.hrtime.bigint();
    for (const c of chunks) out += fn(c).length;
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    return { codec, MiBps: chunks.length / seconds, ratio: (chunks.length * MiB) / out };
  });
}
