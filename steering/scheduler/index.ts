// The scheduler core: pure, deterministic ask-and-tell schedulers of the ASHA family, built from a
// parsed SchedulerConfig. No I/O, no clock, seeded randomness only.
import { unreachable } from "../../protocol/errors.ts";
import type { SchedulerConfig } from "../../protocol/scheduler.ts";
import { AdaptiveAshaScheduler } from "./adaptive.ts";
import { AshaScheduler } from "./asha.ts";
import { FifoScheduler } from "./fifo.ts";
import { MoashaScheduler } from "./moasha.ts";
import { PashaScheduler } from "./pasha.ts";
import { ShaScheduler } from "./sha.ts";
import { SockeyeScheduler } from "./sockeye.ts";
import type { Scheduler } from "./types.ts";

export type { Decision, Metrics, RungView, Scheduler, Suggestion } from "./types.ts";
export { AdaptiveAshaScheduler } from "./adaptive.ts";
export { AshaScheduler } from "./asha.ts";
export { FifoScheduler } from "./fifo.ts";
export { MoashaScheduler } from "./moasha.ts";
export { PashaScheduler } from "./pasha.ts";
export { ShaScheduler } from "./sha.ts";
export { SockeyeScheduler } from "./sockeye.ts";

/** Builds the scheduler a (parsed) config describes. */
export function createScheduler(config: SchedulerConfig): Scheduler {
  switch (config.type) {
    case "fifo":
      return new FifoScheduler({ metric: config.metric, maxT: config.max_t, maxTrials: config.max_trials });
    case "sha":
      return new ShaScheduler({
        metric: config.metric,
        mode: config.mode,
        maxT: config.max_t,
        gracePeriod: config.grace_period,
        reductionFactor: config.reduction_factor,
        rungIncrement: config.rung_increment,
        rungLevels: config.rung_levels,
        maxTrials: config.max_trials,
      });
    case "asha-stopping":
    case "asha-promotion":
    case "hyperband":
      return new AshaScheduler({
        type: config.type,
        variant:
          config.type === "hyperband"
            ? config.variant
            : config.type === "asha-stopping"
              ? "stopping"
              : "promotion",
        rule: config.rule,
        metric: config.metric,
        mode: config.mode,
        maxT: config.max_t,
        gracePeriod: config.grace_period,
        reductionFactor: config.reduction_factor,
        rungIncrement: config.rung_increment,
        rungLevels: config.rung_levels,
        brackets: config.brackets,
        bracketDistribution: config.bracket_distribution,
        studyName: config.study_name,
        seed: config.seed,
        maxTrials: config.max_trials,
        bootstrapCount: config.bootstrap_count,
        stopLastTrials: config.stop_last_trials,
      });
    case "adaptive-asha":
      return new AdaptiveAshaScheduler({
        metric: config.metric,
        smallerIsBetter: config.smaller_is_better,
        maxTrials: config.max_trials,
        maxTime: config.max_time,
        mode: config.mode,
        divisor: config.divisor,
        maxRungs: config.max_rungs,
        maxConcurrentTrials: config.max_concurrent_trials,
        bracketRungs: config.bracket_rungs,
      });
    case "pasha":
      return new PashaScheduler({
        type: "pasha",
        metric: config.metric,
        mode: config.mode,
        maxT: config.max_t,
        gracePeriod: config.grace_period,
        reductionFactor: config.reduction_factor,
        rungIncrement: config.rung_increment,
        rungLevels: config.rung_levels,
        bracketDistribution: "syne-tune",
        studyName: "gridtune",
        seed: config.seed,
        maxTrials: config.max_trials,
        bootstrapCount: 0,
        stopLastTrials: true,
        noiseWindow: config.noise_window,
        epsilon: config.epsilon,
      });
    case "moasha":
      return new MoashaScheduler({
        metrics: config.metrics,
        modes: Array.isArray(config.mode)
          ? config.mode
          : config.metrics.map(() => config.mode as "min" | "max"),
        priority: config.priority,
        maxT: config.max_t,
        gracePeriod: config.grace_period,
        reductionFactor: config.reduction_factor,
        brackets: config.brackets,
        seed: config.seed,
        maxTrials: config.max_trials,
      });
    case "sockeye":
      return new SockeyeScheduler({
        r: config.r,
        u: config.u,
        R: config.R,
        p: config.p,
        n: config.max_trials,
        metric: config.metric,
        mode: config.mode,
        multiObjective: config.multi_objective,
        timeMetric: config.time_metric,
        seed: config.seed,
      });
    default:
      return unreachable(config, "scheduler config");
  }
}
