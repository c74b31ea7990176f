// The search plan of a scheduler config, as Determined's `det preview-search` computes it
// (spec §2.6): the brackets with their rung lengths, trial budgets and concurrency, and how many
// trials stop at each training length. For adaptive-asha the numbers are Determined's exactly; for
// the other types they are the same simulation on their own ladder (the expected counts when each
// rung keeps max(int(n/η), 1) of its trials).
import { unreachable, ValidationError } from "./errors.ts";
import type { SchedulerConfig } from "./scheduler.ts";
import {
  determinedBracketMaxConcurrent,
  determinedBrackets,
  determinedStopCounts,
  optunaBracketBudgets,
  rayMilestones,
  sockeyeMaxRung,
  sockeyeRungTotal,
  softmaxBracketProbabilities,
  syneTuneBracketProbabilities,
  syneTuneRungLevels,
} from "./schedulerFormulas.ts";

export interface PlanBracket {
  rungs: number[];
  maxTrials: number;
  maxConcurrentTrials: number;
}

export interface SearchPlan {
  brackets: PlanBracket[];
  counts: { units: number; trials: number }[];
}

export interface PlanContext {
  /** Trial budget when the scheduler has none (a task's maxPoints). */
  maxTrials?: number | undefined;
  /** Workers (a task's nParallelEvaluation); split over brackets like Determined's max_concurrent_trials. */
  parallel?: number | undefined;
}

/** Splits `total` by probabilities, at least 1 each, the remainder to bracket 0 (Determined's rule). */
function splitTrials(total: number, probabilities: readonly number[]): number[] {
  const out = probabilities.map((p) => Math.max(Math.trunc(p * total), 1));
  out[0] = (out[0] ?? 0) + Math.max(total - out.reduce((a, b) => a + b, 0), 0);
  return out;
}

function budgetOf(config: { max_trials?: number | undefined }, ctx: PlanContext): number {
  const n = config.max_trials ?? ctx.maxTrials;
  if (n === undefined) {
    throw new ValidationError(
      "INVALID_CONFIG",
      "max_trials: the plan needs a trial budget: set max_trials in the scheduler or maxPoints in the task",
    );
  }
  return n;
}

function withConcurrency(
  rungs: number[][],
  trials: number[],
  eta: number,
  ctx: PlanContext,
  budget: number,
): PlanBracket[] {
  const conc = determinedBracketMaxConcurrent(ctx.parallel ?? budget, eta, trials);
  return rungs.map((r, i) => ({ rungs: r, maxTrials: trials[i] ?? 0, maxConcurrentTrials: conc[i] ?? 1 }));
}

export function previewPlan(config: SchedulerConfig, ctx: PlanContext = {}): SearchPlan {
  switch (config.type) {
    case "adaptive-asha": {
      const brackets = determinedBrackets({
        maxTrials: config.max_trials,
        maxTime: config.max_time,
        divisor: config.divisor,
        maxRungs: config.max_rungs,
        mode: config.mode,
        maxConcurrentTrials: config.max_concurrent_trials,
        bracketRungs: config.bracket_rungs,
      });
      return {
        brackets: brackets.map((b) => ({
          rungs: b.units,
          maxTrials: b.maxTrials,
          maxConcurrentTrials: b.maxConcurrentTrials,
        })),
        counts: determinedStopCounts(brackets, config.divisor),
      };
    }
    case "fifo": {
      const n = budgetOf(config, ctx);
      return {
        brackets: withConcurrency([[config.max_t]], [n], 1, ctx, n),
        counts: [{ units: config.max_t, trials: n }],
      };
    }
    case "sha": {
      const eta = config.reduction_factor ?? 3;
      const ladder = [...syneTuneRungLevels(ladderOpts(config)), config.max_t];
      const n = config.max_trials ?? ctx.maxTrials ?? Math.pow(eta, ladder.length - 1);
      const sizes = [n];
      for (let i = 1; i < ladder.length; i++) sizes.push(Math.floor((sizes[i - 1] ?? 0) / eta));
      return {
        brackets: withConcurrency([ladder], [n], eta, ctx, n),
        counts: ladder.map((units, i) => ({ units, trials: (sizes[i] ?? 0) - (sizes[i + 1] ?? 0) })),
      };
    }
    case "asha-stopping":
    case "asha-promotion":
    case "hyperband":
    case "pasha": {
      const eta = config.reduction_factor ?? 3;
      const levels =
        config.type !== "pasha" &&
        config.rule === "ray" &&
        !config.rung_levels &&
        config.rung_increment === undefined
          ? rayMilestones(config.max_t, config.grace_period, eta, 0).filter((m) => m < config.max_t)
          : syneTuneRungLevels(ladderOpts(config));
      const ladder = [...levels, config.max_t];
      const wanted = config.type === "pasha" ? 1 : (config.brackets ?? ladder.length);
      const nb = Math.min(wanted, ladder.length);
      const rungs = Array.from({ length: nb }, (_, b) => ladder.slice(b));
      const dist = config.type === "pasha" ? "syne-tune" : config.bracket_distribution;
      const p =
        nb === 1
          ? [1]
          : dist === "syne-tune"
            ? syneTuneBracketProbabilities(ladder, nb)
            : dist === "ray"
              ? softmaxBracketProbabilities(rungs.map((r) => r.length - 1))
              : dist === "uniform"
                ? rungs.map(() => 1 / nb)
                : normalise(optunaBracketBudgets(nb, eta));
      return simulate(rungs, splitTrials(budgetOf(config, ctx), p), eta, ctx, budgetOf(config, ctx));
    }
    case "moasha": {
      const rungs = Array.from({ length: config.brackets }, (_, s) => [
        ...rayMilestones(config.max_t, config.grace_period, config.reduction_factor, s).filter(
          (m) => m < config.max_t,
        ),
        config.max_t,
      ]);
      const p = softmaxBracketProbabilities(rungs.map((r) => r.length - 1));
      const n = budgetOf(config, ctx);
      return simulate(rungs, splitTrials(n, p), config.reduction_factor, ctx, n);
    }
    case "sockeye": {
      const top = sockeyeMaxRung(config.max_trials, config.p, config.r, config.u, config.R);
      const ladder = Array.from({ length: top + 1 }, (_, t) =>
        sockeyeRungTotal(t, config.r, config.u, config.R),
      );
      const sizes = ladder.map((_, t) => Math.floor(config.max_trials * Math.pow(config.p, -t)));
      return {
        brackets: withConcurrency([ladder], [config.max_trials], config.p, ctx, config.max_trials),
        counts: ladder.map((units, t) => ({
          units,
          trials: (sizes[t] ?? 0) - (t === top ? 0 : (sizes[t + 1] ?? 0)),
        })),
      };
    }
    default:
      return unreachable(config, "scheduler config");
  }
}

function normalise(xs: readonly number[]): number[] {
  const total = xs.reduce((a, b) => a + b, 0);
  return xs.map((x) => x / total);
}

function simulate(
  rungs: number[][],
  trials: number[],
  eta: number,
  ctx: PlanContext,
  budget: number,
): SearchPlan {
  const brackets = withConcurrency(rungs, trials, eta, ctx, budget);
  return {
    brackets,
    counts: determinedStopCounts(
      rungs.map((units, i) => ({ units, maxTrials: trials[i] ?? 0 })),
      eta,
    ),
  };
}

function ladderOpts(c: {
  max_t: number;
  grace_period: number;
  reduction_factor?: number | undefined;
  rung_increment?: number | undefined;
  rung_levels?: number[] | undefined;
}) {
  return {
    maxT: c.max_t,
    gracePeriod: c.grace_period,
    reductionFactor: c.reduction_factor,
    rungIncrement: c.rung_increment,
    rungLevels: c.rung_levels,
  };
}
