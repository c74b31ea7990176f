// The state of one task that its log events fold into (evolve.ts): its points and their current
// jobs, the indexes over them, the per-segment samplers and schedulers and the attempts dispatched.
// The decisions (fences.ts, proposals.ts, dispatchQueue.ts) read it; only evolve() writes it.
import { pointIdOfJob } from "../../../protocol/names.ts";
import type { TaskState } from "../../../protocol/api.ts";
import type { TaskSpec } from "../../../protocol/taskConfig.ts";
import type { LogEventOf } from "../events.ts";
import { PointIndex } from "./pointIndex.ts";
import type { PointRec } from "./records.ts";
import { SegmentSampling } from "./segmentSampling.ts";
import { SegmentScheduler } from "./segmentScheduler.ts";
import { SteeringIterations } from "./steeringIterations.ts";
import type { CompiledTask } from "./compiledTask.ts";

export class TaskData {
  readonly taskId: string;
  readonly user: string;
  /** The spec compiled at submission (the engine's shape: ms, bytes, argv tokens). */
  readonly task: CompiledTask;
  /** The spec as submitted (task.spec). */
  readonly spec: TaskSpec;
  readonly createdAt: number;
  /** The seed logged at submission (the samplers' and schedulers' seeds derive from it; snapshot.ts). */
  readonly seed: number;
  state: TaskState = "running";
  finishedAt: number | null = null;
  readonly points = new Map<number, PointRec>();
  /** The point of each current job (a retry keeps the job id, a promotion renames it). Fold-owned. */
  readonly jobs = new Map<string, PointRec>();
  /** The points by state (pointIndex.ts), updated by the fold for each point an event touched. */
  readonly index = new PointIndex();
  readonly segments: SegmentSampling[];
  /** One scheduler per segment when the spec has a `scheduler` (else PanDA's FIFO: none). */
  readonly schedulers: SegmentScheduler[] | null;
  /** Attempts dispatched so far, per segment (maxEvaluationJobs counts per segment, as phpo does). */
  readonly attemptsUsed: number[];
  /** The id the next sampled point gets. Fold-owned. */
  nextPointId = 0;
  /** The steering program's runs (tasks with steeringExec). */
  readonly steering = new SteeringIterations((i) => this.segmentName(i));

  constructor(ev: LogEventOf<"task-created">) {
    this.taskId = ev.taskId;
    this.user = ev.user;
    this.task = ev.task;
    this.spec = ev.task.spec;
    this.createdAt = ev.at;
    this.seed = ev.seed;
    const spec = this.spec;
    const names = spec.segments?.map((s) => s.name) ?? [null];
    this.segments = names.map(
      (name, i) =>
        new SegmentSampling(spec, i, name, spec.segmentSearchSpaces?.[i] ?? spec.searchSpace, ev.seed + i),
    );
    this.attemptsUsed = names.map(() => 0);
    const cfg = spec.scheduler;
    this.schedulers = cfg
      ? names.map((_, i) => new SegmentScheduler(cfg, spec.maxPoints, ev.seed + i))
      : null;
  }

  get segmentNames(): Array<string | null> {
    return this.segments.map((s) => s.name);
  }

  segmentName(index: number): string | null {
    return this.segments[index]?.name ?? null;
  }

  /** The point whose current job is exactly this attempt, or undefined (a superseded attempt). */
  current(jobId: string, attempt: number): PointRec | undefined {
    const p = this.jobs.get(jobId);
    return p && p.job.jobId === jobId && p.job.attempt === attempt ? p : undefined;
  }

  /** The point of any job of this task, current or past (a promotion renames the current job). */
  pointOfAnyJob(jobId: string): PointRec | undefined {
    const id = pointIdOfJob(jobId);
    return jobId.startsWith(`t${this.taskId}-`) && id !== null ? this.points.get(id) : undefined;
  }

  attemptsUsedIn(segment: number): number {
    return this.attemptsUsed[segment] ?? 0;
  }

  /** Whether the segment's maxEvaluationJobs are all dispatched. */
  budgetSpentIn(segment: number): boolean {
    return this.attemptsUsedIn(segment) >= this.task.maxEvaluationJobs;
  }

  inFlight(): number {
    return this.index.active.size;
  }

  /** A live suggest() ran ahead of the log (its event was not applied): rebuild from the log. */
  hasUnloggedSuggestion(): boolean {
    return this.schedulers?.some((s) => s.hasUnloggedSuggestion) ?? false;
  }
}
