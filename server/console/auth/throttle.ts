/**
 * Slows password guessing: after 5 failed sign-ins in a row a user name is refused for 30
 * seconds, whatever the password. In memory, per console process.
 */
const LIMIT = 5;
const LOCK_MS = 30_000;

const failures = new Map<string, { count: number; until: number }>();

/** Seconds the name stays locked, or 0. */
export function lockedFor(name: string, now = Date.now()): number {
  const f = failures.get(name);
  return f && f.until > now ? Math.ceil((f.until - now) / 1000) : 0;
}

export function recordFailure(name: string, now = Date.now()): void {
  const f = failures.get(name) ?? { count: 0, until: 0 };
  f.count++;
  if (f.count >= LIMIT) {
    f.count = 0;
    f.until = now + LOCK_MS;
  }
  failures.set(name, f);
}

export function recordSuccess(name: string): void {
  failures.delete(name);
}
