/**
 * Start Replication at a date and time after enabling: the initial copy of a relationship that
 * is still Ready for initial replication is (re)scheduled, or its schedule cancelled. The time
 * is kept in the record as `initialStartAt`, as at enable time, so it survives a restart and
 * the primary's policy check starts the copy when it is due.
 */
import { badRequest, conflict } from "../errors.js";
import type { EventLog } from "../state/events.js";
import { now } from "../util/clock.js";
import type { PrimaryReplication } from "./primary.js";

/** How far ahead an initial replication may be scheduled (as in Hyper-V). */
export const MAX_INITIAL_AHEAD_MS = 7 * 24 * 3600_000;

/** Checks the new schedule and answers the change to make; throws when it cannot be made. */
export function rescheduleInitial(p: PrimaryReplication, at: string | null, events: EventLog): () => void {
  const rec = p.record;
  if (rec.state !== "Ready for initial replication") {
    throw conflict(`the initial replication of '${rec.vmName}' has already started (replication is ${rec.state}); it can be scheduled only while the relationship is Ready for initial replication`, { state: rec.state });
  }
  const emit = (kind: string, message: string) => events.emit({ severity: "info", kind, vmId: rec.vmId, relationshipId: rec.id, message });
  if (at === null) {
    return () => {
      if (!rec.initialStartAt) return;
      p.update({ initialStartAt: null });
      emit("replication.initial-unscheduled", `The scheduled initial replication of '${rec.vmName}' was cancelled; it waits for Start Replication.`);
    };
  }
  const t = Date.parse(at);
  const clock = now();
  if (t <= clock) throw badRequest(`initialStartAt: ${at} is not in the future (this host's time is ${new Date(clock).toISOString()}); choose a later time, or start the initial replication now`);
  if (t > clock + MAX_INITIAL_AHEAD_MS) throw badRequest(`initialStartAt: the initial replication can be scheduled at most 7 days ahead (until ${new Date(clock + MAX_INITIAL_AHEAD_MS).toISOString()} by this host's clock)`);
  return () => {
    const iso = new Date(t).toISOString();
    p.update({ initialStartAt: iso });
    emit("replication.initial-scheduled", `Initial replication of '${rec.vmName}' is scheduled for ${iso}.`);
    // Enabled without a start, its schedule was never started: the policy check must run now.
    p.start();
  };
}
