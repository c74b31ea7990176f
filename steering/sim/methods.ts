// The methods the simulator compares, each with its defaults (η 3, grace 1, max_t = the last
// level of the curves), and the task spec a simulation runs: the real TaskSpec with the
// method's scheduler, W parallel evaluations and a trial budget.
import { ValidationError } from "../../protocol/errors.ts";
import { parseSchedulerConfig, type SchedulerConfig } from "../../protocol/scheduler.ts";
import type { SearchSpace } from "../../protocol/searchSpace.ts";
import { parseTaskSpec, type TaskSpec } from "../../protocol/taskConfig.ts";

export const METHODS = ["random", "sha", "asha-stopping", "asha-promotion", "hyperband", "pasha"] as const;
export type Method = (typeof METHODS)[number];

/** Short names: "asha" is promotion ASHA (the family's usual meaning), "fifo" is random search. */
const ALIASES: Readonly<Record<string, Method>> = { asha: "asha-promotion", fifo: "random" };

export function parseMethods(list: string): Method[] {
  const out: Method[] = [];
  for (const raw of list.split(",")) {
    const m = ALIASES[raw.trim()] ?? raw.trim();
    if (!(METHODS as readonly string[]).includes(m))
      throw new ValidationError(
        "INVALID_ARGUMENT",
        `--compare: unknown method "${m}"; choose from ${METHODS.join(", ")} (comma-separated; "asha" means asha-promotion)`,
      );
    if (!out.includes(m as Method)) out.push(m as Method);
  }
  return out;
}

export interface MethodDefaults {
  maxT: number;
  reductionFactor?: number;
  gracePeriod?: number;
}

/** The scheduler of a method with its defaults; "random" is FIFO: every trial trains to max_t. */
export function methodScheduler(method: Method, d: MethodDefaults): SchedulerConfig {
  const ladder = {
    max_t: d.maxT,
    grace_period: Math.min(d.gracePeriod ?? 1, d.maxT),
    reduction_factor: d.reductionFactor ?? 3,
  };
  switch (method) {
    case "random":
      return parseSchedulerConfig({ type: "fifo", max_t: d.maxT });
    case "sha":
    case "asha-stopping":
    case "asha-promotion":
    case "hyperband":
    case "pasha":
      return parseSchedulerConfig({ type: method, ...ladder });
    default: {
      const never: never = method;
      throw new Error(`unknown method ${String(never)}`);
    }
  }
}

/** A task spec for the simulator: nothing in it runs, but the engine reads every budget from it. */
export function simSpec(
  space: SearchSpace,
  scheduler: SchedulerConfig | undefined,
  workers: number,
  maxPoints: number,
  base?: TaskSpec,
): TaskSpec {
  return parseTaskSpec({
    ...(base ?? { outDS: "user.sim.simulation", evaluationContainer: "sim", evaluationExec: "sim" }),
    searchSpace: space,
    segments: undefined,
    segmentSearchSpaces: undefined,
    steeringExec: undefined,
    steeringContainer: undefined,
    nParallelEvaluation: workers,
    maxPoints,
    // promotions and retries are jobs too: the budget must not end a search the scheduler runs
    maxEvaluationJobs: maxPoints * 64,
    scheduler,
  });
}
