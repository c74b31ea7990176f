// Every PanDA phpo option, with PanDA's names, defaults and meanings (spec panda-idds.md), plus the
// gridtune extensions. The table drives the commander options, `--helpGroup`, `--loadJson` and
// `--dumpJson`, so an option cannot exist in one place and be missing in another.
//
// Precedence (a deliberate difference from PanDA): command line > --loadJson file > default. PanDA's
// phpo applies the JSON after the command line, so there the file wins despite its help text; in
// gridtune an option typed on the command line always overrides the same key in the file.
import { dirname, resolve } from "node:path";
import { type Command, Option } from "commander";
import { unreachable, ValidationError } from "../protocol/errors.ts";
import { closest, show } from "../protocol/searchSpace.ts";
import { readJsonFile } from "./jsonText.ts";

export const HELP_GROUPS = {
  config: "config: option files and phpo itself",
  input: "input: search space, training data and the files given to each evaluation",
  output: "output: results, metrics, checkpoints",
  submit: "submit: the search, its budget, the containers and where they run",
  expert: "expert: PanDA-specific switches and gridtune extensions",
} as const;
export type HelpGroup = keyof typeof HELP_GROUPS;

export type OptionKind = "int" | "number" | "string" | "bool" | "list" | "object" | "stringOrObject";

export interface PhpoOption {
  /** PanDA's name: the long flag (`--name`), the --loadJson key and the --dumpJson key. */
  name: string;
  /** Flag text when it is not `--name` (PanDA's `-3`). */
  flag?: string;
  kind: OptionKind;
  group: HelpGroup;
  arg?: string;
  default?: unknown;
  /** Help text for a default that is derived (maxEvaluationJobs). */
  defaultText?: string;
  help: string;
  /** Accepted and recorded for PanDA compatibility, but it has no effect in gridtune. */
  ignored?: boolean;
  /** Not a PanDA option. */
  extension?: boolean;
  /** Only meaningful on the command line (not a --loadJson key). */
  cliOnly?: boolean;
}

export const REQUIRED_OPTIONS = [
  "outDS",
  "evaluationContainer",
  "evaluationExec",
  "searchSpaceFile",
] as const;

export const PHPO_OPTIONS: readonly PhpoOption[] = [
  // config
  {
    name: "loadJson",
    kind: "string",
    group: "config",
    arg: "FILE",
    cliOnly: true,
    help: "read options from a JSON file (trailing commas allowed); options given on the command line override the file",
  },
  {
    name: "dumpJson",
    kind: "string",
    group: "config",
    arg: "FILE",
    help: "after submission, write every option value plus returnCode, returnOut and jediTaskID (the task id) to FILE",
  },
  {
    name: "helpGroup",
    kind: "string",
    group: "config",
    arg: "GROUP",
    cliOnly: true,
    help: "print the options of one group: config, input, output, submit, expert or ALL",
  },
  // input
  {
    name: "searchSpaceFile",
    kind: "string",
    group: "input",
    arg: "FILE",
    help: "JSON file defining the search space (with segments: one space, or a list of one space per segment); required in gridtune",
  },
  {
    name: "trainingDS",
    kind: "string",
    group: "input",
    arg: "NAME",
    help: "name of the training dataset; each job gets all its files unless segmented",
  },
  {
    name: "evaluationInput",
    kind: "string",
    group: "input",
    arg: "FILE",
    default: "input.json",
    help: "file in the working directory holding the JSON hyperparameter point",
  },
  {
    name: "evaluationTrainingData",
    kind: "string",
    group: "input",
    arg: "FILE",
    default: "input_ds.json",
    help: "file in the working directory listing the training data file names (JSON list)",
  },
  {
    name: "segmentSpecFile",
    kind: "string",
    group: "input",
    arg: "FILE",
    help: 'JSON list of {"name", "files"} segments, each optimised independently (%SEGMENT_NAME in evaluationExec)',
  },
  {
    name: "checkPointToLoad",
    kind: "string",
    group: "input",
    arg: "NAME",
    help: "name of the saved checkpoint tarball given to a resumed evaluation; unset: the files are extracted in the working directory",
  },
  {
    name: "sandboxDir",
    kind: "string",
    group: "input",
    arg: "DIR",
    default: ".",
    extension: true,
    help: "directory whose *.json, *.py, *.sh, *.yaml files (recursively) are sent with the task; PanDA always uses the current directory",
  },
  // output
  {
    name: "outDS",
    kind: "string",
    group: "output",
    arg: "NAME",
    help: "name of the output collection (results, logs, metrics); required; a trailing / is added",
  },
  {
    name: "official",
    kind: "bool",
    group: "output",
    default: false,
    help: "official (production) output naming",
  },
  {
    name: "evaluationOutput",
    kind: "string",
    group: "output",
    arg: "FILE",
    default: "output.json",
    help: 'file the evaluation writes: {"status": 0, "loss": <float>}',
  },
  {
    name: "evaluationMeta",
    kind: "string",
    group: "output",
    arg: "FILE",
    help: "metadata file produced by the evaluation (a JSON dictionary, at most 1 MB)",
  },
  {
    name: "evaluationMetrics",
    kind: "string",
    group: "output",
    arg: "FILE",
    help: "metrics file (e.g. a tarball of MLflow runs) produced by the evaluation; uploaded and registered",
  },
  {
    name: "checkPointToSave",
    kind: "list",
    group: "output",
    arg: "F1,F2",
    help: "comma-separated files/directories in the working directory saved periodically to a checkpoint tarball",
  },
  {
    name: "checkPointInterval",
    kind: "number",
    group: "output",
    arg: "MIN",
    default: 5,
    help: "minutes between checks for changed checkpoint files",
  },
  // submit
  {
    name: "nParallelEvaluation",
    kind: "int",
    group: "submit",
    arg: "N",
    default: 1,
    help: "points evaluated concurrently",
  },
  {
    name: "maxPoints",
    kind: "int",
    group: "submit",
    arg: "N",
    default: 10,
    help: "max points evaluated in the whole search (per segment)",
  },
  {
    name: "maxEvaluationJobs",
    kind: "int",
    group: "submit",
    arg: "N",
    defaultText: "2 x maxPoints",
    help: "max evaluation jobs in the whole search (per segment); the task ends when all points are evaluated or this is reached",
  },
  {
    name: "nPointsPerIteration",
    kind: "int",
    group: "submit",
    arg: "N",
    default: 2,
    help: "max new points generated per steering iteration",
  },
  {
    name: "minUnevaluatedPoints",
    kind: "int",
    group: "submit",
    arg: "N",
    default: 0,
    help: "the next steering iteration starts when unevaluated points fall below this",
  },
  {
    name: "maxPointsPerEvaluationJob",
    kind: "int",
    group: "submit",
    arg: "N",
    default: 1,
    help: "accepted for PanDA compatibility; gridtune runs one point per evaluation job",
  },
  {
    name: "steeringContainer",
    kind: "string",
    group: "submit",
    arg: "IMAGE",
    help: "image the steering runs in",
  },
  {
    name: "steeringExec",
    kind: "string",
    group: "submit",
    arg: "EXEC",
    help: "execution string of the steering (%NUM_POINTS %MAX_POINTS %IN %OUT); optional in gridtune: without it the built-in sampler (--sampler) generates the points",
  },
  {
    name: "evaluationContainer",
    kind: "string",
    group: "submit",
    arg: "IMAGE",
    help: "image the evaluation runs in; required",
  },
  {
    name: "evaluationExec",
    kind: "string",
    group: "submit",
    arg: "EXEC",
    help: "execution string run in the evaluation container (%SEGMENT_NAME); required",
  },
  {
    name: "site",
    kind: "list",
    group: "submit",
    arg: "S1,S2",
    help: "one site, or a comma-separated list of allowed sites",
  },
  {
    name: "workingGroup",
    kind: "string",
    group: "submit",
    arg: "GROUP",
    help: "group the task is accounted to",
  },
  {
    name: "noSubmit",
    kind: "bool",
    group: "submit",
    default: false,
    help: "dry run: validate and print the task parameters, submit nothing",
  },
  {
    name: "wait",
    kind: "bool",
    group: "submit",
    default: false,
    extension: true,
    help: "after submitting, show progress until the task ends (exit 1 if it is killed or every point failed)",
  },
  // expert
  {
    name: "architecture",
    kind: "stringOrObject",
    group: "expert",
    arg: "SPEC",
    default: "",
    help: 'CPU/GPU requirements "#CPU_spec&GPU_spec" or a JSON dictionary ({"model": ".*A100.*"})',
  },
  {
    name: "alrbArgs",
    kind: "string",
    group: "expert",
    arg: "ARGS",
    help: "extra arguments for the site's container launcher (PanDA-specific; recorded)",
  },
  {
    name: "noEmail",
    kind: "bool",
    group: "expert",
    default: false,
    ignored: true,
    help: "PanDA: no email notification (accepted, no effect)",
  },
  {
    name: "voms",
    kind: "string",
    group: "expert",
    arg: "ROLE",
    ignored: true,
    help: "PanDA: VOMS role (accepted, no effect: gridtune authenticates with an nkey)",
  },
  {
    name: "3",
    flag: "-3",
    kind: "bool",
    group: "expert",
    default: false,
    ignored: true,
    help: "PanDA: use python3 (accepted, no effect)",
  },
  {
    name: "intrSrv",
    kind: "bool",
    group: "expert",
    default: false,
    ignored: true,
    help: "PanDA: use the internal server (accepted, no effect)",
  },
  {
    name: "sampler",
    kind: "stringOrObject",
    group: "expert",
    arg: "SAMPLER",
    extension: true,
    help: 'built-in sampler when there is no steeringExec: random or grid, or JSON {"type": "random", "seed": 7}',
  },
  {
    name: "scheduler",
    kind: "object",
    group: "expert",
    arg: "FILE|JSON",
    extension: true,
    help: 'early-stopping scheduler (fifo, sha, asha-stopping, asha-promotion, hyperband, adaptive-asha, pasha, moasha, sockeye): a JSON file or JSON text, e.g. {"type": "asha-stopping", "max_t": 27}',
  },
  {
    name: "maxAttempts",
    kind: "int",
    group: "expert",
    arg: "N",
    default: 3,
    extension: true,
    help: "attempts per evaluation before the point gets a very large loss (PanDA: 3)",
  },
  {
    name: "resourceKey",
    kind: "string",
    group: "expert",
    arg: "KEY",
    default: "epochs",
    extension: true,
    help: "input.json key carrying the resource level (epochs) an early-stopping scheduler asks for",
  },
  {
    name: "resources",
    kind: "object",
    group: "expert",
    arg: "JSON",
    extension: true,
    help: 'limits of one evaluation: {"memoryMB": 2048, "cpus": 1, "timeoutMinutes": 60, "network": "none"}',
  },
  {
    name: "checkPointLimitMB",
    kind: "int",
    group: "expert",
    arg: "MB",
    default: 100,
    extension: true,
    help: "largest checkpoint saved, in MB (PanDA: 100)",
  },
];

const BY_NAME = new Map(PHPO_OPTIONS.map((o) => [o.name, o]));
export const phpoOption = (name: string): PhpoOption | undefined => BY_NAME.get(name);

/** Flags as typed: `--maxPoints N`, `-3`, `--official`. */
export function flagText(o: PhpoOption): string {
  const flag = o.flag ?? `--${o.name}`;
  return o.kind === "bool" ? flag : `${flag} ${o.arg ?? "VALUE"}`;
}

function defaultHelp(o: PhpoOption): string {
  if (o.defaultText) return ` (default: ${o.defaultText})`;
  if (o.default === undefined || o.kind === "bool" || o.default === "") return "";
  return ` (default: ${typeof o.default === "string" ? o.default : JSON.stringify(o.default)})`;
}

/** Adds every option to the submit command; values stay raw strings until resolveOptions. */
export function registerPhpoOptions(cmd: Command): void {
  for (const o of PHPO_OPTIONS) {
    const flags =
      o.kind === "bool" ? (o.flag ?? `--${o.name}`) : `${o.flag ?? `--${o.name}`} <${o.arg ?? "value"}>`;
    cmd.addOption(new Option(flags, o.help + defaultHelp(o)).helpGroup(`${HELP_GROUPS[o.group]}:`));
  }
}

/** The text of `--helpGroup GROUP`. */
export function formatHelpGroup(group: string): string {
  const all = Object.keys(HELP_GROUPS) as HelpGroup[];
  const wanted = group.toUpperCase() === "ALL" ? all : all.filter((g) => g === group.toLowerCase());
  if (wanted.length === 0) {
    const hint = closest(group, [...all, "ALL"]);
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `--helpGroup ${group}: unknown group${hint ? `; did you mean ${hint}?` : ""}; use one of ${all.join(", ")} or ALL`,
    );
  }
  const out: string[] = [];
  for (const g of wanted) {
    out.push(`${HELP_GROUPS[g]}`);
    if (g === "config") {
      out.push(row("--version", "print the version and exit"));
      out.push(row("-v, --verbose", "verbose: stack traces and NATS details"));
      out.push(row("--json", "machine-readable output (every verb)"));
    }
    for (const o of PHPO_OPTIONS.filter((x) => x.group === g)) {
      out.push(row(flagText(o), o.help + defaultHelp(o) + (o.extension ? " [gridtune]" : "")));
    }
    out.push("");
  }
  out.push("Options on the command line override the same keys in the --loadJson file.");
  return out.join("\n") + "\n";
}

function row(flags: string, help: string): string {
  return `  ${flags.padEnd(34)} ${help}`;
}

// ------------------------------------------------------------------------ values

export type PhpoValues = Record<string, unknown>;

/** Converts one raw value (a command-line string or a JSON value) to the option's type. */
export function coerceOption(o: PhpoOption, raw: unknown, where: string): unknown {
  const bad = (what: string): never => {
    throw new ValidationError("INVALID_CONFIG", `--${o.name} ${where} must be ${what}, got ${show(raw)}`);
  };
  switch (o.kind) {
    case "int":
      if (typeof raw === "number" && Number.isInteger(raw)) return raw;
      // PanDA converts string integers: "maxPoints": "20" is 20.
      if (typeof raw === "string" && /^\s*[+-]?\d+\s*$/.test(raw)) return Number.parseInt(raw, 10);
      return bad("an integer");
    case "number":
      if (typeof raw === "number" && Number.isFinite(raw)) return raw;
      if (typeof raw === "string" && raw.trim() !== "" && Number.isFinite(Number(raw))) return Number(raw);
      return bad("a number");
    case "bool":
      if (typeof raw === "boolean") return raw;
      if (raw === "true" || raw === 1) return true;
      if (raw === "false" || raw === 0) return false;
      return bad("true or false");
    case "string":
      if (typeof raw === "string") return raw;
      if (typeof raw === "number") return String(raw);
      return bad("a string");
    case "list":
      if (typeof raw === "string")
        return raw
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "");
      if (Array.isArray(raw) && raw.every((s) => typeof s === "string")) return raw;
      return bad('a comma-separated string or a list of strings ("a,b" or ["a", "b"])');
    case "object":
    case "stringOrObject":
      if (typeof raw === "string") return raw;
      if (typeof raw === "object" && raw !== null && !Array.isArray(raw)) return raw;
      return bad(
        o.kind === "object" ? "a JSON object, JSON text or a file name" : "a string or a JSON object",
      );
    default:
      return unreachable(o.kind, "option kind");
  }
}

export interface LoadedJson {
  file: string;
  /** Directory of the file: relative file names in it are also looked up there. */
  dir: string;
  values: PhpoValues;
}

/** Reads a --loadJson file: known keys coerced, unknown keys warned about (PanDA does not fail). */
export function loadJsonOptions(file: string, warn: (message: string) => void): LoadedJson {
  const json = readJsonFile(file, "--loadJson file");
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ValidationError(
      "INVALID_CONFIG",
      `--loadJson file ${file} must hold a JSON object of phpo options, got ${show(json)}`,
    );
  }
  const known = PHPO_OPTIONS.filter((o) => !o.cliOnly).map((o) => o.name);
  const values: PhpoValues = {};
  for (const [key, raw] of Object.entries(json)) {
    const o = BY_NAME.get(key);
    if (!o || o.cliOnly) {
      const hint = closest(key, known);
      warn(`ignore unknown option ${key} in ${file}${hint ? ` (did you mean ${hint}?)` : ""}`);
      continue;
    }
    values[key] = coerceOption(o, raw, `in ${file}`);
  }
  return { file, dir: dirname(resolve(file)), values };
}

/**
 * Every option's value: command line, else --loadJson, else default. `cli` holds commander's raw
 * values (only the options actually typed: no defaults are registered with commander).
 */
export function resolveOptions(cli: Readonly<Record<string, unknown>>, json: PhpoValues): PhpoValues {
  const out: PhpoValues = {};
  for (const o of PHPO_OPTIONS) {
    const typed = cli[o.name];
    if (typed !== undefined) out[o.name] = coerceOption(o, typed, "on the command line");
    else if (json[o.name] !== undefined) out[o.name] = json[o.name];
    else if (o.default !== undefined) out[o.name] = o.default;
  }
  return out;
}

/** The required options that have no value, as PanDA words it ("--outDS is not specified"). */
export function missingRequired(values: PhpoValues): string[] {
  return REQUIRED_OPTIONS.filter((n) => values[n] === undefined || values[n] === "").map(
    (n) => `--${n} is not specified: give it on the command line or as "${n}" in the --loadJson file`,
  );
}
