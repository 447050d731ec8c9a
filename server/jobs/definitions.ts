/** Every kind of console job and its steps. */
import { plannedFailover } from "./planned-failover.js";
import { reverseReplication } from "./reverse-replication.js";
import type { JobDef, JobKind } from "./types.js";

export const JOB_DEFS: Record<JobKind, JobDef> = {
  "planned-failover": { kind: "planned-failover", title: "Planned Failover", ...plannedFailover },
  failback: { kind: "failback", title: "Failback", ...plannedFailover },
  "reverse-replication": { kind: "reverse-replication", title: "Reverse Replication", ...reverseReplication },
};
