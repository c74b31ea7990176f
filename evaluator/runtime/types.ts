// The contract between the agent and the two ways it runs an evaluation: a Docker container
// (dockerode) or a local process. Both get the same prepared working directory and argv; the
// agent owns the file protocol (input.json in, output.json out), the runtimes only execute.

export type RuntimeKind = "docker" | "process";

export interface RunLimits {
  /** Hard wall-clock limit; the run is stopped (SIGTERM, grace, SIGKILL) when it is reached. */
  wallClockMs: number;
  memoryBytes?: number;
  /** CPU quota in units of 1e-9 CPUs (Docker's NanoCpus). */
  nanoCpus?: number;
  pidsLimit?: number;
}

export interface RunSpec {
  /** Unique, name-safe key of this attempt (used for container names and labels). */
  key: string;
  /** Image reference; required by the docker runtime, ignored by the process runtime. */
  image?: string;
  /** argv, already tokenized and placeholder-substituted: never passed through a shell. */
  argv: string[];
  /** Host path of the job's working directory; it becomes the current directory of the payload. */
  workDir: string;
  env: Record<string, string>;
  limits: RunLimits;
  /** "none" unless the site policy allows networking. */
  network: "none" | "bridge";
  /** GPU device ids of the slot ("0", "1", …); empty for CPU-only slots. */
  gpus: string[];
  /** Host path where the combined stdout/stderr log is written (capped). */
  logFile: string;
  /** Cap on the bytes of log kept; the rest is dropped with a marker line. */
  maxLogBytes: number;
  /** Grace between SIGTERM and SIGKILL when the run is stopped. */
  stopGraceMs: number;
}

export interface RunOutcome {
  exitCode: number;
  timedOut: boolean;
  oomKilled: boolean;
  /** True when the run was stopped through the AbortSignal (steering said stop, or draining). */
  stopped: boolean;
  durationMs: number;
  logBytes: number;
  logTruncated: boolean;
}

export interface RunHooks {
  signal: AbortSignal;
  /** Each complete line the payload writes on stdout, as it comes (progress markers are parsed by the agent). */
  onStdoutLine?: (line: string) => void;
  /** Once the payload runs: how to pause and resume it (a runtime that cannot never calls it). */
  onStarted?: (control: PauseControl) => void;
}

/** Pauses the whole payload (every process of it) and resumes it; neither rejects. */
export interface PauseControl {
  pause(): Promise<void>;
  resume(): Promise<void>;
}

export interface Runtime {
  readonly kind: RuntimeKind;
  /** Throws RuntimeError (code IMAGE_NOT_ALLOWED, IMAGE_MISSING, RUNTIME_UNAVAILABLE, …) when it cannot start. */
  run(spec: RunSpec, hooks: RunHooks): Promise<RunOutcome>;
  /**
   * Removes what runs of this runtime's owner left behind (an agent killed mid-run): called by the
   * agent at start, before it takes a job. Returns how many it removed.
   */
  removeLeftovers?(): Promise<number>;
  close(): Promise<void>;
}
