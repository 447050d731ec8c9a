/**
 * The agent's notion of "now" for schedules that span hours: recovery points, health
 * windows, scheduled operations. Tests set RM_CLOCK_FILE to a file holding an offset in
 * milliseconds and move time forward by rewriting it, so an hour of history takes
 * seconds. Transport security (token timestamps, certificates) keeps the real clock.
 */
import { readFileSync, statSync } from "node:fs";

const file = process.env.RM_CLOCK_FILE;
let cachedMtime = -1;
let offsetMs = 0;

function offset(): number {
  if (!file) return 0;
  try {
    const mtime = statSync(file).mtimeMs;
    if (mtime !== cachedMtime) {
      cachedMtime = mtime;
      const n = Number(readFileSync(file, "utf8").trim());
      offsetMs = Number.isFinite(n) ? n : 0;
    }
  } catch {
    offsetMs = 0;
  }
  return offsetMs;
}

export function now(): number {
  return Date.now() + offset();
}

export function nowIso(): string {
  return new Date(now()).toISOString();
}

export const HOUR_MS = 3600_000;

/** The hour an instant falls in, counted from the epoch: recovery points are one per hour. */
export function hourSlot(ms: number): number {
  return Math.floor(ms / HOUR_MS);
}
