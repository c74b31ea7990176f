// phpo logs TASK POINT [--job J] [--attempt N] (--steering: verbs/steeringLogs.ts): the container log of one evaluation, from S3 via a
// presigned GET of the download verb. A point has one job, plus one per ASHA promotion, and each
// job its attempts (retries). A gzipped tarball log (PanDA's .log.tgz) is unpacked and printed.
import { gunzipSync } from "node:zlib";
import * as tar from "tar";
import { ValidationError } from "../../protocol/errors.ts";
import type { ArtifactKind } from "../../protocol/messages.ts";
import type { DownloadItem } from "../../protocol/api.ts";
import type { ApiClient } from "../api.ts";
import { pages } from "../paging.ts";
import type { VerbContext } from "../context.ts";
import { fetchBytes } from "../fetchFile.ts";
import { printJson } from "../io.ts";
import { parseIntArg, parseTaskArg } from "./common.ts";

/** The text of every file of a tarball, each under a `==> name <==` header. */
async function tarText(data: Buffer): Promise<string> {
  const parts: string[] = [];
  const parser = new tar.Parser({
    onReadEntry: (e) => {
      const chunks: Buffer[] = [];
      e.on("data", (c: Buffer) => chunks.push(c));
      e.on("end", () => parts.push(`==> ${e.path} <==\n${Buffer.concat(chunks).toString("utf8")}`));
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on("end", () => resolve());
    parser.on("error", reject);
    parser.end(data);
  });
  return parts.join("\n");
}

/** The job of a log: from the reply, else from its name (`…_j2_a1…`; no `_j` is job 1). */
function jobOf(i: DownloadItem): number {
  return i.job ?? Number(/_j([0-9]+)_a[0-9]+/.exec(i.name)?.[1] ?? 1);
}

const label = (i: DownloadItem) => `job ${jobOf(i)} attempt ${i.attempt}`;

/** Presigned GETs of one point's artifacts of these kinds (every attempt), from the download verb. */
export async function pointArtifacts(
  api: ApiClient,
  taskId: string,
  pointId: number,
  kinds: ArtifactKind[],
): Promise<DownloadItem[]> {
  const found: DownloadItem[] = [];
  for await (const page of pages((from) => api.call("download", { taskId, kinds, from }))) {
    found.push(...page.items.filter((i) => i.pointId === pointId));
    // pages go by point id: once past the point, the rest holds none of its artifacts
    if (page.items.some((i) => i.pointId > pointId)) break;
  }
  return found;
}

/** A log's text: a gzipped tarball (PanDA's .log.tgz) unpacked, a .gz unzipped, else as is. */
export async function logText(item: DownloadItem): Promise<string> {
  const data = await fetchBytes(item.url, `the log ${item.name}`);
  if (/\.(tgz|tar\.gz)$/.test(item.name)) return tarText(data);
  if (item.name.endsWith(".gz")) return gunzipSync(data).toString("utf8");
  return data.toString("utf8");
}

export async function logsVerb(
  ctx: VerbContext,
  task: string,
  point: string | undefined,
  attempt?: string,
  job?: string,
): Promise<number> {
  const taskId = parseTaskArg(task);
  if (point === undefined)
    throw new ValidationError(
      "INVALID_ARGUMENT",
      `phpo logs ${taskId} needs a POINT (phpo show ${taskId} lists them), or --steering for the steering program's output`,
    );
  const pointId = parseIntArg(point, "POINT");
  const wantedJob = job === undefined ? undefined : parseIntArg(job, "--job", 1);
  const wanted = attempt === undefined ? undefined : parseIntArg(attempt, "--attempt", 1);
  const api = await ctx.api();
  const found = await pointArtifacts(api, taskId, pointId, ["log"]);
  const mine = found.sort((a, b) => jobOf(a) - jobOf(b) || a.attempt - b.attempt);
  if (mine.length === 0) {
    throw new ValidationError(
      "NOT_FOUND",
      `task ${taskId} has no log for point ${pointId} (yet): see phpo show ${taskId} for its points`,
    );
  }
  const lastJob = jobOf(mine[mine.length - 1]!);
  const j = wantedJob ?? lastJob;
  const ofJob = mine.filter((i) => jobOf(i) === j);
  if (ofJob.length === 0) {
    const jobs = [...new Set(mine.map(jobOf))].join(", ");
    throw new ValidationError(
      "NOT_FOUND",
      `point ${pointId} of task ${taskId} has no log of job ${j}; jobs with logs: ${jobs} (--job)`,
    );
  }
  const item = wanted === undefined ? ofJob[ofJob.length - 1] : ofJob.find((i) => i.attempt === wanted);
  if (!item) {
    throw new ValidationError(
      "NOT_FOUND",
      `point ${pointId} of task ${taskId} has no log of attempt ${wanted} in job ${j}; logs: ${mine.map(label).join(", ")}`,
    );
  }
  const text = await logText(item);
  if (ctx.json)
    printJson(ctx.io, {
      taskId,
      pointId,
      job: jobOf(item),
      attempt: item.attempt,
      name: item.name,
      log: text,
    });
  else {
    ctx.io.stderr.write(`==> ${item.name} (point ${pointId}, ${label(item)}) <==\n`);
    ctx.io.stdout.write(text.endsWith("\n") || text === "" ? text : `${text}\n`);
  }
  return 0;
}
