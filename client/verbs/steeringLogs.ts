// phpo logs TASK --steering [--iteration N]: the stdout and stderr of one run of the task's
// steering program (default: the last), from S3 through a presigned GET, as evaluation logs are.
import { ValidationError } from "../../protocol/errors.ts";
import type { VerbContext } from "../context.ts";
import { fetchBytes } from "../fetchFile.ts";
import { printJson } from "../io.ts";
import { steeringIterationLine } from "../steeringView.ts";
import { parseIntArg, parseTaskArg } from "./common.ts";

export async function steeringLogsVerb(
  ctx: VerbContext,
  task: string,
  point: string | undefined,
  o: { job?: string; attempt?: string; iteration?: string },
): Promise<number> {
  const taskId = parseTaskArg(task);
  const extra =
    point !== undefined
      ? `POINT ${point}`
      : o.job !== undefined
        ? "--job"
        : o.attempt !== undefined
          ? "--attempt"
          : null;
  if (extra !== null)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `--steering prints a steering iteration's output: it takes --iteration N, not ${extra} (phpo logs ${taskId} POINT prints an evaluation's)`,
    );
  const iteration = o.iteration === undefined ? undefined : parseIntArg(o.iteration, "--iteration", 1);
  const api = await ctx.api();
  const r = await api.call("steering-log", { taskId, ...(iteration === undefined ? {} : { iteration }) });
  const it = r.log ? r.iterations[r.log.iteration - 1] : r.iterations.at(-1);
  if (!r.log) {
    throw new ValidationError(
      "NOT_FOUND",
      it
        ? `steering iteration ${it.iteration} of task ${taskId} has no stored output (${it.reason ?? "it was not stored"})`
        : `task ${taskId}'s steering program has not run yet`,
    );
  }
  const text = (await fetchBytes(r.log.url, `the steering log ${r.log.name}`)).toString("utf8");
  if (ctx.json) {
    printJson(ctx.io, {
      taskId,
      iteration: r.log.iteration,
      name: r.log.name,
      details: it ?? null,
      log: text,
    });
    return 0;
  }
  ctx.io.stderr.write(`==> ${r.log.name} <==\n`);
  if (it) ctx.io.stderr.write(`${steeringIterationLine(taskId, it)}\n`);
  ctx.io.stdout.write(text.endsWith("\n") || text === "" ? text : `${text}\n`);
  return 0;
}
