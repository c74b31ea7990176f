// Compiles resolved phpo option values into the TaskSpec that is submitted, in one mapping: an
// option named like a spec field is that field; referenced files are read and parsed (search
// space, segments, scheduler), outDS gets its trailing "/", and the whole is validated with
// parseTaskSpec, all before any network I/O.
import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { z } from "zod";
import { describeZodError, ValidationError } from "../protocol/errors.ts";
import { parseSchedulerConfig } from "../protocol/scheduler.ts";
import { parseSearchSpaceFile } from "../protocol/searchSpace.ts";
import { show } from "../protocol/text.ts";
import { parseTaskSpec, Segment, TaskSpec } from "../protocol/taskConfig.ts";
import { parseJsonText, readJsonFile } from "./jsonText.ts";
import { missingRequired, type PhpoValues } from "./optionValues.ts";

export interface CompileContext {
  /** The current directory (PanDA resolves every file name against it). */
  cwd: string;
  /** Directory of the --loadJson file: tried second, so `phpo --loadJson dir/cfg.json` works from anywhere. */
  jsonDir?: string;
}

/** A file named by an option: as given when absolute, else under cwd, else next to the JSON file. */
export function resolveInputFile(name: string, ctx: CompileContext, option: string): string {
  if (isAbsolute(name)) return name;
  const candidates = [join(ctx.cwd, name), ...(ctx.jsonDir ? [join(ctx.jsonDir, name)] : [])];
  const found = candidates.find((p) => existsSync(p));
  if (found) return found;
  throw new ValidationError(
    "INVALID_ARGUMENT",
    `--${option} ${name} does not exist (looked for ${candidates.join(" and ")}): check the file name`,
  );
}

const SegmentList = z.array(Segment).min(1);

function readSegments(name: string, ctx: CompileContext): TaskSpec["segments"] {
  const file = resolveInputFile(name, ctx, "segmentSpecFile");
  const r = SegmentList.safeParse(readJsonFile(file, "--segmentSpecFile"));
  if (!r.success) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `--segmentSpecFile ${name} must be a JSON list of {"name": ..., "files": [...]}:\n${describeZodError(r.error, "segments")}`,
    );
  }
  return r.data;
}

/** --scheduler: JSON text, a JSON object (from --loadJson), or a JSON file name. */
function readScheduler(v: unknown, ctx: CompileContext): unknown {
  let input = v;
  if (typeof v === "string") {
    input = v.trim().startsWith("{")
      ? parseJsonText(v, "--scheduler")
      : readJsonFile(resolveInputFile(v, ctx, "scheduler"), "--scheduler file");
  }
  return parseSchedulerConfig(input, "--scheduler");
}

function readSampler(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const t = v.trim();
  if (t.startsWith("{")) return parseJsonText(t, "--sampler");
  if (t === "random" || t === "grid") return { type: t };
  throw new ValidationError(
    "INVALID_CONFIG",
    `--sampler ${show(v)}: use random or grid, or JSON {"type": "random", "seed": 7}`,
  );
}

function readResources(v: unknown): unknown {
  return typeof v === "string" ? parseJsonText(v, "--resources") : v;
}

/** The spec's fields: sandboxKey is set by submit once the sandbox is uploaded. */
const SPEC_FIELDS = TaskSpec.keyof().options.filter((k) => k !== "sandboxKey");

export function specFromOptions(values: PhpoValues, ctx: CompileContext): TaskSpec {
  const missing = missingRequired(values);
  if (missing.length > 0) throw new ValidationError("INVALID_CONFIG", missing.join("\n"));
  const str = (k: string) => values[k] as string | undefined;

  const segments =
    str("segmentSpecFile") !== undefined ? readSegments(str("segmentSpecFile") as string, ctx) : undefined;
  const spaceName = str("searchSpaceFile") as string;
  const spaceJson = readJsonFile(resolveInputFile(spaceName, ctx, "searchSpaceFile"), "--searchSpaceFile");
  const spaces = parseSearchSpaceFile(spaceJson, segments?.length ?? 1, spaceName);
  const outDS = str("outDS") as string;
  const architecture = values.architecture;

  const raw: Record<string, unknown> = {
    // an option named like a field of the spec is that field (the option table uses PanDA's names)
    ...Object.fromEntries(SPEC_FIELDS.map((k) => [k, values[k]])),
    // the options that name a file, or are reshaped on the way
    outDS: outDS.endsWith("/") ? outDS : `${outDS}/`,
    segments,
    searchSpace: spaces[0],
    // A list in the file means one space per segment; a single space is shared by all segments.
    segmentSearchSpaces: segments && Array.isArray(spaceJson) ? spaces : undefined,
    architecture: typeof architecture === "object" ? JSON.stringify(architecture) : architecture || undefined,
    sampler: values.sampler !== undefined ? readSampler(values.sampler) : undefined,
    scheduler: values.scheduler !== undefined ? readScheduler(values.scheduler, ctx) : undefined,
    resources: values.resources !== undefined ? readResources(values.resources) : undefined,
  };
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  try {
    return parseTaskSpec(raw);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    // The field names are the option names: say where to fix them.
    throw new ValidationError(
      err.code,
      `invalid task configuration (fix these options on the command line or in the --loadJson file):\n${err.message}`,
      {
        cause: err,
      },
    );
  }
}
