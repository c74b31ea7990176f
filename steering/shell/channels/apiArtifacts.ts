// The artifacts of a task as presigned GETs (`download`, `steering-log`), named as PanDA names
// them. A download reply grows with the task, so it comes a page at a time within a byte budget.
import { GridtuneError } from "../../../protocol/errors.ts";
import type {
  ApiRequest,
  ArtifactKind,
  DownloadItem,
  MissingItem,
  SteeringIterationView,
} from "../../../protocol/messages.ts";
import { view as steeringView } from "../../core/task/steeringIterations.ts";
import type { PointRec, TaskEngine } from "../../core/task/taskEngine.ts";
import { FRAMING_BYTES, jsonBytes } from "../../core/views.ts";
import type { Storage } from "../storage.ts";

export class Artifacts {
  constructor(
    private readonly storage: Pick<Storage, "presignGet">,
    /** A page's byte budget (a reply stays under NATS's max_payload). */
    private readonly pageBytes: () => number,
  ) {}

  /**
   * Presigned GETs of the task's artifacts, point by point: one page from `from` (at most `limit`
   * points, at most a page's bytes, never split within a point), or everything without `from`.
   */
  async download(
    e: TaskEngine,
    req: Extract<ApiRequest, { verb: "download" }>,
  ): Promise<{ items: DownloadItem[]; missing: MissingItem[]; next: number | null }> {
    const points = [...e.points.values()].sort((a, b) => a.pointId - b.pointId);
    const missing: MissingItem[] = [];
    const paged = req.from !== undefined || req.limit !== undefined;
    const budget = paged ? this.pageBytes() - FRAMING_BYTES : Number.POSITIVE_INFINITY;
    const limit = req.limit ?? Number.POSITIVE_INFINITY;
    const items: DownloadItem[] = [];
    let bytes = 0;
    let taken = 0;
    let i = req.from ?? 0;
    for (; i < points.length && taken < limit; i++) {
      const p = points[i]!;
      const mine = await this.downloadItems(e, p, req.kinds);
      const gaps = p.missing
        .filter((m) => req.kinds.includes(m.kind))
        .map(({ attempt, kind, reason, pending }) => ({
          pointId: p.pointId,
          attempt,
          kind,
          reason,
          pending,
        }));
      bytes += jsonBytes(mine) + jsonBytes(gaps);
      // at least one point per page, so a page always moves on
      if (bytes > budget && taken > 0) break;
      items.push(...mine);
      missing.push(...gaps);
      taken++;
    }
    return { items, missing, next: i < points.length ? i : null };
  }

  /** The task's steering iterations and a presigned GET of one's output (default: the last). */
  async steeringLog(
    e: TaskEngine,
    iteration: number | undefined,
  ): Promise<{
    iterations: SteeringIterationView[];
    log: { iteration: number; name: string; url: string } | null;
  }> {
    if (e.spec.steeringExec === undefined)
      throw new GridtuneError(
        "NOT_FOUND",
        `task ${e.taskId} has no steering program (no steeringExec); phpo logs ${e.taskId} POINT prints an evaluation's log`,
      );
    const all = e.steering.list;
    const iterations = all.map(steeringView);
    const it = iteration === undefined ? all.at(-1) : all[iteration - 1];
    if (iteration !== undefined && it === undefined)
      throw new GridtuneError(
        "NOT_FOUND",
        `task ${e.taskId} has no steering iteration ${iteration} (it has ${all.length}${all.length > 0 ? `: 1–${all.length}` : ""})`,
      );
    if (!it?.logKey) return { iterations, log: null };
    const seg = it.segment === null ? "" : `${it.segment}.`;
    return {
      iterations,
      log: {
        iteration: it.iteration,
        name: `${seg}${e.spec.outDS.replace(/\/$/, "")}.${e.taskId}.steering.${String(it.iteration).padStart(4, "0")}.log.txt`,
        url: await this.storage.presignGet(it.logKey),
      },
    };
  }

  private async downloadItems(
    e: TaskEngine,
    p: PointRec,
    kinds: readonly ArtifactKind[],
  ): Promise<DownloadItem[]> {
    const keysOf: Partial<Record<ArtifactKind, string[]>> = {
      metrics: p.metricsKeys,
      log: p.logKeys,
      checkpoint: p.checkpointKey ? [p.checkpointKey] : [],
    };
    const items: DownloadItem[] = [];
    for (const kind of kinds) {
      for (const key of keysOf[kind] ?? []) {
        const [, job, att] = /-j([0-9]+)\/a([0-9]+)\//.exec(key) ?? [];
        const attempt = Number(att ?? 0);
        items.push({
          pointId: p.pointId,
          job: Number(job ?? 1),
          attempt,
          kind,
          name: downloadName(e, p.pointId, p.segment, Number(job ?? 1), attempt, kind),
          url: await this.storage.presignGet(key),
        });
      }
    }
    return items;
  }
}

/**
 * PanDA naming: `<taskId>.metrics.<serial>.tgz`, segment name prepended for segmented tasks. The
 * serial is the point, the job when a point has several (ASHA promotions), and the attempt.
 */
function downloadName(
  e: TaskEngine,
  pointId: number,
  segment: number,
  job: number,
  attempt: number,
  kind: string,
): string {
  const seg = e.segmentName(segment);
  const serial = `${String(pointId).padStart(6, "0")}${job > 1 ? `_j${job}` : ""}_a${attempt}`;
  const base =
    kind === "metrics"
      ? `${e.taskId}.metrics.${serial}.tgz`
      : kind === "log"
        ? `${e.spec.outDS.replace(/\/$/, "")}.${e.taskId}.${serial}.log.txt`
        : `${e.taskId}.checkpoint.${serial}.tgz`;
  return seg ? `${seg}.${base}` : base;
}
