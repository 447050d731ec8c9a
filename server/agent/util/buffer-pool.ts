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

/**
 * A fresh page-aligned buffer of `bytes` (its memory rounded up to 64 KiB), not pooled. Shared
 * memory lets a worker thread (compression) read and write a view of it in place, where an
 * ordinary buffer is copied whole into the worker, every other view of its memory with it;
 * but copies into shared memory are slower, so memory that stays on one thread is not shared.
 */
export function alignedBuffer(bytes: number, shared = false): Buffer {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  alignedMemories.add(memory.buffer);
  return Buffer.from(memory.buffer, 0, bytes);
}

/** Whether `buf` starts at a page-aligned address (a pooled or aligned buffer, or an aligned part of one). */
export function isAligned(buf: Uint8Array): boolean {
  return alignedMemories.has(buf.buffer) && buf.byteOffset % ALIGN === 0;
}

const MIN_CLASS = ALIGN;
const REGION_BYTES = 1024 * 1024;

interface Slot {
  buf: Buffer;
  free: boolean;
  region: Region;
}

interface Region {
  slots: Map<number, Slot>;
  classBytes: number;
  freeSlots: number;
}

/**
 * Buffers in power-of-two size classes from 4 KiB up to `maxBytes`, carved from shared
 * WebAssembly memories of at least 1 MiB, each buffer reused once released. `trim` returns
 * wholly idle memories to the system after a burst (a large cycle kept in memory).
 */
export class BufferPool {
  private readonly free = new Map<number, Slot[]>();
  private readonly regions = new Map<ArrayBufferLike, Region>();
  private allocated = 0;
  private idle = 0;

  constructor(
    readonly maxBytes = 1024 * 1024,
    /** Shared memory, for buffers worker threads use (see alignedBuffer). */
    readonly shared = false,
  ) {
    if (maxBytes < MIN_CLASS || (maxBytes & (maxBytes - 1)) !== 0) throw new Error(`largest pooled buffer of ${maxBytes} bytes is not a power of two of at least 4 KiB`);
  }

  /** Bytes of memory the pool holds, and how many of them are free for reuse. */
  get bytes(): { allocated: number; idle: number } {
    return { allocated: this.allocated, idle: this.idle };
  }

  /**
   * A page-aligned buffer of `bytes`: pooled up to `maxBytes` (release it when done), a fresh
   * one above (release does nothing). Its contents are whatever was there.
   */
  acquire(bytes: number): Buffer {
    if (bytes > this.maxBytes) return alignedBuffer(bytes, this.shared);
    let classBytes = MIN_CLASS;
    while (classBytes < bytes) classBytes *= 2;
    let list = this.free.get(classBytes);
    if (!list) this.free.set(classBytes, (list = []));
    if (list.length === 0) this.grow(classBytes, list);
    const slot = list.pop()!;
    slot.free = false;
    slot.region.freeSlots--;
    this.idle -= classBytes;
    return slot.buf.subarray(0, bytes);
  }

  private grow(classBytes: number, list: Slot[]): void {
    const memory = alignedBuffer(Math.max(REGION_BYTES, classBytes), this.shared);
    const region: Region = { slots: new Map(), classBytes, freeSlots: 0 };
    for (let at = 0; at + classBytes <= memory.length; at += classBytes) {
      const slot: Slot = { buf: memory.subarray(at, at + classBytes), free: true, region };
      region.slots.set(memory.byteOffset + at, slot);
      list.push(slot);
      region.freeSlots++;
    }
    this.regions.set(memory.buffer, region);
    this.allocated += memory.length;
    this.idle += memory.length;
  }

  /** Gives back a buffer from acquire; buffers the pool did not hand out are ignored. */
  release(buf: Uint8Array): void {
    const region = this.regions.get(buf.buffer);
    const slot = region?.slots.get(buf.byteOffset);
    if (!region || !slot) return;
    if (slot.free) throw new Error("a pooled buffer was released twice");
    slot.free = true;
    region.freeSlots++;
    this.idle += region.classBytes;
    this.free.get(region.classBytes)!.push(slot);
  }

  /** Lets go of memories none of whose buffers are in use, until at most `keepIdleBytes` stay idle. */
  trim(keepIdleBytes: number): void {
    for (const [memory, region] of this.regions) {
      if (this.idle <= keepIdleBytes) return;
      if (region.freeSlots !== region.slots.size) continue;
      this.regions.delete(memory);
      const list = this.free.get(region.classBytes)!;
      this.free.set(region.classBytes, list.filter((s) => s.region !== region));
      const bytes = region.slots.size * region.classBytes;
      this.allocated -= bytes;
      this.idle -= bytes;
    }
  }
}
