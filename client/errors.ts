// The one error funnel of phpo: every verb throws, main() calls handleError, which prints one line
// (a stack trace only with -v) and picks the documented exit code:
//   0 ok · 1 remote or task failure · 2 usage or validation error · 3 cannot reach a server
// (the codes every gridtune command exits with, protocol/cli.ts).
import { CommanderError } from "commander";
import { type ErrorCode, GridtuneError, UnavailableError, ValidationError } from "../protocol/errors.ts";
import { EXIT } from "../protocol/cli.ts";
import type { Io } from "./io.ts";

/** An error reply of the steering service ({ok: false, error}); its code is steering's. */
export class RemoteError extends GridtuneError {
  override name = "RemoteError";
}

/** The task ended badly (killed, or every point failed) while phpo waited for it. */
export class TaskFailedError extends GridtuneError {
  override name = "TaskFailedError";
  constructor(message: string) {
    super("EVALUATION_FAILED", message, { retryable: false });
  }
}

const USAGE_CODES: ReadonlySet<ErrorCode> = new Set([
  "INVALID_CONFIG",
  "INVALID_SEARCH_SPACE",
  "INVALID_ARGUMENT",
  "INVALID_NAME",
  "NOT_FOUND",
]);

export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version end the parse with an "error" whose exit code is 0.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof UnavailableError) return EXIT.unreachable;
  if (err instanceof RemoteError) return err.code === "UNAVAILABLE" ? EXIT.unreachable : EXIT.failure;
  if (err instanceof ValidationError) return EXIT.usage;
  if (err instanceof TaskFailedError) return EXIT.failure;
  if (err instanceof GridtuneError) {
    if (err.code === "UNAVAILABLE" || err.code === "TIMEOUT") return EXIT.unreachable;
    return USAGE_CODES.has(err.code) ? EXIT.usage : EXIT.failure;
  }
  return EXIT.failure;
}

/** Prints the error for a human and returns the exit code. */
export function handleError(err: unknown, io: Io, opts: { verbose?: boolean } = {}): number {
  const code = exitCodeOf(err);
  if (err instanceof CommanderError) {
    if (code !== EXIT.ok) {
      // commander's messages already start with "error:" and carry a "Did you mean" hint.
      io.stderr.write(`phpo: ${err.message.trim()}\n`);
      io.stderr.write("phpo: see `phpo --help` or `phpo --helpGroup ALL`\n");
    }
    return code;
  }
  if (err instanceof GridtuneError) {
    const where = err instanceof RemoteError ? "steering: " : "";
    io.stderr.write(`phpo: error: ${where}${err.message}\n`);
  } else {
    // Not a user error: a bug or an unexpected failure; say so, and how to get the details.
    const msg = err instanceof Error ? err.message : String(err);
    io.stderr.write(
      `phpo: unexpected error: ${msg}${opts.verbose ? "" : " (run with -v for the stack trace)"}\n`,
    );
  }
  if (opts.verbose && err instanceof Error && err.stack) {
    io.stderr.write(err.stack + "\n");
    if (err.cause instanceof Error && err.cause.stack) io.stderr.write(`caused by: ${err.cause.stack}\n`);
  }
  return code;
}
