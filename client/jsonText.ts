// A small JSON reader for the files users write by hand (--loadJson, search spaces, segment and
// scheduler files). It accepts trailing commas, which PanDA's own documentation example has, and
// reports any other mistake as FILE:LINE:COLUMN with what was expected, which JSON.parse cannot.
import { readFileSync } from "node:fs";
import { ValidationError } from "../protocol/errors.ts";

class Reader {
  i = 0;
  constructor(
    readonly text: string,
    readonly source: string,
  ) {}

  fail(what: string, at = this.i): never {
    const before = this.text.slice(0, at);
    const line = before.split("\n").length;
    const col = at - before.lastIndexOf("\n");
    const found = at >= this.text.length ? "the end of the file" : JSON.stringify(this.text[at]);
    throw new ValidationError(
      "INVALID_CONFIG",
      `${this.source}:${line}:${col}: invalid JSON: ${what}, found ${found}`,
    );
  }

  ws(): void {
    while (this.i < this.text.length && " \t\r\n".includes(this.text[this.i] as string)) this.i++;
  }

  value(): unknown {
    this.ws();
    const c = this.text[this.i];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ] as const) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    return this.fail("expected a value (object, list, string, number, true, false or null)");
  }

  object(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.i++; // {
    for (;;) {
      this.ws();
      if (this.text[this.i] === "}") {
        this.i++;
        return out;
      }
      if (this.text[this.i] !== '"') this.fail("expected a property name in double quotes or '}'");
      const key = this.string();
      this.ws();
      if (this.text[this.i] !== ":") this.fail(`expected ':' after the property name "${key}"`);
      this.i++;
      const v = this.value();
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      if (this.text[this.i] === ",")
        this.i++; // a trailing comma before '}' is accepted
      else if (this.text[this.i] !== "}") this.fail(`expected ',' or '}' after the value of "${key}"`);
    }
  }

  array(): unknown[] {
    const out: unknown[] = [];
    this.i++; // [
    for (;;) {
      this.ws();
      if (this.text[this.i] === "]") {
        this.i++;
        return out;
      }
      out.push(this.value());
      this.ws();
      if (this.text[this.i] === ",") this.i++;
      else if (this.text[this.i] !== "]") this.fail("expected ',' or ']' after a list element");
    }
  }

  string(): string {
    const start = this.i;
    this.i++; // "
    for (;;) {
      const c = this.text[this.i];
      if (c === undefined || c === "\n") this.fail("unterminated string (missing closing '\"')", start);
      if (c === "\\") this.i += this.text[this.i + 1] === "u" ? 6 : 2;
      else if (c === '"') break;
      else this.i++;
    }
    this.i++;
    try {
      return JSON.parse(this.text.slice(start, this.i)) as string;
    } catch {
      return this.fail("invalid escape sequence in a string", start);
    }
  }

  number(): number {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.i));
    if (!m) this.fail("invalid number");
    this.i += m[0].length;
    return Number(m[0]);
  }
}

/** Parses JSON text (trailing commas allowed); errors name source:line:column. */
export function parseJsonText(text: string, source: string): unknown {
  const r = new Reader(text.replace(/^\uFEFF/, ""), source);
  const v = r.value();
  r.ws();
  if (r.i < r.text.length) r.fail("expected the end of the file after the JSON value");
  return v;
}

/** Reads and parses a JSON file; a missing or unreadable file names `what` and the path. */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "does not exist"
        : code === "EISDIR"
          ? "is a directory"
          : `cannot be read (${code ?? "error"})`;
    throw new ValidationError("INVALID_ARGUMENT", `${what} ${path} ${why}: check the path`, { cause: err });
  }
  return parseJsonText(text, path);
}
