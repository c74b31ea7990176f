// The PanDA/iDDS search-space JSON: { "<name>": {"method": "...", "dimension": {...}} }.
// PanDA users hand us their existing files, so the method and field names are PanDA's
// (categorical, uniformint, uniform) extended with the usual hyperopt/Ray names (loguniform,
// quniform, qloguniform, normal, lognormal).
//
// Semantics, shared by the built-in samplers and by validatePoint (points.ts):
// - uniformint: integers low..high, both ends included.
// - uniform / loguniform: floats in [low, high]; loguniform needs low > 0.
// - quniform / qloguniform: the multiples of q inside [low, high] (hyperopt/Ray style:
//   round(x / q) * q, kept inside the bounds, so every value passes validation).
// - normal / lognormal: {mu, sigma}; lognormal is exp(normal(mu, sigma)).
// - grid_search (0/1 or true/false): marks a dimension for the grid sampler. Only dimensions
//   with a finite set of values can be gridded: categorical, uniformint, quniform, qloguniform.
//
// Conditional parameters (a gridtune extension): an entry may carry
//   "condition": {"param": "<parent name>", "in": [<parent values>]}
// next to "method" and "dimension". The parameter is present in a point only when the parent is
// present and takes one of the listed values; otherwise the key is left out of the point. The
// parent must be categorical or uniformint (a finite set, so "in" can be checked for typos);
// chains are allowed, cycles are not.
import { z } from "zod";
import { ValidationError } from "./errors.ts";
import { multipleRange, PointValue, valueAllowed } from "./points.ts";
import { show, closest } from "./text.ts";

const num = (what = "a number") =>
  z.number({
    error: (i) =>
      i.input === undefined ? `is missing; add ${what}` : `must be ${what}, got ${show(i.input)}`,
  });
const int = () =>
  z.int({
    error: (i) =>
      i.input === undefined ? "is missing; add an integer" : `must be an integer, got ${show(i.input)}`,
  });
const GridFlag = z.union([z.literal(0), z.literal(1), z.boolean()], {
  error: (i) => `must be 0, 1, true or false, got ${show(i.input)}`,
});

/** A strict object whose errors name the unknown fields and list the allowed ones. */
export function strict<S extends z.ZodRawShape>(shape: S) {
  const allowed = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (i) =>
      i.code === "unrecognized_keys"
        ? `unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}; allowed fields: ${allowed}`
        : `must be an object with fields ${allowed}, got ${show(i.input)}`,
  });
}

export const Condition = strict({
  param: z.string({ error: (i) => `must be the name of another parameter, got ${show(i.input)}` }),
  in: z
    .array(PointValue, { error: (i) => `must be a list of the parent's values, got ${show(i.input)}` })
    .min(1, { error: "is empty; list the parent values for which this parameter is present" }),
});
export type Condition = z.infer<typeof Condition>;

// What the checks below need of zod's refinement context (method syntax: any refinement ctx fits).
interface Ctx {
  addIssue(issue: { code: "custom"; path: string[]; message: string }): void;
}
function checkRange(d: { low: number; high: number }, ctx: Ctx): void {
  if (d.low > d.high)
    ctx.addIssue({
      code: "custom",
      path: ["low"],
      message: `${d.low} is greater than high (${d.high}); low must be <= high`,
    });
}
function checkPositiveLow(d: { low: number }, ctx: Ctx, method: string): void {
  if (d.low <= 0)
    ctx.addIssue({
      code: "custom",
      path: ["low"],
      message: `${d.low} is not > 0; ${method} needs a positive low (use uniform for ranges that include 0)`,
    });
}
function checkNoGrid(d: { grid_search?: 0 | 1 | boolean }, ctx: Ctx, method: string): void {
  if (d.grid_search === 1 || d.grid_search === true)
    ctx.addIssue({
      code: "custom",
      path: ["grid_search"],
      message: `${method} has no finite set of values to grid over; use quniform with a step q, or categorical`,
    });
}
function checkQuantized(d: { low: number; high: number; q?: number }, ctx: Ctx): void {
  if (d.q === undefined || d.low > d.high) return;
  const [kLo, kHi] = multipleRange(d.low, d.high, d.q);
  if (kLo > kHi)
    ctx.addIssue({
      code: "custom",
      path: ["q"],
      message: `no multiple of q (${d.q}) lies in [${d.low}, ${d.high}]; choose a smaller q or widen the range`,
    });
}

const Range = { low: num(), high: num(), grid_search: GridFlag.optional() };
const QRange = {
  ...Range,
  q: num("a step q > 0").positive({ error: "must be > 0 (the quantization step)" }),
};
const cond = { condition: Condition.optional() };

export const Categorical = strict({
  method: z.literal("categorical"),
  dimension: strict({
    categories: z
      .array(PointValue, { error: (i) => `must be a list of values, got ${show(i.input)}` })
      .min(1, { error: "is empty; list at least one value" }),
    grid_search: GridFlag.optional(),
  }),
  ...cond,
});
export const UniformInt = strict({
  method: z.literal("uniformint"),
  dimension: strict({ low: int(), high: int(), grid_search: GridFlag.optional() }).superRefine((d, ctx) =>
    checkRange(d, ctx),
  ),
  ...cond,
});
export const Uniform = strict({
  method: z.literal("uniform"),
  dimension: strict(Range).superRefine((d, ctx) => {
    checkRange(d, ctx);
    checkNoGrid(d, ctx, "uniform");
  }),
  ...cond,
});
export const LogUniform = strict({
  method: z.literal("loguniform"),
  dimension: strict(Range).superRefine((d, ctx) => {
    checkPositiveLow(d, ctx, "loguniform");
    checkRange(d, ctx);
    checkNoGrid(d, ctx, "loguniform");
  }),
  ...cond,
});
export const QUniform = strict({
  method: z.literal("quniform"),
  dimension: strict(QRange).superRefine((d, ctx) => {
    checkRange(d, ctx);
    checkQuantized(d, ctx);
  }),
  ...cond,
});
export const QLogUniform = strict({
  method: z.literal("qloguniform"),
  dimension: strict(QRange).superRefine((d, ctx) => {
    checkPositiveLow(d, ctx, "qloguniform");
    checkRange(d, ctx);
    checkQuantized(d, ctx);
  }),
  ...cond,
});
const Gauss = {
  mu: num(),
  sigma: num("a standard deviation sigma > 0").positive({ error: "must be > 0 (the standard deviation)" }),
  grid_search: GridFlag.optional(),
};
export const Normal = strict({
  method: z.literal("normal"),
  dimension: strict(Gauss).superRefine((d, ctx) => checkNoGrid(d, ctx, "normal")),
  ...cond,
});
export const LogNormal = strict({
  method: z.literal("lognormal"),
  dimension: strict(Gauss).superRefine((d, ctx) => checkNoGrid(d, ctx, "lognormal")),
  ...cond,
});

export const METHODS = [
  "categorical",
  "uniformint",
  "uniform",
  "loguniform",
  "quniform",
  "qloguniform",
  "normal",
  "lognormal",
] as const;
export type Method = (typeof METHODS)[number];

export const Parameter = z.discriminatedUnion("method", [
  Categorical,
  UniformInt,
  Uniform,
  LogUniform,
  QUniform,
  QLogUniform,
  Normal,
  LogNormal,
]);
export type Parameter = z.infer<typeof Parameter>;

export const SearchSpace = z.record(z.string().min(1), Parameter).superRefine((space, ctx) => {
  if (Object.keys(space).length === 0)
    ctx.addIssue({ code: "custom", message: "is empty; define at least one parameter" });
  for (const [name, p] of Object.entries(space)) checkCondition(space, name, p, ctx);
  const cycle = findCycle(space);
  if (cycle)
    ctx.addIssue({
      code: "custom",
      path: [cycle[0] ?? "", "condition", "param"],
      message: `conditions form a cycle ${cycle.join(" -> ")}; a parameter cannot depend on itself`,
    });
});
export type SearchSpace = z.infer<typeof SearchSpace>;

function checkCondition(
  space: SearchSpace,
  name: string,
  p: Parameter,
  ctx: z.core.$RefinementCtx<SearchSpace>,
) {
  if (!p.condition) return;
  const { param, in: values } = p.condition;
  const parent = space[param];
  const at = (...rest: (string | number)[]) => [name, "condition", ...rest];
  if (param === name) return; // reported as a cycle
  if (!parent) {
    const hint = closest(
      param,
      Object.keys(space).filter((k) => k !== name),
    );
    ctx.addIssue({
      code: "custom",
      path: at("param"),
      message: `unknown parameter "${param}"${hint ? `; did you mean "${hint}"?` : ""}`,
    });
    return;
  }
  if (parent.method !== "categorical" && parent.method !== "uniformint") {
    ctx.addIssue({
      code: "custom",
      path: at("param"),
      message: `"${param}" is ${parent.method}; a condition's parent must be categorical or uniformint`,
    });
    return;
  }
  values.forEach((v, i) => {
    if (!valueAllowed(parent, v))
      ctx.addIssue({
        code: "custom",
        path: at("in", i),
        message: `${show(v)} is not a value of "${param}"; use one of its ${parent.method === "categorical" ? "categories" : "integers"}`,
      });
  });
}

/** Returns the first cycle of condition parents (as names, first repeated at the end), if any. */
function findCycle(space: SearchSpace): string[] | undefined {
  for (const start of Object.keys(space)) {
    const seen: string[] = [];
    let cur: string | undefined = start;
    while (cur !== undefined && space[cur]) {
      const at = seen.indexOf(cur);
      if (at >= 0) return at === 0 ? [...seen, cur] : undefined; // reported from its own start
      seen.push(cur);
      cur = space[cur]?.condition?.param;
    }
  }
  return undefined;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((k, i) => (i === 0 ? `"${String(k)}"` : typeof k === "number" ? `[${k}]` : `.${String(k)}`))
    .join("");
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Parses one search space; throws ValidationError("INVALID_SEARCH_SPACE") whose message lists every
 * problem, each naming the parameter and field and saying what to change.
 */
export function parseSearchSpace(json: unknown, source?: string): SearchSpace {
  const where = `${source ? `${source}: ` : ""}search space`;
  const fail = (lines: string[]): never => {
    throw new ValidationError("INVALID_SEARCH_SPACE", lines.join("\n"));
  };
  if (!isObject(json))
    fail([
      `${where} must be a JSON object {"<name>": {"method": ..., "dimension": {...}}}, got ${Array.isArray(json) ? "a list (a list of spaces is only accepted with segments, one space per segment)" : show(json)}`,
    ]);
  const space = json as Record<string, unknown>;
  // The method is checked by hand first: zod's discriminated union cannot suggest the closest name.
  const methodErrors: string[] = []; // also collects entries that are not objects
  for (const [name, entry] of Object.entries(space)) {
    if (name === "")
      methodErrors.push(`${where}: a parameter name is empty ""; parameter names must not be empty`);
    if (!isObject(entry)) {
      methodErrors.push(`${where} "${name}" must be {"method": ..., "dimension": {...}}, got ${show(entry)}`);
      continue;
    }
    const m = entry.method;
    if (m === undefined)
      methodErrors.push(`${where} "${name}".method is missing; use one of ${METHODS.join(", ")}`);
    else if (typeof m !== "string" || !(METHODS as readonly string[]).includes(m)) {
      const hint = typeof m === "string" ? closest(m, METHODS, true) : undefined;
      methodErrors.push(
        `${where} "${name}": unknown method ${show(m)}; ${hint ? `did you mean "${hint}"? ` : ""}use one of ${METHODS.join(", ")}`,
      );
    }
  }
  if (methodErrors.length > 0) fail(methodErrors);
  const r = SearchSpace.safeParse(json);
  if (!r.success)
    fail(r.error.issues.map((i) => `${where}${i.path.length ? ` ${formatPath(i.path)}` : ""}: ${i.message}`));
  return r.data as SearchSpace;
}

/**
 * Parses a --searchSpaceFile for a task with nSegments segments (1 without segmentation): a single
 * space is cloned for every segment; a list must hold exactly one space per segment.
 */
export function parseSearchSpaceFile(json: unknown, nSegments: number, source?: string): SearchSpace[] {
  if (!Number.isInteger(nSegments) || nSegments < 1)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `nSegments must be a positive integer, got ${show(nSegments)}`,
    );
  const name = source ?? "search space file";
  if (!Array.isArray(json)) {
    const space = parseSearchSpace(json, source);
    return Array.from({ length: nSegments }, () => structuredClone(space));
  }
  if (json.length !== nSegments)
    throw new ValidationError(
      "INVALID_SEARCH_SPACE",
      `${name} holds a list of ${json.length} search spaces but the task has ${nSegments} segment${nSegments === 1 ? "" : "s"}; give one space per segment, in segment order, or a single space for all`,
    );
  return json.map((s, i) => parseSearchSpace(s, `${name}[${i}]`));
}
