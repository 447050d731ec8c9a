/** What the benchmark parts share: timing, and the tools an administrator would use instead. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

export const run = promisify(execFile);
export const MiB = 1024 * 1024;

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const v = await fn();
  return [v, Number(process.hrtime.bigint() - t) / 1e9];
}

/** The run that took the least time. */
export function fastest<T extends { seconds: number }>(runs: T[]): T {
  return runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

/**
 * `rsync --inplace --no-whole-file` of `source` onto `target` (the delta algorithm, as across a
 * network), then `sync`: like a cycle, which is durable once acknowledged.
 */
export async function rsyncInPlace(source: string, target: string, extra: string[] = []): Promise<{ seconds: number; sentBytes: number }> {
  const [out, seconds] = await timed(async () => {
    const o = await run("rsync", ["--inplace", "--no-whole-file", ...extra, "--stats", source, target], { maxBuffer: 10 * MiB });
    await run("sync", [target]);
    return o;
  });
  const sent = /Total bytes sent: ([\d,.]+)/.exec(out.stdout)?.[1] ?? "0";
  return { seconds, sentBytes: Number(sent.replace(/[,.]/g, "")) };
}
