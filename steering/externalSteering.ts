// The steering container (iDDS protocol) as an ExternalSampler: one ask() is one steering
// iteration. It writes the history to %IN in a fresh scratch directory, substitutes the
// placeholders of steeringExec per token (no shell), runs the program there (steeringRunner.ts)
// and reads the new points from %OUT, validated against the search space. [] means the optimiser
// has nothing more to offer; a non-zero exit, a timeout, a missing or invalid %OUT reject with the
// reason. Either way generation ends for the segment (the dispatcher commits that).
import { readFile, rm, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { GridtuneError, RuntimeError, ValidationError } from "../protocol/errors.ts";
import { tokenizeExec } from "../protocol/execString.ts";
import { substitutePlaceholders } from "../protocol/placeholders.ts";
import type { Point, SearchSpace } from "../protocol/searchSpace.ts";
import type { TaskSpec } from "../protocol/taskConfig.ts";
import {
  buildSteeringInput,
  readSteeringOutput,
  type ExternalSampler,
  type History,
} from "./sampler/external.ts";
import type { SteeringRunner } from "./steeringRunner.ts";

/** The file names behind %IN and %OUT, in the iteration's working directory (iDDS's names). */
export const STEERING_IN = "idds_input.json";
export const STEERING_OUT = "idds_output.json";

/**
 * The argv of steeringExec. PanDA's form without steeringContainer (a `docker` argument list such
 * as `run -v $(pwd):/data IMAGE cmd ...`) is refused with the fix: gridtune runs steeringExec as
 * a process on the steering host when there is no steeringContainer.
 */
export function steeringArgv(spec: Pick<TaskSpec, "steeringExec" | "steeringContainer">): string[] {
  if (!spec.steeringExec) throw new ValidationError("INVALID_CONFIG", "the task has no steeringExec");
  const tokens = tokenizeExec(spec.steeringExec, "steeringExec");
  if (tokens[0] === "run" && !spec.steeringContainer) {
    throw new ValidationError(
      "INVALID_CONFIG",
      "steeringExec starts with `run`: that is PanDA's docker-argument form (used without " +
        "steeringContainer), which gridtune does not support; without steeringContainer, gridtune runs " +
        "steeringExec as a process on the steering host. Put the image in steeringContainer and only the " +
        "command in steeringExec (e.g. steeringContainer IMAGE, steeringExec `python /opt/opt.py " +
        "--max_points=%MAX_POINTS --num_points=%NUM_POINTS --input=%IN --output=%OUT`), or drop `run -v ... IMAGE`",
    );
  }
  return tokens;
}

export interface SteeringIteration {
  spec: TaskSpec;
  segmentName: string | null;
  space: SearchSpace;
  signal: AbortSignal;
}

export class SteeringProgram implements ExternalSampler {
  constructor(
    private readonly runner: SteeringRunner,
    private readonly it: SteeringIteration,
  ) {}

  async ask(n: number, history: History): Promise<Point[]> {
    const { spec, space } = this.it;
    const argv = steeringArgv(spec).map((t) =>
      substitutePlaceholders(t, {
        MAX_POINTS: String(spec.maxPoints),
        NUM_POINTS: String(n),
        IN: STEERING_IN,
        OUT: STEERING_OUT,
        SEGMENT_NAME: this.it.segmentName ?? "",
      }),
    );
    const dir = await this.runner.scratchDir();
    try {
      const image = spec.steeringContainer ?? null;
      // The container runs as uid 1000: it must be able to write %OUT in the bind-mounted dir.
      if (image !== null) await chmod(dir, 0o777);
      await writeFile(join(dir, STEERING_IN), JSON.stringify(buildSteeringInput(history, space)));
      const r = await this.runner.run(argv, dir, image, this.it.signal);
      const where = image === null ? "the steering process" : `steeringContainer ${image}`;
      const output = r.outputTail.trim() ? `; its output ends with:\n${r.outputTail.trim()}` : "";
      if (r.timedOut)
        throw new RuntimeError("TIMEOUT", `${where} ran past its deadline and was killed${output}`);
      if (r.exitCode !== 0)
        throw new RuntimeError(
          "EVALUATION_FAILED",
          `${where} exited with code ${String(r.exitCode)} (${argv.join(" ")})${output}`,
        );
      let text: string;
      try {
        text = await readFile(join(dir, STEERING_OUT), "utf8");
      } catch {
        throw new RuntimeError(
          "OUTPUT_INVALID",
          `${where} exited 0 but wrote no %OUT (${STEERING_OUT} in its working directory); it must write a JSON list of points, [] to stop${output}`,
        );
      }
      return readSteeringOutput(text, space, `%OUT (${STEERING_OUT})`);
    } catch (err) {
      if (err instanceof GridtuneError) throw err;
      throw new RuntimeError("INTERNAL", `steering iteration: ${String(err)}`, { cause: err });
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
