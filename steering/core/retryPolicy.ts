// Retries of failed or lost attempts: when they may be dispatched again (exponential back-off with
// jitter, from steering's config) and where (another site, then another agent, than the ones the
// job already failed on). Pure: times come in as parameters; the jitter of an attempt is derived
// from its id, so a restarted steering holds each retry exactly as long as before.
import { backoffDelay, stableUnit, type Backoff } from "../../protocol/backoff.ts";
import type { AgentRec } from "./agentRegistry.ts";
import type { JobRec, PointRec } from "./task/taskEngine.ts";

/**
 * When the point's queued job may be dispatched: at once (0), or its last failure plus the
 * back-off. Every failure lengthens it, the site's (a missing image, a lost node) as the user's:
 * a broken agent that fails each attempt at once does not get the next one a moment later.
 */
export function retryReadyAt(b: Backoff, p: PointRec): number {
  const j = p.job;
  const failures = p.failures + p.siteFailures;
  if (j.failedAt === null || failures === 0) return 0;
  return j.failedAt + backoffDelay(b, failures, stableUnit(`${j.jobId}#${j.attempt}`));
}

/** The sites where the job's failed or lost attempts ran: its retry prefers any other. */
export function failedSites(j: JobRec): Set<string> {
  return new Set(j.failedOn.flatMap((f) => (f.site === null ? [] : [f.site])));
}

/**
 * The agents of `site` that already failed this job, for its retry to avoid: only while another
 * live agent of the site, not draining, has a free slot (else the job would only wait).
 */
export function agentsToAvoid(
  j: JobRec,
  site: string,
  agents: readonly AgentRec[],
  now: number,
  leaseMs: number,
): string[] {
  const failed = new Set(j.failedOn.flatMap((f) => (f.site === site && f.agent !== null ? [f.agent] : [])));
  if (failed.size === 0) return [];
  const other = agents.some(
    (a) =>
      a.site === site &&
      !failed.has(a.agent) &&
      !a.draining &&
      a.freeSlots > 0 &&
      now - a.lastSeen <= leaseMs,
  );
  return other ? [...failed].sort() : [];
}
