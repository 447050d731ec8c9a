/**
 * The synthetic guest of a running lab VM. It writes through the VM's block layer exactly
 * as a guest's disk driver would, so change tracking sees what a hypervisor would see.
 */
import { randomFillSync, randomInt } from "node:crypto";
import type { WorkloadSpec } from "../../../shared/agent-api.js";

const TICK_MS = 50;
const MiB = 1024 * 1024;

export interface WorkloadTarget {
  disks: { index: number; sizeBytes: number }[];
  write(disk: number, offset: number, data: Buffer): Promise<void>;
  onError(err: unknown): void;
}

/** Half random, half text: compresses about 2:1, like typical database pages. */
function fillGuestData(buf: Buffer): void {
  randomFillSync(buf, 0, buf.length >>> 1);
  buf.fill(`row ${Date.now()} customer-order payload `, buf.length >>> 1);
}

export class Workload {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private seqPos = 0;
  private budget = 0;
  private quiesced = false;
  bytesWritten = 0;
  /** Host CPU time the guest has used (making its data, submitting its writes), in µs. */
  cpuMicros = 0;
  private sample = { at: performance.now(), cpuMicros: 0, percent: 0 };

  constructor(
    private spec: WorkloadSpec,
    private readonly target: WorkloadTarget,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), TICK_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.budget = 0;
  }

  update(spec: WorkloadSpec): void {
    this.spec = spec;
  }

  /**
   * The guest's CPU usage over the last second or so, as a share of its virtual processors
   * (0-100), from the host CPU time its work used. Sampled on demand, at most once a second.
   */
  cpuUsagePercent(cpus: number): number {
    const now = performance.now();
    const elapsedMs = now - this.sample.at;
    if (elapsedMs >= 1000) {
      const used = this.cpuMicros - this.sample.cpuMicros;
      const percent = Math.min(100, Math.round((used / 1000 / elapsedMs / Math.max(1, cpus)) * 100));
      this.sample = { at: now, cpuMicros: this.cpuMicros, percent };
    }
    return this.sample.percent;
  }

  /**
   * The guest's answer to a quiesce request: it stops issuing writes and waits for the one
   * in flight, as application writers flush and hold their I/O. Returns the thaw.
   */
  async quiesce(timeoutMs: number): Promise<() => void> {
    const give = (why: string) => new Error(`the guest did not quiesce: ${why}`);
    if (this.spec.quiesce === "fails") throw give("its application writers reported an error");
    this.quiesced = true;
    const thaw = () => {
      this.quiesced = false;
    };
    const deadline = Date.now() + timeoutMs;
    while (this.busy || this.spec.quiesce === "hangs") {
      if (Date.now() >= deadline) {
        thaw();
        throw give(`no answer within ${timeoutMs / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, Math.min(20, timeoutMs)));
    }
    return thaw;
  }

  private async tick(): Promise<void> {
    if (this.busy || this.quiesced || this.spec.pattern === "idle" || this.spec.rateMiBps <= 0) return;
    this.busy = true;
    try {
      // At most two ticks' worth of catch-up, so a slow disk does not cause a burst later.
      const perTick = (this.spec.rateMiBps * MiB * TICK_MS) / 1000;
      this.budget = Math.min(this.budget + perTick, 2 * perTick);
      // update() may switch the pattern to idle while this loop awaits.
      while (this.budget > 0 && this.timer && !this.quiesced && (this.spec.pattern as string) !== "idle") {
        const disk = this.target.disks[randomInt(this.target.disks.length)]!;
        const n = await this.writeOne(disk.index, disk.sizeBytes);
        this.budget -= n;
        this.bytesWritten += n;
      }
    } catch (err) {
      this.target.onError(err);
    } finally {
      this.busy = false;
    }
  }

  private async writeOne(disk: number, size: number): Promise<number> {
    const random = this.spec.pattern === "random-4k";
    const len = random ? 4096 : Math.min(MiB, size);
    if (!random && this.seqPos + len > size) this.seqPos = 0;
    const offset = random ? randomInt(size / 4096) * 4096 : this.seqPos;
    // The CPU the guest spends: making the data and handing the write to its disk (up to the
    // write's first wait; the I/O itself is the host's, as with a real hypervisor).
    const cpuBefore = process.cpuUsage();
    const buf = Buffer.allocUnsafe(len);
    fillGuestData(buf);
    const written = this.target.write(disk, offset, buf);
    const cpu = process.cpuUsage(cpuBefore);
    this.cpuMicros += cpu.user + cpu.system;
    await written;
    if (!random) this.seqPos += len;
    return len;
  }
}
