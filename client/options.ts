// Every PanDA phpo option, with PanDA's names, defaults and meanings (spec panda-idds.md), plus the
// gridtune extensions. The table drives the commander options, `--helpGroup`, `--loadJson` and
// `--dumpJson`, so an option cannot exist in one place and be missing in another. What phpo does
// with the table (commander flags, help, values) is in optionValues.ts.
//
// Precedence (a deliberate difference from PanDA): command line > --loadJson file > default. PanDA's
// phpo applies the JSON after the command line, so there the file wins despite its help text; in
// gridtune an option typed on the command line always overrides the same key in the file.

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
