// The client API's verbs that change state (submit, kill, pause, resume, retry), decided on the
// state and `now`. What needs I/O is read by the shell (shell/channels/api.ts) before deciding and
// comes in the command: the user's limits (with the limits file's overrides), the site policy,
// the trainingDS listing, a random seed, a retired task's log. A user controls only their own
// tasks: another user's task is reported as not found. Refusals are thrown as GridtuneErrors
// naming the field or limit and the fix; nothing is logged for a refused command.
import { GridtuneError } from "../../../protocol/errors.ts";
import type { TaskSummary } from "../../../protocol/messages.ts";
import type { TaskSpec } from "../../../protocol/taskConfig.ts";
import type { SitePolicy } from "../../security/sitePolicy.ts";
import type { Decision } from "../decision.ts";
import type { Effect } from "../effects.ts";
import type { LogEvent } from "../events.ts";
import { checkActive, checkMaxPoints, checkRate, type TenantLimits } from "../limits.ts";
import { checkSubmitSites } from "../sites.ts";
import type { TaskEngine } from "../task/taskEngine.ts";
import { checkTrainingData } from "../trainingData.ts";
import type { World } from "../world.ts";

export interface SubmitCommand {
  readonly type: "submit";
  readonly user: string;
  readonly spec: TaskSpec;
  /** The user's limits: steering's defaults with the admin's overrides (the limits file). */
  readonly limits: TenantLimits;
  /** The site policy (sites.json) as the shell last read it. */
  readonly policy: SitePolicy;
  /** The files of spec.trainingDS as listed (relative to it); null when the spec names none. */
  readonly trainingFiles: readonly string[] | null;
  /** The sampler's seed unless the spec sets one (drawn by the shell: core draws nothing). */
  readonly randomSeed: number;
}

/** What a submission is admitted on before its dataset is listed (see admitSubmission). */
export type SubmitCheck = Pick<SubmitCommand, "user" | "spec" | "limits" | "policy">;

export interface ControlCommand {
  readonly type: "kill" | "pause" | "resume";
  readonly user: string;
  readonly taskId: string;
}

export interface RetryCommand {
  readonly type: "retry";
  readonly user: string;
  readonly taskId: string;
  /** Only failed points; else cancelled and budget-spent ones as well. */
  readonly failedOnly: boolean;
  /** The user's retired task as a fresh fold of its log (read in the queue); null when in memory. */
  readonly retired: TaskEngine | null;
}

export type ApiCommand = SubmitCommand | ControlCommand | RetryCommand;

/**
 * The task a control verb answers with: its engine, which the shell summarizes once the decision's
 * events are applied, or the summary of a retired task (which no control verb changes).
 */
export type TaskReply = { readonly engine: TaskEngine } | { readonly retired: TaskSummary };

export interface SubmitReply {
  readonly taskId: string;
  /** Said with the task id (a site nobody serves now); the task is accepted all the same. */
  readonly warnings: readonly string[];
}

export interface RetryReply {
  readonly engine: TaskEngine;
  readonly requeued: number;
}

/**
 * The checks a submission passes before the shell lists its trainingDS (so a refused flood costs no
 * listing) and again in its decision: its points, the rate of the user's submissions before `now`,
 * the sandbox key and the sites. Returns the submit reply's warnings.
 */
export function admitSubmission(w: World, cmd: SubmitCheck, now: number): string[] {
  const { user, spec, limits } = cmd;
  checkMaxPoints(user, limits, spec.maxPoints * (spec.segments?.length ?? 1));
  checkRate(user, limits, w.tasks.submits.recent(user, now), now);
  checkSandboxKey(user, spec.sandboxKey);
  // Only sites that accept the user (sites.json); the dispatcher checks again at each pump.
  const live = new Set(w.agents.capacityBySite(now).keys());
  return checkSubmitSites(cmd.policy, user, spec.site, live);
}

/** A new task: admitted, its training data present, a free active place; logged with the next id. */
export function decideSubmit(w: World, cmd: SubmitCommand, now: number): Decision<SubmitReply> {
  const { user, spec } = cmd;
  const warnings = admitSubmission(w, cmd, now);
  if (spec.trainingDS !== undefined) {
    if (cmd.trainingFiles === null)
      throw new Error(`submit of a task with trainingDS ${spec.trainingDS}: its files were not listed`);
    checkTrainingData(spec, cmd.trainingFiles);
  }
  // In the decision: submissions in flight together cannot all take the last place.
  checkActive(user, cmd.limits, w.tasks.activeTasksOf(user));
  const taskId = String(w.tasks.maxTaskId + 1);
  const seed = spec.sampler?.seed ?? cmd.randomSeed;
  return {
    events: [{ type: "task-created", taskId, at: now, user, spec, seed }],
    effects: [
      { type: "log", level: "info", message: "task submitted", fields: { user, taskId, outDS: spec.outDS } },
      { type: "kick" },
    ],
    reply: { taskId, warnings },
  };
}

/**
 * kill, pause, resume. A killed or finished task cannot be paused or resumed; killing it again
 * changes nothing (its attempts are told to stop once more). A retired task is killed or finished.
 */
export function decideControl(w: World, cmd: ControlCommand, now: number): Decision<TaskReply> {
  const t = ownTask(w, cmd.user, cmd.taskId);
  const verb = cmd.type;
  if ("retired" in t) {
    if (verb === "kill") return { events: [], effects: [], reply: t };
    throw cannot(t.retired, verb);
  }
  const e = t.engine;
  const effects: Effect[] =
    verb === "kill"
      ? [{ type: "stop-attempts", taskId: e.taskId, reason: "killed" }, { type: "kick" }]
      : [{ type: "kick" }];
  if (e.state === "killed" || e.state === "finished") {
    if (verb !== "kill") throw cannot(e, verb);
    return { events: [], effects, reply: t };
  }
  const target = verb === "kill" ? "killed" : verb === "pause" ? "paused" : "running";
  const events: LogEvent[] =
    e.state === target ? [] : [{ type: "task-state", taskId: e.taskId, at: now, state: target }];
  return { events, effects, reply: t };
}

/**
 * Requeues the task's failed points (and cancelled and budget-spent ones unless failedOnly) if
 * maxEvaluationJobs can run every one of them again; a killed task is never retried.
 */
export function decideRetry(w: World, cmd: RetryCommand, now: number): Decision<RetryReply> {
  const t = ownTask(w, cmd.user, cmd.taskId);
  if ("retired" in t && t.retired.state === "killed") throw wasKilled(cmd.taskId);
  const e = "engine" in t ? t.engine : cmd.retired;
  if (e?.taskId !== cmd.taskId)
    throw new Error(`retry of retired task ${cmd.taskId} without a fold of its log`);
  if (e.state === "killed") throw wasKilled(e.taskId);
  const ids = [...e.points.values()]
    .filter(
      (p) =>
        p.state === "failed" || (!cmd.failedOnly && (p.state === "cancelled" || p.state === "budget-spent")),
    )
    .map((p) => p.pointId);
  const short = e.requeueShortfall(ids);
  if (short.length > 0) throw budgetUsedUp(e, short, cmd.failedOnly);
  const events: LogEvent[] =
    ids.length === 0 ? [] : [{ type: "points-requeued", taskId: e.taskId, at: now, pointIds: ids }];
  return { events, effects: [{ type: "kick" }], reply: { engine: e, requeued: ids.length } };
}

/** The user's task: its engine when in memory, else the summary of the retired task. */
export function ownTask(w: World, user: string, taskId: string): TaskReply {
  const e = w.tasks.engines.get(taskId);
  if (e?.user === user) return { engine: e };
  const retired = w.tasks.finished.get(taskId);
  if (retired?.user === user) return { retired };
  throw new GridtuneError("NOT_FOUND", `task ${taskId} does not exist (or is not yours); see phpo list`);
}

/**
 * One object directly under the user's prefix: no "..", no sub-path (URL clients normalise dot
 * segments, so "uploads/<user>/../<other>/x" would reach another user's upload).
 */
function checkSandboxKey(user: string, key: string | undefined): void {
  if (key === undefined) return;
  const prefix = `uploads/${user}/`;
  const upload = key.startsWith(prefix) ? key.slice(prefix.length) : "";
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(upload))
    throw new GridtuneError("FORBIDDEN", `sandboxKey must be an upload of yours (uploads/${user}/…)`);
}

function wasKilled(taskId: string): GridtuneError {
  return new GridtuneError("CONFLICT", `task ${taskId} was killed; submit it again`);
}

/** pause or resume of a killed or finished task, naming the fix. */
function cannot(e: Pick<TaskSummary, "state" | "taskId">, verb: "kill" | "pause" | "resume"): GridtuneError {
  const hint =
    verb !== "resume"
      ? ""
      : e.state === "finished"
        ? `: phpo retry ${e.taskId} requeues its failed points, or submit the task again`
        : ": submit it again";
  return new GridtuneError("CONFLICT", `task ${e.taskId} is ${e.state}; it cannot be ${verb}d${hint}`);
}

/** A retry refused because maxEvaluationJobs cannot run the points again (budgets are per segment). */
function budgetUsedUp(
  e: TaskEngine,
  short: ReturnType<TaskEngine["requeueShortfall"]>,
  failedOnly: boolean,
): GridtuneError {
  const what = failedOnly ? "failed" : "failed or cancelled";
  const segmented = e.segmentName(0) !== null;
  const parts = short.map((s) => {
    const where = segmented ? `segment ${e.segmentName(s.segment)}: ` : "";
    const queued = s.queued > 0 ? ` and ${s.queued} point${s.queued === 1 ? "" : "s"} already queued` : "";
    return `${where}${s.used}/${s.limit} jobs used${queued}, ${s.points} ${what} point${s.points === 1 ? "" : "s"} to run again`;
  });
  return new GridtuneError(
    "CONFLICT",
    `task ${e.taskId} has no maxEvaluationJobs left for its ${what} points ` +
      `(maxEvaluationJobs ${short[0]!.limit}${segmented ? " per segment" : ""}; ${parts.join("; ")}); ` +
      `nothing was requeued, the points keep their errors. ` +
      `Submit the task again with a larger --maxEvaluationJobs to run them.`,
  );
}
