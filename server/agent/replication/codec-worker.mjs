// Worker thread: zero detection, zstd compression and decompression, off the event loop.
// Plain JavaScript so that it loads in any worker without a TypeScript loader.
import { Compressor, decompress } from "zstd-napi";

const ZERO = Buffer.alloc(4096);
let compressor;

function isZeroBlock(buf, off, len) {
  return ZERO.compare(buf, off, off + len, 0, len) === 0;
}

/**
 * Splits a chunk into runs of zero blocks and runs of data, compressing the data runs when
 * that saves at least 3%; incompressible data goes raw so the wire never carries more.
 */
function encode({ runs, blockSize, compress, level }) {
  const pieces = [];
  for (const run of runs) encodeRun(run.offset, run.data, blockSize, compress, level, pieces);
  return pieces;
}

function encodeRun(base, data, blockSize, compress, level, pieces) {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let runStart = 0;
  let runZero = null;
  const flush = (end) => {
    if (runZero === null || end === runStart) return;
    if (runZero) {
      pieces.push({ zero: true, offset: base + runStart, length: end - runStart });
    } else {
      const raw = buf.subarray(runStart, end);
      let payload = raw;
      let compressed = false;
      if (compress) {
        if (!compressor) {
          compressor = new Compressor();
          compressor.setParameters({ compressionLevel: level });
        }
        const z = compressor.compress(raw);
        if (z.length < raw.length * 0.97) {
          payload = z;
          compressed = true;
        }
      }
      pieces.push({ zero: false, offset: base + runStart, length: end - runStart, payload: new Uint8Array(payload), compressed });
    }
  };
  for (let off = 0; off < buf.length; off += blockSize) {
    const len = Math.min(blockSize, buf.length - off);
    const zero = isZeroBlock(buf, off, len);
    if (zero !== runZero) {
      flush(off);
      runStart = off;
      runZero = zero;
    }
  }
  flush(buf.length);
}

function decode({ payload, length }) {
  const out = decompress(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  if (out.length !== length) throw new Error(`decompressed ${out.length} bytes, frame says ${length}`);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export default function run(task) {
  return task.op === "encode" ? encode(task) : decode(task);
}
