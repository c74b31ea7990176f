// What phpo does with the option table (options.ts): the commander flags and `--helpGroup` text,
// and the values: coerced from the command line or a --loadJson file, merged, checked for the
// required ones.
import { dirname, resolve } from "node:path";
import { type Command, Option } from "commander";
import { unreachable, ValidationError } from "../protocol/errors.ts";
import { closest, show } from "../protocol/text.ts";
import { readJsonFile } from "./jsonText.ts";
import {
  HELP_GROUPS,
  type HelpGroup,
  PHPO_OPTIONS,
  phpoOption,
  type PhpoOption,
  REQUIRED_OPTIONS,
} from "./options.ts";

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
    const o = phpoOption(key);
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
