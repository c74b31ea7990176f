// `gridtune-steering preview <task.json>`: the search plan of a scheduler, like Determined's
// `det preview-search`. The file is a phpo task config with a `scheduler` key (maxPoints is the
// trial budget when the scheduler has none) or a bare scheduler config.
import { ValidationError } from "../../protocol/errors.ts";
import { parseSchedulerConfig, type SchedulerConfig } from "../../protocol/scheduler.ts";
import { previewPlan, type PlanContext, type SearchPlan } from "../../protocol/schedulerPlan.ts";

export {
  previewPlan,
  type SearchPlan,
  type PlanBracket,
  type PlanContext,
} from "../../protocol/schedulerPlan.ts";

export interface PreviewInput {
  config: SchedulerConfig;
  context: PlanContext;
  /** Name of the training-length unit in the table ("train for 100 batches"). */
  unit: string;
}

/** Reads the JSON text of a task config or a bare scheduler config. */
export function parsePreviewInput(text: string, file: string): PreviewInput {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `${file}: expected a JSON object (a task config or a scheduler config)`,
    );
  }
  const obj = data as Record<string, unknown>;
  if (!("scheduler" in obj)) {
    const config = parseSchedulerConfig(obj, "");
    return {
      config,
      context: {},
      unit: config.type === "adaptive-asha" ? (config.time_metric ?? "units") : "units",
    };
  }
  const config = parseSchedulerConfig(obj.scheduler, "scheduler");
  const num = (key: string) => {
    const v = obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw new ValidationError(
        "INVALID_CONFIG",
        `${key}: must be a positive integer, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const unit =
    config.type === "adaptive-asha" && config.time_metric
      ? config.time_metric
      : typeof obj.resourceKey === "string"
        ? obj.resourceKey
        : "epochs";
  return { config, context: { maxTrials: num("maxPoints"), parallel: num("nParallelEvaluation") }, unit };
}

/** Python tabulate's "presto" format: right-aligned numbers, left-aligned text, header padding 2. */
export function prestoTable(headers: string[], rows: (string | number)[][]): string {
  const widths = headers.map((h, c) => Math.max(h.length + 2, ...rows.map((r) => String(r[c]).length)));
  const numeric = headers.map((_, c) => rows.every((r) => typeof r[c] === "number"));
  const cell = (v: string | number, c: number) => {
    const s = String(v);
    const w = widths[c] ?? s.length;
    return numeric[c] ? s.padStart(w) : s.padEnd(w);
  };
  const line = (cells: string[]) =>
    cells
      .map((s) => ` ${s} `)
      .join("|")
      .trimEnd();
  return [
    line(headers.map((h, c) => cell(h, c))),
    widths.map((w) => "-".repeat(w + 2)).join("+"),
    ...rows.map((r) => line(r.map((v, c) => cell(v, c)))),
  ].join("\n");
}

/** The human-readable preview: the configuration, the brackets, and the Trials | Training Time table. */
export function renderPreview(input: PreviewInput, plan: SearchPlan): string {
  const configLines = Object.entries(input.config)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `  ${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  const brackets = prestoTable(
    ["Bracket", "Rungs", "Trials", "Concurrency"],
    plan.brackets.map((b, i) => [i, b.rungs.join(", "), b.maxTrials, b.maxConcurrentTrials]),
  );
  const counts = prestoTable(
    ["Trials", "Training Time"],
    plan.counts.map((c) => [c.trials, `train for ${c.units} ${input.unit}`]),
  );
  return ["Using search configuration:", ...configLines, "", brackets, "", counts, ""].join("\n");
}

export function previewOutput(input: PreviewInput, json: boolean): string {
  const plan = previewPlan(input.config, input.context);
  return json ? JSON.stringify(plan) + "\n" : renderPreview(input, plan);
}
