/**
 * Bitmap: the dirty-block set every cycle is cut from. runs() is checked against a naive
 * bit-by-bit reference because its word-skipping fast paths are where off-by-ones hide.
 */
import { describe, expect, it } from "vitest";
import { Bitmap } from "./bitmap.js";
import { rng } from "../testing/random.js";

/** Reference: maximal runs of set bits, each cut greedily into pieces of at most maxRun. */
function naiveRuns(bits: boolean[], maxRun = Number.MAX_SAFE_INTEGER): [number, number][] {
  const out: [number, number][] = [];
  let i = 0;
  while (i < bits.length) {
    if (!bits[i]) {
      i++;
      continue;
    }
    let end = i;
    while (end < bits.length && bits[end]) end++;
    for (let s = i; s < end; s += maxRun) out.push([s, Math.min(end, s + maxRun)]);
    i = end;
  }
  return out;
}

function bitsOf(b: Bitmap): boolean[] {
  return Array.from({ length: b.size }, (_, i) => b.get(i));
}

/** A random bitmap made of alternating clear/set runs, so it has empty words, full words and ragged edges. */
function randomBitmap(size: number, next: () => number): { bitmap: Bitmap; bits: boolean[] } {
  const bitmap = new Bitmap(size);
  const bits = new Array<boolean>(size).fill(false);
  let i = 0;
  let on = next() < 0.5;
  while (i < size) {
    // Mostly short runs, sometimes long ones spanning several words.
    const len = next() < 0.2 ? 1 + Math.floor(next() * 200) : 1 + Math.floor(next() * 40);
    const end = Math.min(size, i + len);
    if (on) {
      // Alternate between the two ways of setting bits, so both paths feed runs().
      if (next() < 0.5) bitmap.setRange(i, end);
      else for (let j = i; j < end; j++) bitmap.set(j);
      for (let j = i; j < end; j++) bits[j] = true;
    }
    on = !on;
    i = end;
  }
  return { bitmap, bits };
}

describe("Bitmap basics", () => {
  it("get/set address individual bits, including bit 31 of a word", () => {
    const b = new Bitmap(100);
    for (const i of [0, 31, 32, 63, 64, 99]) b.set(i);
    expect([...Array(100).keys()].filter((i) => b.get(i))).toEqual([0, 31, 32, 63, 64, 99]);
    expect(b.count()).toBe(6);
  });

  it("setRange sets exactly [from, to) across partial and full words", () => {
    for (const [from, to] of [
      [0, 0],
      [3, 4],
      [5, 31],
      [31, 33],
      [0, 32],
      [32, 96],
      [7, 200],
      [17, 250],
    ] as const) {
      const b = new Bitmap(250);
      b.setRange(from, to);
      const bits = bitsOf(b);
      expect(bits.every((v, i) => v === (i >= from && i < to))).toBe(true);
      expect(b.count()).toBe(to - from);
    }
  });

  it("setAll on a size that is not a multiple of 32 leaves the bits past the end clear", () => {
    const b = new Bitmap(70);
    b.setAll();
    expect(b.count()).toBe(70);
    // The last word holds bits 64..69 only; garbage past size would inflate counts elsewhere.
    expect(b.words[2]).toBe(0b111111);
  });

  it("count is right for full words (the popcount must not overflow on 0xffffffff)", () => {
    const b = new Bitmap(32 * 5);
    b.setAll();
    expect(b.count()).toBe(160);
    const next = rng(7);
    for (let t = 0; t < 20; t++) {
      const { bitmap, bits } = randomBitmap(1 + Math.floor(next() * 2000), next);
      expect(bitmap.count()).toBe(bits.filter(Boolean).length);
    }
  });

  it("isEmpty, clear", () => {
    const b = new Bitmap(40);
    expect(b.isEmpty()).toBe(true);
    b.set(39);
    expect(b.isEmpty()).toBe(false);
    b.clear();
    expect(b.isEmpty()).toBe(true);
    expect(b.count()).toBe(0);
  });

  it("or merges another bitmap in place", () => {
    const a = new Bitmap(100);
    const b = new Bitmap(100);
    a.setRange(0, 10);
    b.setRange(5, 40);
    b.set(99);
    a.or(b);
    expect([...a.runs()]).toEqual([
      [0, 40],
      [99, 100],
    ]);
    // The argument is not modified.
    expect([...b.runs()]).toEqual([
      [5, 40],
      [99, 100],
    ]);
  });

  it("clone is independent of the original", () => {
    const a = new Bitmap(64);
    a.set(3);
    const c = a.clone();
    c.set(40);
    a.set(10);
    expect([...c.runs()]).toEqual([
      [3, 4],
      [40, 41],
    ]);
    expect([...a.runs()]).toEqual([
      [3, 4],
      [10, 11],
    ]);
    expect(c.size).toBe(64);
  });

  it("toBuffer/fromBuffer round trip keeps size and bits", () => {
    const next = rng(42);
    for (const size of [1, 31, 32, 33, 100, 1000, 4097]) {
      const { bitmap, bits } = randomBitmap(size, next);
      const buf = Buffer.from(bitmap.toBuffer()); // a copy, as if read back from a file
      expect(buf.length).toBe(Math.ceil(size / 32) * 4);
      const back = Bitmap.fromBuffer(size, buf);
      expect(back.size).toBe(size);
      expect(bitsOf(back)).toEqual(bits);
      expect([...back.runs()]).toEqual(naiveRuns(bits));
    }
  });

  it("fromBuffer tolerates a short buffer (missing words read as clear)", () => {
    const back = Bitmap.fromBuffer(96, Buffer.from([0xff, 0, 0, 0]));
    expect([...back.runs()]).toEqual([[0, 8]]);
  });
});

describe("Bitmap.runs", () => {
  it("is empty for an empty bitmap and for size 0", () => {
    expect([...new Bitmap(1000).runs()]).toEqual([]);
    expect([...new Bitmap(0).runs()]).toEqual([]);
  });

  it("joins runs across word boundaries and through full words", () => {
    const b = new Bitmap(200);
    b.setRange(30, 130); // partial word, three full words, partial word
    expect([...b.runs()]).toEqual([[30, 130]]);
  });

  it("ends a run that reaches the last, partial word at size", () => {
    const b = new Bitmap(70);
    b.setRange(60, 70);
    expect([...b.runs()]).toEqual([[60, 70]]);
    const full = new Bitmap(70);
    full.setAll();
    expect([...full.runs()]).toEqual([[0, 70]]);
    expect([...full.runs(32)]).toEqual([
      [0, 32],
      [32, 64],
      [64, 70],
    ]);
  });

  it("splits at maxRun inside a word and across words", () => {
    const b = new Bitmap(100);
    b.setRange(3, 20);
    expect([...b.runs(5)]).toEqual([
      [3, 8],
      [8, 13],
      [13, 18],
      [18, 20],
    ]);
    const c = new Bitmap(100);
    c.setRange(20, 50);
    expect([...c.runs(16)]).toEqual([
      [20, 36],
      [36, 50],
    ]);
  });

  it("never yields a run longer than maxRun when a full word ends exactly at the limit", () => {
    // Bits 0..95: word 0 is walked bit by bit (no run yet), word 1 is full and brings the run
    // to exactly 64 = maxRun. The run must be cut at 64, not carried into word 2.
    const b = new Bitmap(128);
    b.setRange(0, 96);
    expect([...b.runs(64)]).toEqual([
      [0, 64],
      [64, 96],
    ]);
  });

  it("matches the naive reference on seeded random bitmaps, sizes and maxRun values", () => {
    const next = rng(0xb17a9);
    const sizes = [1, 5, 31, 32, 33, 63, 64, 65, 96, 100, 129, 1000, 4096, 4097, 10_000];
    const maxRuns = [1, 2, 3, 7, 31, 32, 33, 64, 65, 96, 100, 256, Number.MAX_SAFE_INTEGER];
    const failures: string[] = [];
    for (const size of sizes) {
      for (let t = 0; t < 6; t++) {
        const { bitmap, bits } = randomBitmap(size, next);
        for (const maxRun of maxRuns) {
          const got = [...bitmap.runs(maxRun)];
          const want = naiveRuns(bits, maxRun);
          if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`size ${size} try ${t} maxRun ${maxRun}`);
        }
      }
    }
    // Report every failing case at once rather than the first, to show the pattern.
    expect(failures).toEqual([]);
  });

  it("runs of an all-set bitmap cover it exactly for every maxRun", () => {
    for (const size of [31, 32, 64, 100, 1024]) {
      const b = new Bitmap(size);
      b.setAll();
      const bits = bitsOf(b);
      for (const maxRun of [1, 16, 32, 48, 64, 96, 128, 1000]) {
        expect([...b.runs(maxRun)], `size ${size} maxRun ${maxRun}`).toEqual(naiveRuns(bits, maxRun));
      }
    }
  });
});
