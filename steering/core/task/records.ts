// The engine's records of points and of their current jobs (one job per point at a time; a retry
// is a new attempt of the same job, an ASHA promotion a new job of the same point).
import type { ErrorCode } from "../../../protocol/errors.ts";
import type { FailureClass } from "../../../protocol/failures.ts";
import type { ArtifactKind } from "../../../protocol/messages.ts";
import type { PointState } from "../../../protocol/api.ts";
import type { Point } from "../../../protocol/points.ts";
import { jobIdOf } from "../../../protocol/names.ts";
import type { Decision } from "../../scheduler/index.ts";

export type JobState = "queued" | "dispatched" | "running" | "done" | "failed" | "stopped" | "cancelled";

/** Why steering asked the agent to stop a running attempt (sent again after a restart). */
export type StopRequest = "pruned" | "paused";

export interface JobRec {
  jobId: string;
  pointId: number;
  seq: number;
  attempt: number;
  state: JobState;
  site: string | null;
  agent: string | null;
  dispatchedAt: number | null;
  claimedAt: number | null;
  /** Resource level to reach (ASHA); null for a plain evaluation. */
  target: number | null;
  /** The scheduler decided to end this job before its target. */
  stop: StopRequest | null;
  /** The loss reported with the decision that stopped it (the point's final loss if pruned). */
  stopLoss: number | null;
  /** The resource level of the report that decision judged (the pruned point's level). */
  stopResource: number | null;
  /** The scheduler's last decision on a report of this job. */
  decision: Decision | null;
  /** When the last failed or lost attempt of this job ended (its retry waits a back-off from there). */
  failedAt: number | null;
  /** Where the failed or lost attempts of this job ran: a retry prefers another agent and site. */
  failedOn: Array<{ site: string | null; agent: string | null }>;
}

/** An artifact an ended attempt could not upload: awaited from its agent, or given up. */
export interface MissingRec {
  jobId: string;
  job: number;
  attempt: number;
  kind: ArtifactKind;
  site: string;
  agent: string;
  reason: string;
  /** The agent still tries to upload it; false once it gave up. */
  pending: boolean;
}

export interface PointRec {
  pointId: number;
  segment: number;
  values: Point;
  state: PointState;
  loss: number | null;
  attempts: number;
  /** Failed attempts of the current job that count against maxAttempts (payload, OOM, timeout). */
  failures: number;
  /** Failed or lost attempts of the current job that were the site's (image, node lost, infrastructure). */
  siteFailures: number;
  resource: number | null;
  reports: ReportRec[];
  /** Every attempt that ended: its outcome and times (for exports and `phpo results`). */
  history: AttemptRec[];
  site: string | null;
  agent: string | null;
  error: string | null;
  errorCode: ErrorCode | null;
  /** The class of the failure `error` tells of. */
  failureClass: FailureClass | null;
  metricsKeys: string[];
  logKeys: string[];
  /** Artifacts of ended attempts that S3 has not got (uploaded late, or given up). */
  missing: MissingRec[];
  checkpointKey: string | null;
  checkpointResource: number | null;
  /** The scheduler's trial name (tasks with a scheduler). */
  trial: string | null;
  /** Highest resource reported to the scheduler (a retry or resume re-reports lower levels). */
  fed: number;
  /** The scheduler is done with the trial (stopped, failed or completed): no more reports. */
  closed: boolean;
  /** Jobs this point has had (1 + promotions). */
  jobs: number;
  job: JobRec;
}

/** A job's decision and failure fields as a new job starts them (shared by new points and new jobs). */
export function undecided(): Pick<
  JobRec,
  "stop" | "stopLoss" | "stopResource" | "decision" | "failedAt" | "failedOn"
> {
  return { stop: null, stopLoss: null, stopResource: null, decision: null, failedAt: null, failedOn: [] };
}

export function newPoint(
  taskId: string,
  pointId: number,
  segment: number,
  values: Point,
  target: number | null,
  trial: string | null,
): PointRec {
  return {
    pointId,
    segment,
    values,
    state: "queued",
    loss: null,
    attempts: 0,
    failures: 0,
    siteFailures: 0,
    resource: null,
    reports: [],
    history: [],
    site: null,
    agent: null,
    error: null,
    errorCode: null,
    failureClass: null,
    metricsKeys: [],
    logKeys: [],
    missing: [],
    checkpointKey: null,
    checkpointResource: null,
    trial,
    fed: -1,
    closed: false,
    jobs: 1,
    job: {
      jobId: jobIdOf(taskId, pointId, 1),
      pointId,
      seq: 1,
      attempt: 1,
      state: "queued",
      site: null,
      agent: null,
      dispatchedAt: null,
      claimedAt: null,
      target,
      ...undecided(),
    },
  };
}

/** One intermediate report of a running attempt. */
export interface ReportRec {
  resource: number;
  loss: number;
  metrics: Record<string, number>;
  job: number;
  attempt: number;
  at: number;
  site: string | null;
  agent: string | null;
}

/** One attempt that ended (finished, failed, stopped, preempted or lost). */
export interface AttemptRec {
  job: number;
  attempt: number;
  site: string | null;
  agent: string | null;
  status: "ok" | "failed" | "stopped" | "preempted" | "lost";
  loss: number | null;
  startedAt: number | null;
  finishedAt: number;
  error: string | null;
  failureClass: FailureClass | null;
}
