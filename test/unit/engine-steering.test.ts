// The engine side of the steering container (tasks with steeringExec): when an iteration is due,
// how many points it asks for, the history it is given, and how its result becomes the logged
// points-added event (stale results dropped, [] or a failure ending generation). Pure: no process.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import { TaskSpec } from "../../protocol/taskConfig.ts";
import { compileTask } from "../../steering/core/task/compiledTask.ts";
import { steeringArgv } from "../../steering/program/iteration.ts";
import { Driver, spec, specInput, throwsCode } from "./fixtures/engineKit.ts";

/** A task as a steering from before the submission check logged it (the spec parsed, not cross-checked). */
const logged = (over: { steeringExec: string; steeringContainer?: string }) =>
  compileTask(TaskSpec.parse(specInput(over)));

const EXEC = "hpogrid generate --n_point=%NUM_POINTS --max_point=%MAX_POINTS --infile=%IN --outfile=%OUT";
const pt = (x: number) => ({ x, n: 1 });

void describe("TaskEngine: external steering (steeringExec)", () => {
  void it("asks nPointsPerIteration − minUnevaluatedPoints when unevaluated points fall below the minimum, never past maxPoints", () => {
    const d = new Driver(
      spec({
        steeringExec: EXEC,
        maxPoints: 5,
        nPointsPerIteration: 3,
        minUnevaluatedPoints: 1,
        nParallelEvaluation: 5,
      }),
    );
    assert.equal(d.engine.proposeSampling(d.tick()), null, "built-in sampling is off for external segments");
    const [due] = d.engine.steeringDue();
    assert.ok(due);
    assert.deepEqual([due.segment, due.n, due.generated, due.history.length], [0, 2, 0, 0]);
    const [ev, extra] = d.engine.steeringResult(0, 0, [pt(0.1), pt(0.2)], false, d.tick());
    assert.ok(ev);
    assert.equal(extra, undefined, "a small result is one event");
    assert.equal(ev.sampler, null);
    assert.deepEqual(
      ev.points.map((p) => p.pointId),
      [0, 1],
    );
    d.apply(ev);
    assert.deepEqual(d.engine.steeringDue(), [], "2 unevaluated, not below minUnevaluatedPoints 1");
    // the same (now stale) result committed twice adds nothing
    assert.deepEqual(d.engine.steeringResult(0, 0, [pt(0.1), pt(0.2)], false, d.tick()), []);
    const a = d.dispatch();
    assert.ok(a);
    d.claim(a);
    d.finish(a, "ok", 0.5);
    assert.deepEqual(d.engine.steeringDue(), [], "1 unevaluated is not below minUnevaluatedPoints 1");
    const b = d.dispatch();
    assert.ok(b);
    d.claim(b);
    d.finish(b, "ok", 0.25);
    const [next] = d.engine.steeringDue();
    assert.ok(next);
    assert.equal(next.n, 2);
    assert.deepEqual(next.history, [
      [pt(0.1), 0.5],
      [pt(0.2), 0.25],
    ]);
    // the dispatcher trims a result to n; the engine never goes past maxPoints whatever it gets
    d.apply(d.engine.steeringResult(0, 2, [pt(0.3), pt(0.4), pt(0.5), pt(0.6)], false, d.tick())[0]!);
    assert.deepEqual(
      [...d.engine.points.values()].map((p) => p.values.x),
      [0.1, 0.2, 0.3, 0.4, 0.5],
    );
    d.runToCompletion();
    assert.deepEqual(d.engine.steeringDue(), []);
    assert.equal(d.engine.isComplete(), true);
  });

  void it("the history gives a point not evaluated yet a null loss; an iteration is due below the minimum, not at it", () => {
    const d = new Driver(
      spec({
        steeringExec: EXEC,
        maxPoints: 6,
        nPointsPerIteration: 4,
        minUnevaluatedPoints: 2,
        nParallelEvaluation: 4,
      }),
    );
    d.apply(d.engine.steeringResult(0, 0, [pt(0.1), pt(0.2)], false, d.tick())[0]!);
    assert.deepEqual(d.engine.steeringDue(), [], "2 unevaluated = minUnevaluatedPoints: not due");
    const a = d.dispatch();
    assert.ok(a);
    d.claim(a);
    d.finish(a, "ok", 0.5);
    const [due] = d.engine.steeringDue();
    assert.ok(due, "1 unevaluated < 2: due");
    assert.equal(due.n, 2);
    assert.deepEqual(due.history, [
      [pt(0.1), 0.5],
      [pt(0.2), null],
    ]);
  });

  void it("no iteration once the segment's maxEvaluationJobs are used up: its points could never run", () => {
    const d = new Driver(
      spec({
        steeringExec: EXEC,
        maxPoints: 10,
        nPointsPerIteration: 2,
        maxEvaluationJobs: 2,
        nParallelEvaluation: 2,
      }),
    );
    d.apply(d.engine.steeringResult(0, 0, [pt(0.1), pt(0.2)], false, d.tick())[0]!);
    for (const r of [d.dispatch(), d.dispatch()]) {
      d.claim(r!);
      d.finish(r!, "ok", 1);
    }
    assert.deepEqual(d.engine.steeringDue(), [], "2 of 2 evaluation jobs used");
    assert.equal(d.engine.isComplete(), true);
  });

  void it("[] or a failed run (exhausted) ends generation; the task completes with the points it has", () => {
    const d = new Driver(spec({ steeringExec: EXEC, maxPoints: 10, nPointsPerIteration: 2 }));
    d.apply(d.engine.steeringResult(0, 0, [pt(0.1)], false, d.tick())[0]!);
    d.runToCompletion(() => FAILED_POINT_LOSS);
    const [due] = d.engine.steeringDue();
    assert.deepEqual(due?.history, [[pt(0.1), FAILED_POINT_LOSS]], "a failed point's large loss is finite");
    const [end] = d.engine.steeringResult(0, 1, [], true, d.tick());
    assert.ok(end);
    assert.deepEqual([end.points.length, end.exhausted], [0, true]);
    d.apply(end);
    assert.deepEqual(d.engine.steeringDue(), []);
    assert.equal(d.engine.isComplete(), true);
    assert.deepEqual(d.engine.steeringResult(0, 1, [pt(0.2)], false, d.tick()), [], "nothing after the end");
  });

  void it("nothing is due while the task is paused, and replay restores the generated count from the log", () => {
    const s = spec({ steeringExec: EXEC, maxPoints: 4, nPointsPerIteration: 2 });
    const d = new Driver(s);
    d.apply(d.engine.steeringResult(0, 0, [pt(0.1), pt(0.2)], false, d.tick())[0]!);
    d.runToCompletion();
    d.state("paused");
    assert.deepEqual(d.engine.steeringDue(), []);
    d.state("running");
    const replayed = new Driver(s);
    for (const ev of d.log.slice(1)) replayed.apply(ev);
    assert.deepEqual(replayed.engine.steeringDue(), d.engine.steeringDue());
    assert.equal(replayed.engine.steeringDue()[0]?.generated, 2);
  });

  void it("a steering program and a scheduler together are refused at the boundary", () => {
    throwsCode(
      () =>
        spec({
          steeringExec: EXEC,
          scheduler: { type: "asha-stopping", max_t: 9, grace_period: 1, reduction_factor: 3 } as never,
        }),
      "INVALID_CONFIG",
      "steeringExec and scheduler cannot be combined",
    );
  });

  void it("steeringArgv refuses PanDA's docker-argument form without steeringContainer, naming the fix", () => {
    throwsCode(
      () =>
        steeringArgv(
          logged({ steeringExec: "run -v $(pwd):/data IMAGE python /opt/opt.py --input=/data/%IN" }),
        ),
      "INVALID_CONFIG",
      "docker-argument form",
      "steeringContainer",
    );
    assert.deepEqual(steeringArgv(logged({ steeringExec: "run --fast", steeringContainer: "img" })), [
      "run",
      "--fast",
    ]);
    assert.deepEqual(steeringArgv(logged({ steeringExec: `/bin/bash -c "a %IN  b"` })), [
      "/bin/bash",
      "-c",
      "a %IN  b",
    ]);
  });
});
