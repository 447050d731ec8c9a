/**
 * Named crash points for tests: RM_FAILPOINTS=replica.apply-mid,... makes the agent kill
 * itself with SIGKILL when it reaches that point, so tests can crash it at the worst
 * moments deterministically. Unset in production; then a check costs one Set lookup.
 */
const armed = new Set((process.env.RM_FAILPOINTS ?? "").split(",").map((s) => s.trim()).filter(Boolean));

export type Failpoint =
  | "replica.receive-mid"
  | "replica.after-staged"
  | "replica.apply-mid"
  | "replica.after-apply"
  | "replica.initial-mid"
  | "primary.send-mid"
  | "primary.after-ack"
  | "failover.handover-fenced"
  | "failover.after-handover"
  | "failover.complete-mid"
  | "failover.complete-before-save"
  | "failover.reverse-after-handover";

export function failpoint(name: Failpoint): void {
  if (armed.size > 0 && armed.has(name)) process.kill(process.pid, "SIGKILL");
}
