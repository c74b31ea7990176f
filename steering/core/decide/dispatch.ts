// Dispatch (one pump of the dispatcher, shell/dispatcher.ts): for each running task in turn, the
// shell decides two commands, one after the other, and repeats the round until nothing moves.
//
//   dispatch-propose  the task's due steering-program iterations, its sampling (PanDA iterations),
//                     or, for a task with a scheduler and a really free slot, a scheduler suggestion
//   dispatch-job      its next ready job to the best site, or "task finished"
//
// Why two commands and not one: the job a suggestion or a sampling creates exists only once that
// event is folded into the engine (Committer.stage → state.apply), and the engine cannot be copied
// (a scheduler core has no copy or undo), so a single decision could not see its own new job.
// Decided one after the other in the same serial section, the second one reads the state the
// first one's events made, exactly as the single step of the old dispatcher did.
//
// Pure but for one thing the engine owns: proposeTrial() asks the scheduler, whose answer stays
// pending in the engine until the trial-suggested event that records it is applied (see
// core/task/segmentScheduler.ts); the caller must stage that event before deciding again.
import { pickSite } from "../agentRegistry.ts";
import type { Decision } from "../decision.ts";
import type { Effect } from "../effects.ts";
import type { LogEvent } from "../events.ts";
import { failedSites, retryReadyAt } from "../retryPolicy.ts";
import type { JobRec } from "../task/records.ts";
import type { TaskEngine } from "../task/taskEngine.ts";
import type { World } from "../world.ts";

/** What the shell knows at the pump about where jobs may go. */
export interface DispatchView {
  /** Slots of the live, non-draining agents by site (AgentRegistry.capacityBySite). */
  readonly capacity: ReadonlyMap<string, number>;
  /** Attempts dispatched or running by site, this pump's own dispatches included. */
  readonly outstanding: ReadonlyMap<string, number>;
  /** The site policy now: whether `site` takes work of `user`. */
  readonly accepts: (site: string, user: string) => boolean;
}

export type DispatchCommand =
  | {
      readonly type: "dispatch-propose";
      readonly taskId: string;
      readonly view: DispatchView;
      /** The task already sampled in this pump: an iteration logged in parts goes on in the next one. */
      readonly sampled: boolean;
    }
  | { readonly type: "dispatch-job"; readonly taskId: string; readonly view: DispatchView };

export interface ProposeReply {
  /** An event was decided (a pump goes round again). */
  readonly moved: boolean;
  /** The decision sampled the task (at most once per pump). */
  readonly sampled: boolean;
}

export interface DispatchJobReply {
  /** The site the task's next job went to, or null. */
  readonly site: string | null;
}

const stays = <R>(reply: R, effects: Effect[] = []): Decision<R> => ({ events: [], effects, reply });

function runningEngine(w: World, taskId: string): TaskEngine | null {
  const e = w.tasks.engines.get(taskId);
  // a task waiting for its rebuild is dispatched once its engine is the log's again
  return e && e.state === "running" && !w.diverged.has(taskId) ? e : null;
}

/** The job due at `now` (a retry waits out its back-off) and the end of the earliest back-off. */
function ready(w: World, e: TaskEngine, now: number): { job: JobRec | null; wakeAt: number | null } {
  return e.nextReady(now, (p) => retryReadyAt(w.rules.retry, p));
}

/**
 * The allowed site with the most room for this job: only sites that accept the task's user, and
 * one where the job has not failed before if any such site has room.
 */
function siteFor(e: TaskEngine, job: JobRec | null, view: DispatchView): string | null {
  return pickSite(
    view.capacity,
    view.outstanding,
    e.spec.site,
    (s) => view.accepts(s, e.user),
    job ? failedSites(job) : undefined,
  );
}

/** Program iterations due (or the end of their back-off), then sampling or a scheduler suggestion. */
export function decideDispatchPropose(
  w: World,
  c: Extract<DispatchCommand, { type: "dispatch-propose" }>,
  now: number,
): Decision<ProposeReply> {
  const e = runningEngine(w, c.taskId);
  if (!e) return stays({ moved: false, sampled: false });
  const effects: Effect[] = e
    .steeringDue()
    .map((due) =>
      due.notBefore > now
        ? { type: "wake-at", at: due.notBefore }
        : { type: "start-program-iteration", taskId: e.taskId, segment: due.segment },
    );
  const sampling = c.sampled ? null : e.proposeSampling(now);
  if (sampling) return { events: [sampling], effects, reply: { moved: true, sampled: true } };
  // A scheduler is asked only when a slot is really free (a site has room and nothing of the task
  // is ready to go): a later suggest() knows more (it may promote instead of starting anew).
  if (!e.schedulers || ready(w, e, now).job || !siteFor(e, null, c.view))
    return stays({ moved: false, sampled: false }, effects);
  const suggestion = e.proposeTrial(now);
  if (!suggestion) return stays({ moved: false, sampled: false }, effects);
  return { events: [suggestion], effects, reply: { moved: true, sampled: false } };
}

/**
 * The task's next ready job to the best site (its Job published once the job-dispatched event is
 * durable), a pump at the end of the earliest back-off still running, or the task's end when
 * nothing more will happen.
 */
export function decideDispatchJob(
  w: World,
  c: Extract<DispatchCommand, { type: "dispatch-job" }>,
  now: number,
): Decision<DispatchJobReply> {
  const e = runningEngine(w, c.taskId);
  if (!e) return stays({ site: null });
  const r = ready(w, e, now);
  const effects: Effect[] = r.wakeAt === null ? [] : [{ type: "wake-at", at: r.wakeAt }];
  const site = r.job ? siteFor(e, r.job, c.view) : null;
  if (r.job && site) {
    const { jobId, attempt } = r.job;
    const ev: LogEvent = { type: "job-dispatched", taskId: e.taskId, at: now, jobId, attempt, site };
    effects.push({ type: "publish-job", taskId: e.taskId, jobId, attempt });
    return { events: [ev], effects, reply: { site } };
  }
  // a dispatch leaves the task incomplete (its job is in flight): the end is decided only without one
  if (e.isComplete())
    return {
      events: [{ type: "task-state", taskId: e.taskId, at: now, state: "finished" }],
      effects,
      reply: { site: null },
    };
  return stays({ site: null }, effects);
}
