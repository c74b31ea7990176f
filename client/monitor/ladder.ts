// The rung ladder of an ASHA-family task, as the monitor draws it: for each rung (per segment) the
// trials that reached it, their values, the cut-off its rule implies, and what became of each
// trial (went on, stopped there, waiting there, still running there). Derived from a `show`
// reply alone: steering's rungs give the levels and how many values each holds; the points'
// reports give every value (a rung in a reply keeps only its best values, the points keep all).
import { unreachable } from "../../protocol/errors.ts";
import { numpyQuantile } from "../../protocol/schedulerFormulas.ts";
import type { SchedulerConfig } from "../../protocol/scheduler.ts";
import type { PointView, TaskDetail } from "../../protocol/api.ts";

export type RungFate = "promoted" | "stopped" | "waiting" | "running";

export interface LadderTrial {
  pointId: number;
  trial: string | null;
  value: number;
  fate: RungFate;
}

export interface LadderRung {
  segment: string | null;
  level: number;
  /** Values steering recorded at the rung (its `count`); may differ from trials.length while live. */
  recorded: number;
  /** The value a trial had to beat (or match) to go on, under the task's rule; null below 2 values. */
  cutoff: number | null;
  counts: Record<RungFate, number>;
  /** Best first. */
  trials: LadderTrial[];
}

export interface Ladder {
  scheduler: string;
  metric: string;
  mode: "min" | "max";
  /** The rule that decided, in words. */
  rule: string;
  rungs: LadderRung[];
}

type LadderConfig = Extract<
  SchedulerConfig,
  { type: "asha-stopping" | "asha-promotion" | "hyperband" | "sha" | "pasha" }
>;

function isLadderConfig(c: SchedulerConfig): c is LadderConfig {
  switch (c.type) {
    case "asha-stopping":
    case "asha-promotion":
    case "hyperband":
    case "sha":
    case "pasha":
      return true;
    case "fifo":
    case "adaptive-asha":
    case "moasha":
    case "sockeye":
      return false;
    default:
      return unreachable(c, "scheduler config");
  }
}

const ruleOf = (c: LadderConfig) => ("rule" in c ? c.rule : "syne-tune");

/** What the rule says, in one line (shown next to the ladder). */
function ruleText(c: LadderConfig, eta: number): string {
  const better = c.mode === "min" ? "≤" : "≥";
  const rule = ruleOf(c);
  switch (rule) {
    case "syne-tune":
      return `${rule} rule: a trial goes on when its ${c.metric} is ${better} the rung's quantile level/next level (numpy linear), once the rung holds 2 values`;
    case "determined":
    case "optuna":
      return `${rule} rule: a trial goes on when it is among the best max(⌊n/${eta}⌋, 1) of the n values at the rung`;
    case "ray":
      return `ray rule: a trial goes on unless its ${c.metric} is worse than the ${Math.round((1 - 1 / eta) * 100)}th percentile (best side) of the values recorded before it`;
    default:
      return unreachable(rule, "scheduler rule");
  }
}

/** The cut-off of a rung's values (best first) under the rule; null when the rule has none yet. */
export function rungCutoff(
  c: LadderConfig,
  eta: number,
  level: number,
  nextLevel: number,
  bestFirst: readonly number[],
): number | null {
  const n = bestFirst.length;
  if (n === 0) return null;
  const rule = ruleOf(c);
  switch (rule) {
    case "syne-tune":
      // the fraction level/nextLevel goes on: the quantile at that fraction from the best side
      return n < 2 ? null : numpyQuantile(n, (i) => bestFirst[i] as number, level / nextLevel);
    case "determined":
    case "optuna":
      return bestFirst[Math.max(Math.floor(n / eta), 1) - 1] ?? null;
    case "ray":
      return numpyQuantile(n, (i) => bestFirst[i] as number, 1 / eta);
    default:
      return unreachable(rule, "scheduler rule");
  }
}

function valueAt(p: PointView, level: number, metric: string): number | null {
  for (const r of p.reports) {
    if (r.resource !== level) continue;
    const v = metric === "loss" ? r.loss : (r.metrics?.[metric] ?? null);
    if (v !== null && Number.isFinite(v)) return v;
  }
  return null;
}

/**
 * What became of a trial at a rung. `wentOn`: steering recorded it at the next rung (exact, when
 * steering names the trials); null when that is unknown (the top rung, an older steering): then a
 * report past the rung, a full training, or a job that trains past it says it went on.
 */
function fateAt(p: PointView, level: number, maxT: number, wentOn: boolean | null): RungFate {
  let furthest = p.resource ?? -Infinity;
  for (const r of p.reports) if (r.resource > furthest) furthest = r.resource;
  const target = p.target ?? null;
  const through =
    wentOn ??
    ((p.state === "done" && furthest >= maxT) ||
      ((p.state === "running" || p.state === "queued") && target !== null && target > level) ||
      // an older steering: a report past the rung is all there is to go by
      (p.state !== "stopped" && furthest > level));
  if (through) return "promoted";
  switch (p.state) {
    case "running":
    case "queued":
      return "running";
    case "paused":
      return "waiting";
    case "done":
    case "failed":
    case "stopped":
    case "cancelled":
    case "budget-spent":
      return "stopped";
    default:
      return unreachable(p.state, "point state");
  }
}

/**
 * The ladder of a task with an ASHA-family scheduler, or null for any other task. Where steering
 * names each value's trial (ASHA, SHA, PASHA), the rung holds exactly those trials; otherwise (an
 * older steering) every point that reported at the level is taken to have reached it.
 */
export function buildLadder(d: TaskDetail): Ladder | null {
  const c = d.spec.scheduler;
  if (!c || !isLadderConfig(c) || !d.rungs || d.rungs.length === 0) return null;
  const eta = c.reduction_factor ?? 3;
  const sign = c.mode === "min" ? 1 : -1;
  const bySegment = new Map<string | null, PointView[]>();
  const byTrial = new Map<string, PointView>();
  for (const p of d.points) {
    const list = bySegment.get(p.segment) ?? [];
    list.push(p);
    bySegment.set(p.segment, list);
    if (p.trial) byTrial.set(JSON.stringify([p.segment, p.trial]), p);
  }
  const rungs = d.rungs.map((r, i, all): LadderRung => {
    const next = all.slice(i + 1).find((x) => x.segment === r.segment && x.level > r.level);
    const nextLevel = next?.level ?? c.max_t;
    const recorded = r.count ?? r.values.length;
    const trials: LadderTrial[] = [];
    if (r.trials) {
      // the next rung's trials went on; a cut list (a large rung) cannot say who did not
      const complete = next?.trials && next.trials.length === (next.count ?? next.values.length);
      const above = complete ? new Set(next.trials) : null;
      r.trials.forEach((name, k) => {
        const p = byTrial.get(JSON.stringify([r.segment, name]));
        const value = r.values[k] as number;
        const fate = p ? fateAt(p, r.level, c.max_t, above ? above.has(name) : null) : "stopped";
        trials.push({ pointId: p?.pointId ?? -1, trial: name, value, fate });
      });
    } else {
      for (const p of bySegment.get(r.segment) ?? []) {
        const value = valueAt(p, r.level, c.metric);
        if (value !== null)
          trials.push({
            pointId: p.pointId,
            trial: p.trial ?? null,
            value,
            fate: fateAt(p, r.level, c.max_t, null),
          });
      }
      trials.sort((a, b) => sign * (a.value - b.value) || a.pointId - b.pointId);
    }
    // a cut-off needs every value: a reply keeps a large rung's best ones only, the points have all
    let values = trials.map((t) => t.value);
    if (values.length < recorded) {
      values = (bySegment.get(r.segment) ?? [])
        .map((p) => valueAt(p, r.level, c.metric))
        .filter((v): v is number => v !== null)
        .sort((a, b) => sign * (a - b));
    }
    const counts: Record<RungFate, number> = { promoted: 0, stopped: 0, waiting: 0, running: 0 };
    for (const t of trials) counts[t.fate]++;
    return {
      segment: r.segment,
      level: r.level,
      recorded,
      cutoff: rungCutoff(c, eta, r.level, nextLevel, values),
      counts,
      trials,
    };
  });
  return { scheduler: c.type, metric: c.metric, mode: c.mode, rule: ruleText(c, eta), rungs };
}
