// Worker thread: zstd compression, off the event loop.
// Plain JavaScript so that it loads in any worker without a TypeScript loader.
import { Compressor } from "zstd-napi";

const compressors = new Map();

/** Compresses each part; a part that does not shrink by 3% is reported as not compressed. */
function compress({ parts, level }) {
  let c = compressors.get(level);
  if (!c) {
    c = new Compressor();
    c.setParameters({ compressionLevel: level });
    compressors.set(level, c);
  }
  return parts.map((part) => {
    const raw = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    const z = c.compress(raw);
    return z.length < raw.length * 0.97 ? { payload: new Uint8Array(z.buffer, z.byteOffset, z.byteLength), compressed: true } : { compressed: false };
  });
}

export default function run(task) {
  return compress(task);
}
