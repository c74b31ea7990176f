// What the CLIs share: the exit codes (phpo's too), the error funnel of the services' commands
// (steering, the agent, the stack; phpo has its own, client/errors.ts) and waiting for
// SIGINT/SIGTERM.
import { CommanderError } from "commander";
import { GridtuneError, UnavailableError, ValidationError } from "./errors.ts";

export const EXIT = { ok: 0, failure: 1, usage: 2, unreachable: 3 } as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof ValidationError) return EXIT.usage;
  if (err instanceof UnavailableError) return EXIT.unreachable;
  if (
    err instanceof GridtuneError &&
    (err.code === "INVALID_CONFIG" || err.code === "INVALID_ARGUMENT" || err.code === "INVALID_NAME")
  )
    return EXIT.usage;
  return EXIT.failure;
}

/** One line for known errors; the stack only for unexpected ones or with verbose. */
export function reportCliError(
  err: unknown,
  program: string,
  verbose = false,
  write = (s: string) => process.stderr.write(s),
): number {
  const code = exitCodeFor(err);
  if (err instanceof CommanderError) return code; // commander already printed its message
  if (err instanceof GridtuneError) {
    write(`${program}: ${err.message}\n`);
    if (verbose && err.stack) write(err.stack + "\n");
  } else {
    write(
      `${program}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
  return code;
}

/** Resolves with the signal name at the first SIGINT or SIGTERM; a second one exits at once. */
export function waitForShutdown(onSecond?: () => void): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = false;
    const handler = (sig: NodeJS.Signals) => {
      if (seen) {
        onSecond?.();
        process.exit(130);
      }
      seen = true;
      resolve(sig);
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}
