// The scheduler configuration (spec asha-family.md): one schema per member of the ASHA family,
// split on `type`, with the references' field names. Parsed once at the boundary; the steering
// scheduler core (steering/scheduler) builds a scheduler from the parsed value.
import { z } from "zod";
import { describeZodError, ValidationError } from "./errors.ts";
import { closest } from "./text.ts";

const posInt = z.number().int().positive();
const positive = z.number().positive();

/** The continue/stop rule: which implementation's decisions to reproduce (spec §1). */
export const SchedulerRule = z.enum(["syne-tune", "determined", "ray", "optuna"]);
export type SchedulerRule = z.infer<typeof SchedulerRule>;

export const Mode = z.enum(["min", "max"]);
export type Mode = z.infer<typeof Mode>;

export const BracketDistribution = z.enum(["syne-tune", "ray", "uniform", "optuna"]);
export type BracketDistribution = z.infer<typeof BracketDistribution>;

const common = {
  /** The metric the scheduler compares (a key of the reported metrics). */
  metric: z.string().min(1).default("loss"),
  mode: Mode.default("min"),
  /** Seed of every random draw (bracket sampling); decisions are a function of it. */
  seed: z.number().int().nonnegative().default(0),
  /** Trial budget: after this many trials `suggest` only promotes or waits. */
  max_trials: posInt.optional(),
};

/** The resource ladder shared by the Syne Tune-style schedulers (spec §3.1–3.2). */
const ladder = {
  max_t: positive,
  grace_period: positive.default(1),
  reduction_factor: z.number().gt(1).optional(),
  rung_increment: posInt.optional(),
  rung_levels: z.array(positive).min(1).optional(),
};

function checkLadder(
  v: {
    max_t: number;
    grace_period: number;
    rung_increment?: number | undefined;
    rung_levels?: number[] | undefined;
  },
  ctx: z.RefinementCtx,
) {
  if (v.grace_period > v.max_t) {
    ctx.addIssue({ code: "custom", path: ["grace_period"], message: `must be ≤ max_t (${v.max_t})` });
  }
  if (v.rung_levels && v.rung_increment !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["rung_increment"],
      message: "give either rung_levels or rung_increment, not both",
    });
  }
  const levels = v.rung_levels ?? [];
  levels.forEach((l, i) => {
    if (i > 0 && l <= (levels[i - 1] ?? 0)) {
      ctx.addIssue({
        code: "custom",
        path: ["rung_levels", i],
        message: "rung_levels must be strictly increasing",
      });
    }
    if (l > v.max_t)
      ctx.addIssue({ code: "custom", path: ["rung_levels", i], message: `must be ≤ max_t (${v.max_t})` });
  });
}

const ashaFields = {
  ...common,
  ...ladder,
  rule: SchedulerRule.default("syne-tune"),
  /** Asynchronous Hyperband when > 1: a trial of bracket b skips the b lowest rungs. */
  brackets: posInt.default(1),
  bracket_distribution: BracketDistribution.default("syne-tune"),
  /** Name mixed into the bracket hash of the "optuna" distribution (Optuna's study name). */
  study_name: z.string().min(1).default("gridtune"),
  /** Optuna rule: with this many values or fewer at a rung, prune. */
  bootstrap_count: z.number().int().nonnegative().default(0),
  /** Ray rule: stop trials that reach max_t (Ray's default); false lets them report past it. */
  stop_last_trials: z.boolean().default(true),
};

export const FifoConfig = z.object({ type: z.literal("fifo"), ...common, max_t: positive }).strict();

export const ShaConfig = z
  .object({ type: z.literal("sha"), ...common, ...ladder })
  .strict()
  .superRefine(checkLadder);

export const AshaStoppingConfig = z
  .object({ type: z.literal("asha-stopping"), ...ashaFields })
  .strict()
  .superRefine(checkLadder);

const promotionRule = (v: { rule: SchedulerRule }, ctx: z.RefinementCtx) => {
  if (v.rule === "ray" || v.rule === "optuna") {
    ctx.addIssue({
      code: "custom",
      path: ["rule"],
      message: `"${v.rule}" has no promotion (pause/resume) ASHA; use "syne-tune" or "determined", or type "asha-stopping"`,
    });
  }
};

export const AshaPromotionConfig = z
  .object({ type: z.literal("asha-promotion"), ...ashaFields })
  .strict()
  .superRefine(checkLadder)
  .superRefine(promotionRule);

export const HyperbandConfig = z
  .object({
    type: z.literal("hyperband"),
    ...ashaFields,
    /** Default: every possible bracket (one per rung level, plus the one that trains straight to max_t). */
    brackets: posInt.optional(),
    variant: z.enum(["stopping", "promotion"]).default("stopping"),
  })
  .strict()
  .superRefine(checkLadder)
  .superRefine((v, ctx) => {
    if (v.variant === "promotion") promotionRule(v, ctx);
  });

export const AdaptiveAshaConfig = z
  .object({
    type: z.literal("adaptive-asha"),
    metric: z.string().min(1).default("loss"),
    smaller_is_better: z.boolean().default(true),
    max_trials: posInt,
    /** Training length of a full trial, in `time_metric` units. */
    max_time: posInt,
    time_metric: z.string().min(1).optional(),
    mode: z.enum(["aggressive", "standard", "conservative"]).default("standard"),
    divisor: z.number().gt(1).default(4),
    max_rungs: posInt.default(5),
    max_concurrent_trials: z.number().int().nonnegative().default(16),
    bracket_rungs: z.array(posInt).default([]),
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();

export const PashaConfig = z
  .object({
    type: z.literal("pasha"),
    ...common,
    ...ladder,
    /** Each new result is compared with this many earlier results at its epoch when estimating ε (0 = all). */
    noise_window: z.number().int().nonnegative().default(64),
    /** A fixed ε for the soft ranking instead of the automatic estimate. */
    epsilon: z.number().nonnegative().optional(),
  })
  .strict()
  .superRefine(checkLadder);

export const MoashaPriority = z.discriminatedUnion("type", [
  z.object({ type: z.literal("nondominated") }).strict(),
  z.object({ type: z.literal("linear"), weights: z.array(z.number()).min(1).optional() }).strict(),
  z.object({ type: z.literal("fixed"), dim: z.number().int().nonnegative().default(0) }).strict(),
]);
export type MoashaPriority = z.infer<typeof MoashaPriority>;

export const MoashaConfig = z
  .object({
    type: z.literal("moasha"),
    metrics: z.array(z.string().min(1)).min(1),
    /** One mode for every metric, or one per metric. */
    mode: z.union([Mode, z.array(Mode).min(1)]).default("min"),
    priority: MoashaPriority.default({ type: "nondominated" }),
    max_t: positive.default(100),
    grace_period: positive.default(1),
    reduction_factor: z.number().gt(1).default(3),
    brackets: posInt.default(1),
    seed: z.number().int().nonnegative().default(0),
    max_trials: posInt.optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (Array.isArray(v.mode) && v.mode.length !== v.metrics.length) {
      ctx.addIssue({
        code: "custom",
        path: ["mode"],
        message: `needs one mode per metric (${v.metrics.length})`,
      });
    }
    if (
      v.priority.type === "linear" &&
      v.priority.weights &&
      v.priority.weights.length !== v.metrics.length
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["priority", "weights"],
        message: `needs one weight per metric (${v.metrics.length})`,
      });
    }
    if (v.priority.type === "fixed" && v.priority.dim >= v.metrics.length) {
      ctx.addIssue({
        code: "custom",
        path: ["priority", "dim"],
        message: `must be < the number of metrics (${v.metrics.length})`,
      });
    }
    if (v.grace_period > v.max_t)
      ctx.addIssue({ code: "custom", path: ["grace_period"], message: "must be ≤ max_t" });
  });

/** sockeye-recipes3 `run_asha.py` (spec §6): -r, -u, -R, -p and the number of configs. */
export const SockeyeConfig = z
  .object({
    type: z.literal("sockeye"),
    /** Checkpoints of rung 0. */
    r: posInt,
    /** Extra checkpoints per later rung. */
    u: posInt,
    /** Maximum checkpoints of a config. */
    R: posInt,
    /** Reduction rate: the top 1/p of a rung is promoted. */
    p: z.number().gt(1),
    /** Number of configs (the .hpm files). */
    max_trials: posInt,
    metric: z.string().min(1).default("bleu"),
    mode: Mode.default("max"),
    /** sockeye's --multi-objective: Pareto rank of (metric, time_metric), time minimised. */
    multi_objective: z.boolean().default(false),
    time_metric: z.string().min(1).default("gpu_time"),
    seed: z.number().int().nonnegative().default(0),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.R < v.r) ctx.addIssue({ code: "custom", path: ["R"], message: `must be ≥ r (${v.r})` });
    if (Math.floor(Math.log(v.max_trials) / Math.log(v.p)) < 1) {
      ctx.addIssue({
        code: "custom",
        path: ["max_trials"],
        message: `needs at least p (${v.p}) configs for one promotion`,
      });
    }
  });

export const SchedulerConfig = z.discriminatedUnion("type", [
  FifoConfig,
  ShaConfig,
  AshaStoppingConfig,
  AshaPromotionConfig,
  HyperbandConfig,
  AdaptiveAshaConfig,
  PashaConfig,
  MoashaConfig,
  SockeyeConfig,
]);
export type SchedulerConfig = z.infer<typeof SchedulerConfig>;
export type SchedulerConfigInput = z.input<typeof SchedulerConfig>;
export type SchedulerType = SchedulerConfig["type"];

export type SchedulerConfigOf<T extends SchedulerType> = Extract<SchedulerConfig, { type: T }>;

/** What steering needs to know of a scheduler type beyond its schema. */
interface SchedulerTraits<C extends SchedulerConfig> {
  /**
   * Whether the scheduler pauses trials at a rung and promotes them later as a new job (else it
   * stops them): without checkPointToSave such a job cannot resume, and each promotion trains
   * again from scratch.
   */
  promotes(c: C): boolean;
  /** The full training length of a trial, in the scheduler's resource unit. */
  fullResource(c: C): number;
}

/**
 * One row per scheduler type, keyed by the type: a type added to SchedulerConfig and missing here
 * is a compile error (a mapped type over SchedulerType), and SCHEDULER_TYPES and the traits below
 * all come from this table, so a new scheduler needs no other list kept in step.
 */
const SCHEDULERS: { readonly [T in SchedulerType]: SchedulerTraits<SchedulerConfigOf<T>> } = {
  fifo: { promotes: () => false, fullResource: (c) => c.max_t },
  sha: { promotes: () => true, fullResource: (c) => c.max_t },
  "asha-stopping": { promotes: () => false, fullResource: (c) => c.max_t },
  "asha-promotion": { promotes: () => true, fullResource: (c) => c.max_t },
  hyperband: { promotes: (c) => c.variant === "promotion", fullResource: (c) => c.max_t },
  "adaptive-asha": { promotes: () => false, fullResource: (c) => c.max_time },
  pasha: { promotes: () => true, fullResource: (c) => c.max_t },
  moasha: { promotes: () => false, fullResource: (c) => c.max_t },
  sockeye: { promotes: () => true, fullResource: (c) => c.R },
};

export const SCHEDULER_TYPES: readonly SchedulerType[] = Object.keys(SCHEDULERS) as SchedulerType[];

function traitsOf(s: SchedulerConfig): SchedulerTraits<SchedulerConfig> {
  // the row of s.type takes a config of that type, which s is: method parameters are checked
  // bivariantly, so the row of any one type reads as a row for the whole union
  return SCHEDULERS[s.type];
}

/**
 * Whether the scheduler pauses trials at a rung and promotes them later as a new job: without
 * checkPointToSave such a job cannot resume, and each promotion trains again from scratch.
 */
export function promotesTrials(s: SchedulerConfig): boolean {
  return traitsOf(s).promotes(s);
}

/** The full training length of a trial, in the scheduler's resource unit (max_t, max_time or R). */
export function fullResourceOf(s: SchedulerConfig): number {
  return traitsOf(s).fullResource(s);
}

/**
 * Parses a scheduler config; a bad one throws ValidationError(INVALID_CONFIG) naming the field,
 * prefixed with `where` (for example "scheduler" inside a task config; "" for a bare config).
 */
export function parseSchedulerConfig(input: unknown, where = "scheduler"): SchedulerConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `${where || "scheduler"}: must be a JSON object with a "type"`,
    );
  }
  const type = (input as { type?: unknown }).type;
  if (typeof type !== "string" || !(SCHEDULER_TYPES as readonly string[]).includes(type)) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `${where ? `${where}.` : ""}type: must be one of ${SCHEDULER_TYPES.join(", ")} (got ${JSON.stringify(type) ?? "nothing"})`,
    );
  }
  const parsed = SchedulerConfig.safeParse(input);
  if (!parsed.success)
    throw new ValidationError(
      "INVALID_CONFIG",
      describeSchedulerError(parsed.error, type as SchedulerType, where),
    );
  return parsed.data;
}

/** The keys each scheduler type takes (its schema's fields). */
const KEYS: ReadonlyMap<string, readonly string[]> = new Map(
  SchedulerConfig.options.map((o) => [o.shape.type.value, Object.keys(o.shape)]),
);

/** Zod's messages, with a misspelt key named with the closest key of that type and the keys it takes. */
function describeSchedulerError(err: z.ZodError, type: SchedulerType, where: string): string {
  const known = (KEYS.get(type) ?? []).filter((k) => k !== "type");
  const lines: string[] = [];
  const rest: z.core.$ZodIssue[] = [];
  for (const issue of err.issues) {
    if (issue.code !== "unrecognized_keys" || issue.path.length > 0) {
      rest.push(issue);
      continue;
    }
    for (const key of issue.keys) {
      const hint = closest(key, known);
      lines.push(
        `${where ? `${where}.` : ""}${key}: type "${type}" has no key "${key}"` +
          `${hint ? ` (did you mean "${hint}"?)` : ""}; its keys are ${known.join(", ")}`,
      );
    }
  }
  if (rest.length) lines.push(describeZodError(new z.ZodError(rest), where));
  return lines.join("\n");
}
