// phpo download TASK [--metrics] [--checkpoints] [--logs] [--dest DIR]: presigned GETs of the task's
// artifacts, written under the names PanDA gives them (DownloadItem.name), a page of points at a
// time. Each metrics tarball is listed with tar afterwards: a file that is not a readable tar.gz is
// reported and fails the command.
import { basename, join, resolve } from "node:path";
import type { ArtifactKind } from "../../protocol/messages.ts";
import type { MissingItem } from "../../protocol/api.ts";
import { DirectoryError, makeDirs } from "../../protocol/dirs.ts";
import { GridtuneError } from "../../protocol/errors.ts";
import { pages } from "../paging.ts";
import type { VerbContext } from "../context.ts";
import { fetchToFile } from "../fetchFile.ts";
import { renderTable } from "../format.ts";
import { printJson } from "../io.ts";
import { describeMissing } from "../render.ts";
import { listTarGz } from "../sandbox.ts";
import { parseTaskArg } from "./common.ts";

export interface DownloadFlags {
  metrics?: boolean;
  checkpoints?: boolean;
  logs?: boolean;
  dest: string;
}

export async function downloadVerb(ctx: VerbContext, task: string, flags: DownloadFlags): Promise<number> {
  const taskId = parseTaskArg(task);
  const kinds: ArtifactKind[] = [];
  if (flags.metrics) kinds.push("metrics");
  if (flags.checkpoints) kinds.push("checkpoint");
  if (flags.logs) kinds.push("log");
  if (kinds.length === 0) kinds.push("metrics");
  const dest = resolve(flags.dest);
  // before connecting: a --dest that cannot be written fails at once, not after the first page
  try {
    makeDirs(dest);
  } catch (e) {
    if (!(e instanceof DirectoryError)) throw e;
    throw new DirectoryError(
      `--dest ${flags.dest}: ${e.message}; choose a directory you can write, e.g. --dest ./downloads`,
      { cause: e },
    );
  }
  const api = await ctx.api();
  const done: {
    pointId: number;
    attempt: number;
    kind: string;
    name: string;
    path: string;
    bytes: number;
    entries: number | null;
  }[] = [];
  const bad: string[] = [];
  const missing: MissingItem[] = [];
  // A page of presigned URLs at a time, each page's files fetched before the next is asked for:
  // a large task's list would not fit in one reply, and its URLs expire.
  for await (const page of pages((from) => api.call("download", { taskId, kinds, from }))) {
    missing.push(...page.missing);
    for (const item of page.items) {
      // The name comes from the server: it must stay a plain file name inside dest.
      if (item.name !== basename(item.name) || item.name.startsWith(".")) {
        throw new GridtuneError(
          "PROTOCOL_MISMATCH",
          `steering sent an unsafe file name ${JSON.stringify(item.name)}; not written`,
        );
      }
      const path = join(dest, item.name);
      const bytes = await fetchToFile(item.url, path, item.name);
      let entries: number | null = null;
      if (item.kind === "metrics" || item.name.endsWith(".tgz")) {
        try {
          entries = (await listTarGz(path)).length;
        } catch (err) {
          bad.push(`${item.name}: not a readable tar.gz (${(err as Error).message})`);
        }
      }
      done.push({
        pointId: item.pointId,
        attempt: item.attempt,
        kind: item.kind,
        name: item.name,
        path,
        bytes,
        entries,
      });
    }
  }
  if (ctx.json) printJson(ctx.io, { taskId, dest, files: done, invalid: bad, missing });
  else if (done.length === 0)
    ctx.io.stdout.write(`task ${taskId} has no ${kinds.join(" or ")} files (yet)\n`);
  else {
    ctx.io.stdout.write(
      renderTable(
        ["file", "kind", "point", "attempt", "bytes", "tar entries"],
        done.map((d) => [d.name, d.kind, d.pointId, d.attempt, d.bytes, d.entries]),
      ),
    );
    ctx.io.stdout.write(`${done.length} file${done.length === 1 ? "" : "s"} in ${dest}\n`);
  }
  if (!ctx.json && missing.length > 0) {
    ctx.io.stdout.write(`not in S3 (${missing.length}):\n`);
    for (const m of missing) ctx.io.stdout.write(`  ${describeMissing(m)}\n`);
  }
  if (bad.length > 0)
    throw new GridtuneError(
      "OUTPUT_INVALID",
      `${bad.length} downloaded tarball(s) are not valid:\n${bad.join("\n")}`,
    );
  return 0;
}
