// The plan `phpo preview` shows: the configured scheduler's brackets and how many trials train
// to each length, computed by the same pure function steering uses (protocol/schedulerPlan.ts),
// plus the total compute in resource units.
import { previewPlan } from "../protocol/schedulerPlan.ts";
import type { TaskSpec } from "../protocol/taskConfig.ts";

export interface PreviewBracket {
  bracket: number;
  /** Resource levels a trial of this bracket is measured at, the last being its full length. */
  rungs: number[];
  trials: number;
  maxConcurrentTrials: number;
}
export interface PreviewRow {
  /** Trials that train to exactly this resource level. */
  trials: number;
  resource: number | null;
}
export interface TaskPreview {
  scheduler: string;
  exact: boolean;
  note: string;
  brackets: PreviewBracket[];
  rows: PreviewRow[];
  trials: number;
  /** Σ trials × resource; null when a full training has no known length. */
  totalCompute: number | null;
  /** The same trials without early stopping. */
  fullCompute: number | null;
}

const NOTES: Record<string, string> = {
  fifo: "no early stopping: every trial trains to completion",
  sha: "synchronous successive halving",
  "asha-stopping": "asynchronous successive halving, stopping type",
  "asha-promotion": "asynchronous successive halving, promotion type (pause and resume from checkpoints)",
  hyperband: "asynchronous Hyperband",
  "adaptive-asha": "Determined's adaptive ASHA",
  pasha: "PASHA: progressive maximum resource",
  moasha: "multi-objective ASHA",
  sockeye: "sockeye-recipes ASHA",
};

export function previewTask(spec: TaskSpec): TaskPreview {
  const segments = spec.segments?.length ?? 1;
  const config = spec.scheduler;
  if (!config) {
    // PanDA's behaviour: no scheduler, every point trains to completion (its length is the payload's).
    const n = spec.maxPoints * segments;
    return {
      scheduler: "fifo",
      exact: true,
      note: NOTES.fifo! + (segments > 1 ? ` (× ${segments} segments)` : ""),
      brackets: [{ bracket: 0, rungs: [], trials: n, maxConcurrentTrials: spec.nParallelEvaluation }],
      rows: [{ trials: n, resource: null }],
      trials: n,
      totalCompute: null,
      fullCompute: null,
    };
  }
  const p = previewPlan(config, { maxTrials: spec.maxPoints, parallel: spec.nParallelEvaluation });
  const rows: PreviewRow[] = p.counts.map((c) => ({
    trials: c.trials * segments,
    resource: Number.isFinite(c.units) ? c.units : null,
  }));
  const trials = rows.reduce((a, r) => a + r.trials, 0);
  const known = rows.every((r) => r.resource !== null);
  const maxUnits = Math.max(...rows.map((r) => r.resource ?? 0));
  return {
    scheduler: config.type,
    exact: true,
    note: (NOTES[config.type] ?? config.type) + (segments > 1 ? ` (× ${segments} segments)` : ""),
    brackets: p.brackets.map((b, i) => ({
      bracket: i,
      rungs: b.rungs,
      trials: b.maxTrials * segments,
      maxConcurrentTrials: b.maxConcurrentTrials,
    })),
    rows,
    trials,
    totalCompute: known ? rows.reduce((a, r) => a + r.trials * (r.resource ?? 0), 0) : null,
    fullCompute: known ? trials * maxUnits : null,
  };
}
