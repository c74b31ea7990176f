// Which training files of trainingDS a job gets, and the check at submission that every segment's
// selection exists. A segment names files one by one (`files`, relative to trainingDS) or by
// constituent dataset (`datasets`: a folder of trainingDS, every file under it). Pure functions
// over the dataset's file listing (names relative to `datasets/<trainingDS>/`).
import { ValidationError } from "../../protocol/errors.ts";
import type { Segment, TaskSpec } from "../../protocol/taskConfig.ts";

/** The files of the listing that a segment selects (all of them without a segment). */
export function segmentFiles(segment: Segment | undefined, all: readonly string[]): string[] {
  if (!segment) return [...all];
  const named = new Set(segment.files);
  const folders = (segment.datasets ?? []).map((d) => `${d}/`);
  return all.filter((f) => named.has(f) || folders.some((d) => f.startsWith(d)));
}

/**
 * Refuses a task whose training data is not there: an empty trainingDS, a segment's file that is
 * not in it, a segment's dataset with no file. Found at submission, each would otherwise fail
 * every attempt of every point (or, worse, run them on no data).
 */
export function checkTrainingData(spec: TaskSpec, all: readonly string[]): void {
  const ds = spec.trainingDS;
  if (ds === undefined) return;
  const where = `S3 datasets/${ds}/`;
  if (all.length === 0)
    throw new ValidationError(
      "INVALID_CONFIG",
      `trainingDS ${ds} has no files (${where}); upload the training data first, or drop --trainingDS`,
    );
  const present = new Set(all);
  for (const s of spec.segments ?? []) {
    const missing = s.files.filter((f) => !present.has(f));
    const empty = (s.datasets ?? []).filter((d) => !all.some((f) => f.startsWith(`${d}/`)));
    if (missing.length === 0 && empty.length === 0) continue;
    const parts = [
      ...(missing.length > 0 ? [`files not in trainingDS: ${missing.map((f) => `"${f}"`).join(", ")}`] : []),
      ...(empty.length > 0 ? [`datasets with no files: ${empty.map((d) => `"${d}"`).join(", ")}`] : []),
    ];
    throw new ValidationError(
      "INVALID_CONFIG",
      `segments: segment "${s.name}": ${parts.join("; ")} (${where}); fix the segmentSpecFile or upload them first`,
    );
  }
}
