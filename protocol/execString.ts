// Exec strings (evaluationExec, steeringExec) are tokenized here, once, POSIX-shell style
// (single quotes, double quotes, backslash escapes), and run as argv without a shell. Placeholders
// are substituted per token afterwards, so a value can never split into extra words or commands.
import { ValidationError } from "./errors.ts";

export function tokenizeExec(exec: string, field = "evaluationExec"): string[] {
  const out: string[] = [];
  let cur = "";
  let inToken = false;
  let quote: "'" | '"' | null = null;
  let quoteStart = -1;
  for (let i = 0; i < exec.length; i++) {
    const ch = exec[i] as string;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else cur += ch;
      continue;
    }
    if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === "\\" && i + 1 < exec.length && '"\\$`'.includes(exec[i + 1] as string))
        cur += exec[++i];
      else cur += ch;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      quoteStart = i;
      inToken = true;
    } else if (ch === "\\" && i + 1 < exec.length) {
      cur += exec[++i];
      inToken = true;
    } else if (/\s/.test(ch)) {
      if (inToken) out.push(cur);
      cur = "";
      inToken = false;
    } else {
      cur += ch;
      inToken = true;
    }
  }
  if (quote !== null) {
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `${field}: unbalanced ${quote === "'" ? "single" : "double"} quote opened at character ${quoteStart + 1} ` +
        `of ${JSON.stringify(exec)}; close the quote or escape it with a backslash`,
    );
  }
  if (inToken) out.push(cur);
  if (out.length === 0) throw new ValidationError("INVALID_ARGUMENT", `${field}: the exec string is empty`);
  return out;
}
