// Lease expiry (the lease tick): a running attempt whose agent fell silent past the lease, and a
// dispatched attempt nobody claimed in time (or whose site has no agent left), are lost.
import type { Decision } from "../decision.ts";
import type { Effect } from "../effects.ts";
import type { LogEvent } from "../events.ts";
import type { JobRec } from "../task/records.ts";
import type { World } from "../world.ts";

export type LeaseCommand = { readonly type: "lease-tick" };

/** Why this attempt's lease lapsed at `now`, or null while it holds. */
export function lapsed(
  w: World,
  j: JobRec,
  now: number,
  capacity: ReadonlyMap<string, number>,
): string | null {
  const { leaseMs, dispatchTimeoutMs } = w.rules;
  if (j.state === "running") {
    const t = Math.max(w.agents.renewedAt(j.jobId, j.attempt, j.claimedAt ?? 0), w.leases.baseline);
    return now - t > leaseMs ? `lease expired: agent ${j.site}/${j.agent} silent for ${now - t} ms` : null;
  }
  const t = Math.max(j.dispatchedAt ?? 0, w.leases.baseline);
  const siteGone = (capacity.get(j.site ?? "") ?? 0) === 0;
  return now - t > dispatchTimeoutMs || (siteGone && now - t > leaseMs)
    ? `not claimed within ${now - t} ms by site ${j.site}`
    : null;
}

/** Every lapsed attempt becomes a job-lost; once logged it leaves the lease table; a pump follows. */
export function decideLeaseTick(w: World, now: number): Decision {
  const kick: Effect = { type: "kick" };
  if (w.leases.paused) return { events: [], effects: [kick], reply: null };
  const capacity = w.agents.capacityBySite(now);
  const events: LogEvent[] = [];
  const effects: Effect[] = [];
  for (const e of w.tasks.engines.values()) {
    // a task waiting for its rebuild is judged once its engine is the log's again
    if (w.diverged.has(e.taskId)) continue;
    for (const j of e.activeJobs()) {
      const reason = lapsed(w, j, now, capacity);
      if (!reason) continue;
      events.push({
        type: "job-lost",
        taskId: e.taskId,
        at: now,
        jobId: j.jobId,
        attempt: j.attempt,
        reason,
      });
      effects.push(
        {
          type: "log",
          level: "warn",
          message: "attempt lost",
          fields: { jobId: j.jobId, attempt: j.attempt, reason },
        },
        // only once the loss is logged: until then the attempt is the log's running one
        { type: "forget-lease", jobId: j.jobId, attempt: j.attempt },
      );
    }
  }
  effects.push(kick);
  return { events, effects, reply: null };
}
