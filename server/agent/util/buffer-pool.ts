/**
 * Page-aligned buffers for frame payloads, reused.
 *
 * Direct I/O (O_DIRECT) needs memory aligned to the disk's blocks, and WebAssembly memories are
 * the one page-aligned allocation JavaScript offers. Reuse matters as much: every fresh 1 MiB
 * buffer counts toward V8's next full collection (which then marks the whole heap), and fresh
 * pages cost the kernel most on a virtual machine (measured: streaming 2 GiB with fresh
 * buffers spent half its time in garbage collection on the primary).
 */
export const ALIGN = 4096;
const WASM_PAGE = 64 * 1024;

const alignedMemories = new WeakSet<ArrayBufferLike>();

/** A fresh page-aligned buffer of at least `bytes` (rounded up to 64 KiB), not pooled. */
export function alignedBuffer(bytes: number): Buffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  // Shared: a worker thread (compression) reads a view of it in place, where an ordinary
  // buffer would be copied whole into the worker, every pooled buffer of its region with it.
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  alignedMemories.add(memory.buffer);
  return Buffer.from(memory.buffer, 0, bytes);
}

/** Whether `buf` starts at a page-aligned address (a pooled or aligned buffer, or an aligned part of one). */
export function isAligned(buf: Uint8Array): boolean {
  return alignedMemories.has(buf.buffer) && buf.byteOffset % ALIGN === 0;
}

export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Every pooled buffer by its memory and offset, and whether it is free. */
  private readonly regions = new Map<ArrayBufferLike, Map<number, { buf: Buffer; free: boolean }>>();
  private created = 0;

  /**
   * @param size bytes of each pooled buffer, a multiple of 64 KiB
   * @param perRegion buffers carved from one WebAssembly memory
   */
  constructor(
    readonly size: number,
    private readonly perRegion = 8,
  ) {
    if (size <= 0 || size % WASM_PAGE !== 0) throw new Error(`buffer size ${size} is not a positive multiple of 64 KiB`);
  }

  /** Buffers made so far (the pool's high-water mark). */
  get allocated(): number {
    return this.created;
  }

  /** Buffers free for reuse (equal to `allocated` when everything was released). */
  get available(): number {
    return this.free.length;
  }

  /**
   * A buffer of `bytes` (at most `size`: a pooled one, to release when done; larger: a fresh
   * aligned one, for which release does nothing). Its contents are whatever was there.
   */
  acquire(bytes = this.size): Buffer {
    if (bytes > this.size) return alignedBuffer(bytes);
    if (this.free.length === 0) {
      const region = alignedBuffer(this.size * this.perRegion);
      const slots = new Map<number, { buf: Buffer; free: boolean }>();
      for (let i = 0; i < this.perRegion; i++) {
        const buf = region.subarray(i * this.size, (i + 1) * this.size);
        slots.set(buf.byteOffset, { buf, free: true });
        this.free.push(buf);
      }
      this.regions.set(region.buffer, slots);
      this.created += this.perRegion;
    }
    const buf = this.free.pop()!;
    this.regions.get(buf.buffer)!.get(buf.byteOffset)!.free = false;
    return bytes === this.size ? buf : buf.subarray(0, bytes);
  }

  /** Gives back a buffer from acquire (or its start, as acquire returned it); others are ignored. */
  release(buf: Uint8Array): void {
    const slot = this.regions.get(buf.buffer)?.get(buf.byteOffset);
    if (!slot) return;
    if (slot.free) throw new Error("a pooled buffer was released twice");
    slot.free = true;
    this.free.push(slot.buf);
  }
}
