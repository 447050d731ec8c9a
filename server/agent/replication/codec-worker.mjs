// Worker thread: zstd compression, off the event loop.
// Plain JavaScript so that it loads in any worker without a TypeScript loader.
import binding from "zstd-napi/binding.js";

const cctx = new binding.CCtx();

/**
 * Compresses each part into `out` (shared memory, written in place), one after the other. A
 * part that does not shrink by 3% is reported as not compressed: it would not fit its budget.
 */
function compress({ parts, out, level }) {
  let at = 0;
  return parts.map((part) => {
    const budget = Math.floor(part.byteLength * 0.97);
    try {
      const n = cctx.compress(out.subarray(at, at + budget), part, level);
      const result = { at, length: n, compressed: true };
      at += n;
      return result;
    } catch {
      return { compressed: false }; // larger than its budget
    }
  });
}

export default function run(task) {
  return compress(task);
}
