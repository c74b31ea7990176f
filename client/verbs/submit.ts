// phpo [submit] --loadJson cfg.json [options]: PanDA-style submission. Everything is read and
// validated (options, files, TaskSpec, sandbox) before the first network call, so bad input
// never half-submits a task. Then: upload verb → presigned PUT of the sandbox → submit verb.
import { promotesTrials } from "../../protocol/scheduler.ts";
import type { TaskSpec } from "../../protocol/taskConfig.ts";
import { specFromOptions, resolveInputFile } from "../compile.ts";
import type { VerbContext } from "../context.ts";
import { exitCodeOf } from "../errors.ts";
import { printJson } from "../io.ts";
import { checkWritable, writeUserFile } from "../localFile.ts";
import { PHPO_OPTIONS } from "../options.ts";
import {
  formatHelpGroup,
  type LoadedJson,
  loadJsonOptions,
  type PhpoValues,
  resolveOptions,
} from "../optionValues.ts";
import { buildSandbox, type Sandbox, uploadSandbox } from "../sandbox.ts";
import { checkOutcome, followTask } from "./watch.ts";
import { summaryLine } from "./common.ts";

export interface PreparedTask {
  values: PhpoValues;
  spec: TaskSpec;
  sandbox: Sandbox | null;
  sandboxDir: string;
}

/** Options → values → TaskSpec → sandbox, with no network I/O. */
export async function prepareTask(
  ctx: VerbContext,
  cli: Record<string, unknown>,
  cwd = process.cwd(),
): Promise<PreparedTask> {
  let loaded: LoadedJson | undefined;
  if (typeof cli.loadJson === "string") loaded = loadJsonOptions(cli.loadJson, (m) => ctx.warn(m));
  const values = resolveOptions(cli, loaded?.values ?? {});
  if (loaded) values.loadJson = cli.loadJson;
  for (const name of ["noEmail", "voms", "3", "intrSrv"]) {
    if (cli[name] !== undefined || loaded?.values[name] !== undefined) {
      if (ctx.opts.verbose) ctx.warn(`--${name} is PanDA-specific and has no effect in gridtune`);
    }
  }
  const files = { cwd, ...(loaded ? { jsonDir: loaded.dir } : {}) };
  const spec = specFromOptions(values, files);
  if (spec.scheduler && promotesTrials(spec.scheduler) && (spec.checkPointToSave?.length ?? 0) === 0) {
    ctx.warn(
      `scheduler ${spec.scheduler.type} pauses trials and promotes the best ones as new jobs, but the task ` +
        `has no checkPointToSave: every promotion trains again from scratch. Save the training state ` +
        `(e.g. --checkPointToSave checkpoint) and resume from it in the payload`,
    );
  }
  // Like the other file options: under cwd first, then next to the --loadJson file.
  const dir = values.sandboxDir as string;
  const sandboxDir = dir === "." ? cwd : resolveInputFile(dir, files, "sandboxDir");
  const sandbox = await buildSandbox(sandboxDir);
  return { values, spec, sandbox, sandboxDir };
}

function dumpJson(
  file: string,
  values: PhpoValues,
  result: { returnCode: number; returnOut: string; jediTaskID: number | null },
): void {
  // Every option, unset ones as null, as PanDA's phpo dumps them.
  const all = Object.fromEntries(
    PHPO_OPTIONS.filter((o) => o.name !== "helpGroup").map((o) => [o.name, values[o.name] ?? null]),
  );
  writeUserFile(file, JSON.stringify({ ...all, dumpJson: file, ...result }, null, 2) + "\n", "--dumpJson");
}

export async function submitVerb(ctx: VerbContext, cli: Record<string, unknown>): Promise<number> {
  if (typeof cli.helpGroup === "string") {
    ctx.io.stdout.write(formatHelpGroup(cli.helpGroup));
    return 0;
  }
  const task = await prepareTask(ctx, cli);
  const { values, spec, sandbox } = task;
  // checked before anything is submitted: a task must not be submitted and its id then lost
  const dumpFile =
    typeof values.dumpJson === "string" ? checkWritable(values.dumpJson, "--dumpJson") : undefined;

  if (values.noSubmit === true) {
    const sandboxInfo = {
      dir: task.sandboxDir,
      files: sandbox?.files ?? [],
      bytes: sandbox?.data.length ?? 0,
    };
    if (ctx.json) printJson(ctx.io, { spec, sandbox: sandboxInfo });
    else {
      ctx.io.stdout.write(
        `task parameters (--noSubmit: nothing was submitted):\n${JSON.stringify(spec, null, 2)}\n`,
      );
      ctx.io.stdout.write(
        `sandbox: ${sandboxInfo.files.length} files from ${sandboxInfo.dir} (${sandboxInfo.bytes} bytes compressed)\n`,
      );
      for (const f of sandboxInfo.files) ctx.io.stdout.write(`  ${f}\n`);
    }
    if (dumpFile)
      dumpJson(dumpFile, values, {
        returnCode: 0,
        returnOut: "not submitted (--noSubmit)",
        jediTaskID: null,
      });
    return 0;
  }

  let taskId: string;
  try {
    const api = await ctx.api();
    if (sandbox) {
      const grant = await api.call("upload", { size: sandbox.data.length });
      await uploadSandbox(grant.url, sandbox.data);
      spec.sandboxKey = grant.key;
    }
    const reply = await api.call("submit", { spec });
    taskId = reply.taskId;
    for (const w of reply.warnings ?? []) ctx.io.stderr.write(`warning: ${w}\n`);
  } catch (err) {
    if (dumpFile) {
      const msg = err instanceof Error ? err.message : String(err);
      dumpJson(dumpFile, values, { returnCode: exitCodeOf(err), returnOut: msg, jediTaskID: null });
    }
    throw err;
  }
  if (dumpFile)
    dumpJson(dumpFile, values, {
      returnCode: 0,
      returnOut: `succeeded. new jediTaskID=${taskId}`,
      jediTaskID: Number(taskId),
    });
  if (ctx.json && !values.wait)
    printJson(ctx.io, {
      taskId,
      jediTaskID: Number(taskId),
      outDS: spec.outDS,
      sandboxKey: spec.sandboxKey ?? null,
    });
  else if (!ctx.json) ctx.io.stdout.write(`succeeded. new jediTaskID=${taskId}\n`);

  if (values.wait === true) {
    const s = await followTask(ctx, taskId);
    if (!ctx.json) ctx.io.stdout.write(summaryLine(s) + "\n");
    checkOutcome(s);
  }
  return 0;
}
