// Names that become NATS subject tokens, S3 key segments or file names.
/** Segment names, output names: letters, digits, '_' and '-', 1–64 characters. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** Task ids are decimal serials (like PanDA's jediTaskID), job ids `t<task>-p<point>-j<n>`. */
export const TASK_ID_RE = /^[0-9]{1,12}$/;
export const JOB_ID_RE = /^t[0-9]{1,12}-p[0-9]{1,9}-j[0-9]{1,4}$/;
export function jobIdOf(taskId: string, pointId: number, jobSeq: number): string {
  return `t${taskId}-p${pointId}-j${jobSeq}`;
}

/** The point id a job id names (`t12-p3-j1` → 3), or null for anything else. */
export function pointIdOfJob(jobId: string): number | null {
  const m = /^t[0-9]{1,12}-p([0-9]{1,9})-j[0-9]{1,4}$/.exec(jobId);
  return m ? Number(m[1]) : null;
}

/** The task id a job id names (`t12-p3-j1` → "12"), or null for anything else. */
export function taskIdOfJob(jobId: string): string | null {
  return /^t([0-9]{1,12})-p[0-9]{1,9}-j[0-9]{1,4}$/.exec(jobId)?.[1] ?? null;
}

/** The Docker label on every container gridtune makes: "true" for jobs, "steering" for steering programs. */
export const LABEL_MANAGED = "org.gridtune.managed";
