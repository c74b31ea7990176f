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

export const processIo = (): Io => ({ stdout: process.stdout, stderr: process.stderr });

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
