// The steering container (iDDS protocol) as an ExternalSampler: one ask() is one steering
// iteration. It writes the history to %IN in a fresh scratch directory, substitutes the
// placeholders of steeringExec per token (no shell), runs the program there (steeringRunner.ts)
// and reads the new points from %OUT, validated against the search space. [] means the optimiser
// has nothing more to offer; a non-zero exit, a timeout, a missing or invalid %OUT reject with the
// reason. Either way generation ends for the segment (the dispatcher commits that).
import { readFile, rm, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { GridtuneError, RuntimeError, ValidationError } from "../../protocol/errors.ts";
import { substitutePlaceholders } from "../../protocol/placeholders.ts";
import { checkSteeringArgvForm } from "../../protocol/steeringExec.ts";
import type { SearchSpace } from "../../protocol/searchSpace.ts";
import type { Point } from "../../protocol/points.ts";
import type { CompiledTask } from "../core/task/compiledTask.ts";
import {
  buildSteeringInput,
  readSteeringOutput,
  type ExternalSampler,
  type History,
} from "../sampler/programIo.ts";
import type { SteeringRunner } from "./runner.ts";

/** The file names behind %IN and %OUT, in the iteration's working directory (iDDS's names). */
export const STEERING_IN = "idds_input.json";
export const STEERING_OUT = "idds_output.json";

/**
 * The argv of steeringExec (tokenized at submission). PanDA's docker-argument form without
 * steeringContainer is refused (at submission already; again here for a task logged before that
 * check) with the rewrite.
 */
export function steeringArgv(task: Pick<CompiledTask, "spec" | "steeringArgv">): string[] {
  if (!task.steeringArgv) throw new ValidationError("INVALID_CONFIG", "the task has no steeringExec");
  checkSteeringArgvForm(task.steeringArgv, task.spec.steeringContainer);
  return task.steeringArgv;
}

export interface SteeringIteration {
  task: CompiledTask;
  segmentName: string | null;
  space: SearchSpace;
  signal: AbortSignal;
  /**
   * Puts the task's sandbox files into the iteration's directory (read-only); returns the
   * top-level names it placed.
   */
  sandbox?: (dir: string) => Promise<string[]>;
}

/** One run's whole story: its points, or the error; its exit status and output either way. */
export interface SteeringRunOutcome {
  points: Point[];
  error: GridtuneError | null;
  exitCode: number | null;
  output: Buffer;
}

export class SteeringProgram implements ExternalSampler {
  constructor(
    private readonly runner: SteeringRunner,
    private readonly it: SteeringIteration,
  ) {}

  async ask(n: number, history: History): Promise<Point[]> {
    const r = await this.run(n, history);
    if (r.error) throw r.error;
    return r.points;
  }

  /** Runs one iteration; never rejects: a failure is the outcome's error, with the output kept. */
  async run(n: number, history: History): Promise<SteeringRunOutcome> {
    const { task, space } = this.it;
    const spec = task.spec;
    let exitCode: number | null = null;
    let output: Buffer = Buffer.alloc(0);
    const failed = (err: unknown): SteeringRunOutcome => ({
      points: [],
      error:
        err instanceof GridtuneError
          ? err
          : new RuntimeError("INTERNAL", `steering iteration: ${String(err)}`, { cause: err }),
      exitCode,
      output,
    });
    let dir: string;
    try {
      dir = await this.runner.scratchDir();
    } catch (err) {
      return failed(err);
    }
    try {
      const argv = steeringArgv(task).map((t) =>
        substitutePlaceholders(t, {
          MAX_POINTS: String(spec.maxPoints),
          NUM_POINTS: String(n),
          IN: STEERING_IN,
          OUT: STEERING_OUT,
          SEGMENT_NAME: this.it.segmentName ?? "",
        }),
      );
      const image = spec.steeringContainer ?? null;
      const readOnly = this.it.sandbox ? await this.it.sandbox(dir) : [];
      // The container runs as uid 1000: it must be able to write %OUT in the bind-mounted dir;
      // sticky, so it cannot remove or replace the sandbox's files (owned by steering's uid).
      if (image !== null) await chmod(dir, 0o1777);
      await writeFile(join(dir, STEERING_IN), JSON.stringify(buildSteeringInput(history, space)));
      const r = await this.runner.run(argv, dir, image, this.it.signal, readOnly);
      exitCode = r.exitCode;
      output = r.output;
      const where = image === null ? "the steering process" : `steeringContainer ${image}`;
      const tail = r.outputTail.trim() ? `; its output ends with:\n${r.outputTail.trim()}` : "";
      if (r.timedOut)
        throw new RuntimeError("TIMEOUT", `${where} ran past its deadline and was killed${tail}`);
      if (r.exitCode !== 0)
        throw new RuntimeError(
          "EVALUATION_FAILED",
          `${where} exited with code ${String(r.exitCode)} (${argv.join(" ")})${tail}`,
        );
      let text: string;
      try {
        text = await readFile(join(dir, STEERING_OUT), "utf8");
      } catch {
        throw new RuntimeError(
          "OUTPUT_INVALID",
          `${where} exited 0 but wrote no %OUT (${STEERING_OUT} in its working directory); it must write a JSON list of points, [] to stop${tail}`,
        );
      }
      return {
        points: readSteeringOutput(text, space, `%OUT (${STEERING_OUT})`),
        error: null,
        exitCode,
        output,
      };
    } catch (err) {
      return failed(err);
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
