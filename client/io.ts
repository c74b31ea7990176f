// Where a verb writes. main() takes an Io so that tests run the CLI in-process and read its output.

export interface OutStream {
  write(chunk: string): unknown;
  /** True when a terminal is attached: `watch` redraws a progress line in place only then. */
  isTTY?: boolean;
  columns?: number;
}

export interface Io {
  stdout: OutStream;
  stderr: OutStream;
}

let pipeWatched = false;

export const processIo = (): Io => {
  if (!pipeWatched) {
    pipeWatched = true;
    // `phpo results --csv | head`: the reader has gone, and what is left has no one to read it.
    // That is the reader's choice, not an error (Node would throw it from the stream).
    process.stdout.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE") throw e;
      process.exit(0);
    });
  }
  return { stdout: process.stdout, stderr: process.stderr };
};

/** Options every verb sees (program-level flags). */
export interface GlobalOptions {
  json?: boolean;
  verbose?: boolean;
  natsUrl?: string;
  user?: string;
  seedFile?: string;
  caFile?: string;
  config?: string;
  /** Request deadline in seconds (string as typed). */
  timeout?: string;
}

export function println(out: OutStream, line = ""): void {
  out.write(line + "\n");
}

/** Machine output of `--json`: one JSON document on stdout. */
export function printJson(io: Io, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + "\n");
}
