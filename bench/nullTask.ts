// The task both throughput benches run: N points of a one-dimensional space whose evaluation only
// writes output.json, sampled ahead by PanDA's rule so the slots never wait for a batch.
import type { TaskDetail } from "../protocol/api.ts";
import type { TaskSpecInput } from "../protocol/taskConfig.ts";
import type { StackClient } from "../test/harness/stack.ts";

export function nullTask(n: number, parallel: number, evaluationExec: string): TaskSpecInput {
  return {
    outDS: "user.bench.null/",
    evaluationContainer: "none",
    evaluationExec,
    searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } },
    maxPoints: n,
    nParallelEvaluation: parallel,
    // a new batch once fewer than 2×parallel points wait
    nPointsPerIteration: 3 * parallel,
    minUnevaluatedPoints: 2 * parallel,
  };
}

/** Polls the task's summary (not its points: those would make each poll costly) until it ends. */
export async function waitEnded(api: StackClient, taskId: string): Promise<TaskDetail> {
  for (;;) {
    const d = await api.call("show", { taskId, pointsFrom: 0, pointsLimit: 0 });
    if (d.state === "finished" || d.state === "killed") return d;
    await new Promise((r) => setTimeout(r, 200));
  }
}
