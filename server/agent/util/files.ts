import { readFileSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

/** pread that fills the whole buffer (short reads past EOF of a sparse file give zeros). */
export async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<Buffer> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) {
      buf.fill(0, done);
      break;
    }
    done += bytesRead;
  }
  return buf;
}

export async function writeFully(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Creates a sparse file of the given size, failing if it exists. */
export async function createSparseFile(path: string, size: number): Promise<void> {
  const fh = await open(path, "wx");
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

let bootId: string | undefined;
/** Changes at every boot of the host: tells a process crash from a host crash. */
export function currentBootId(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    } catch {
      bootId = "unknown";
    }
  }
  return bootId;
}

const ZERO_BLOCK = Buffer.alloc(64 * 1024);
export function isZero(buf: Uint8Array): boolean {
  for (let off = 0; off < buf.length; off += ZERO_BLOCK.length) {
    const end = Math.min(buf.length, off + ZERO_BLOCK.length);
    if (Buffer.compare(buf.subarray(off, end), ZERO_BLOCK.subarray(0, end - off)) !== 0) return false;
  }
  return true;
}

