// Fencing: whether a claim, result or late upload from an agent still counts. Only the current
// attempt, leased to that site (and agent), may change its job; a late upload only for an artifact
// its ended attempt listed as missing. Pure reads of the task's state.
import type { ArtifactKind } from "../../../protocol/messages.ts";
import type { JobRec, PointRec } from "./records.ts";
import type { TaskData } from "./taskData.ts";

/** Why a result or claim is refused: the attempt is not the one currently leased to this agent. */
export type Fence = { ok: true; job: JobRec } | { ok: false; reason: string };
/** Whether an agent may still upload (or give up) an artifact its attempt's result listed as missing. */
export type LateFence = { ok: true; point: PointRec } | { ok: false; reason: string };

/** A claim or result counts only for the current attempt, leased to that site (and agent). */
export function fence(
  t: TaskData,
  jobId: string,
  attempt: number,
  site: string,
  agent: string | null,
): Fence {
  const p = t.jobs.get(jobId);
  if (!p) return { ok: false, reason: `unknown job ${jobId}` };
  const j = p.job;
  if (j.jobId !== jobId || j.attempt !== attempt) {
    return { ok: false, reason: `attempt ${attempt} of ${jobId} was superseded by attempt ${j.attempt}` };
  }
  if (j.state !== "dispatched" && j.state !== "running") {
    return { ok: false, reason: `${jobId} attempt ${attempt} is ${j.state}` };
  }
  if (j.site !== site)
    return { ok: false, reason: `${jobId} attempt ${attempt} was leased to site ${j.site}, not ${site}` };
  if (agent !== null && j.state === "running" && j.agent !== agent) {
    return { ok: false, reason: `${jobId} attempt ${attempt} is run by agent ${j.agent}, not ${agent}` };
  }
  return { ok: true, job: j };
}

/**
 * A late upload of `kind` for an ended attempt counts only if that attempt's result listed it as
 * missing, it is still awaited, and the same site and agent send it.
 */
export function lateFence(
  t: TaskData,
  jobId: string,
  attempt: number,
  kind: ArtifactKind,
  site: string,
  agent: string,
): LateFence {
  const p = t.pointOfAnyJob(jobId);
  const m = p?.missing.find((x) => x.jobId === jobId && x.attempt === attempt && x.kind === kind);
  if (!p || !m) return { ok: false, reason: `${jobId} attempt ${attempt} has no missing ${kind}` };
  if (!m.pending) return { ok: false, reason: `the ${kind} of ${jobId} attempt ${attempt} was given up` };
  if (m.site !== site || m.agent !== agent)
    return {
      ok: false,
      reason: `${jobId} attempt ${attempt} ran on ${m.site}/${m.agent}, not ${site}/${agent}`,
    };
  return { ok: true, point: p };
}
