// The PanDA steering container on the real stack: a task with steeringExec gets its points from
// the user's steering program (the hpogrid shim on optuna, examples/steering/hpogrid.py), run as a
// process and in the gridtune/steering:1 image; the iteration arithmetic (nPointsPerIteration −
// minUnevaluatedPoints per call, never past maxPoints); [] and a failing program end generation;
// and the PanDA documentation's example config submitted with `phpo --loadJson` runs to the end.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../protocol/log.ts";
import type { TaskDetail } from "../../protocol/api.ts";
import { dockerAnswers } from "../../stack/images.ts";
import { dockerObjectExists, testDocker } from "../harness/images.ts";
import {
  FIXTURES,
  runBin,
  startTestStack,
  stepsTask,
  type StackClient,
  type TestStack,
} from "../harness/stack.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const SHIM = join(ROOT, "examples", "steering", "hpogrid.py");
const PANDA = join(FIXTURES, "panda");
const STEERING_IMAGE = "gridtune/steering:1";

/** Builds gridtune/steering:1 when it is missing (idempotent script, as test/harness/images.ts does). */
async function ensureSteeringImage(): Promise<void> {
  const present = await dockerObjectExists(() => testDocker().getImage(STEERING_IMAGE).inspect());
  if (present) return;
  await new Promise<void>((resolve, reject) =>
    execFile(
      "bash",
      [join(ROOT, "containers", "build-images.sh"), "--only", "steering"],
      { timeout: 10 * 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`build-images.sh --only steering failed: ${err.message}\n${stdout}\n${stderr}`))
          : resolve(),
    ),
  );
}

const phpo = (args: string[], env: Record<string, string>, cwd: string) => runBin("phpo", args, { env, cwd });

const lines: string[] = [];
const logger = createLogger("test", { level: "info", sink: (l) => lines.push(l) });

/** The dispatcher's log lines about one task's steering iterations. */
function steeringLines(taskId: string, what: string): string[] {
  return lines.filter((l) => l.includes(what) && new RegExp(`taskId=${taskId}( |$)`).test(l));
}

function assertAllDone(d: TaskDetail, points: number): void {
  assert.equal(d.state, "finished");
  assert.equal(d.counts.points, points, JSON.stringify(d.counts));
  assert.equal(d.counts.done, points, JSON.stringify(d.points.map((p) => p.error)));
}

describe("steering container (PanDA steeringExec)", { timeout: 600_000 }, () => {
  let stack: TestStack;
  let api: StackClient;
  let work: string;

  before(async () => {
    assert.ok(await dockerAnswers(), "no Docker daemon answers: run `npm run setup` (as root) first");
    await ensureSteeringImage();
    stack = await startTestStack({ runtime: "process", agents: 1, slotsPerAgent: 2, logger });
    api = await stack.connect("demo");
    work = await mkdtemp(join(tmpdir(), "gt-steering-"));
  });
  after(async () => {
    await stack?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("runs the steering program as a process: maxPoints reached, called once per iteration", async () => {
    // Every call records its %NUM_POINTS, %MAX_POINTS and the %IN it was given, then runs the shim.
    const cases = [
      { maxPoints: 6, nPointsPerIteration: 3, minUnevaluatedPoints: 1, asks: [2, 2, 2] },
      { maxPoints: 5, nPointsPerIteration: 2, minUnevaluatedPoints: 0, asks: [2, 2, 1] },
    ];
    for (const [k, c] of cases.entries()) {
      const rec = join(work, `calls-${k}`);
      const steeringExec =
        `/bin/sh -c "echo %NUM_POINTS %MAX_POINTS >> ${rec}.txt && cat %IN >> ${rec}.jsonl && echo >> ${rec}.jsonl && ` +
        `exec /usr/bin/python3 ${SHIM} generate --n_point %NUM_POINTS --max_point %MAX_POINTS --infile %IN --outfile %OUT -l=optuna"`;
      const taskId = await api.submit(
        stepsTask({
          maxPoints: c.maxPoints,
          nPointsPerIteration: c.nPointsPerIteration,
          minUnevaluatedPoints: c.minUnevaluatedPoints,
          steeringExec,
        }),
      );
      const d = await api.waitFinished(taskId, 180_000);
      assertAllDone(d, c.maxPoints);
      const calls = (await readFile(`${rec}.txt`, "utf8")).trim().split("\n");
      assert.deepEqual(
        calls,
        c.asks.map((n) => `${n} ${c.maxPoints}`),
      );
      const inputs = (await readFile(`${rec}.jsonl`, "utf8"))
        .trim()
        .split("\n")
        .map(
          (l) =>
            JSON.parse(l) as { points: Array<[Record<string, unknown>, number | null]>; opt_space: unknown },
        );
      // %IN holds every point generated so far, in order, with its loss once evaluated
      let before = 0;
      for (const [i, input] of inputs.entries()) {
        assert.equal(input.points.length, before, `call ${i}`);
        assert.ok(input.opt_space && typeof input.opt_space === "object");
        before += c.asks[i] ?? 0;
      }
      const told = inputs.at(-1)!.points.filter(([, loss]) => loss !== null).length;
      assert.ok(told >= 1, "the last iteration saw evaluated points");
      // the points are the steering program's, in the space
      for (const p of d.points)
        assert.ok(typeof p.values.x === "number" && p.values.x >= 0 && p.values.x <= 6);
      assert.equal(steeringLines(taskId, "steering iteration committed").length, c.asks.length);
    }
  });

  it("runs the steering program in the hardened gridtune/steering:1 container", async () => {
    const taskId = await api.submit(
      stepsTask({
        maxPoints: 4,
        nPointsPerIteration: 2,
        minUnevaluatedPoints: 0,
        steeringContainer: STEERING_IMAGE,
        steeringExec:
          "hpogrid generate --n_point=%NUM_POINTS --max_point=%MAX_POINTS --infile=%IN --outfile=%OUT -l=optuna",
      }),
    );
    const d = await api.waitFinished(taskId, 180_000);
    assertAllDone(d, 4);
    assert.equal(steeringLines(taskId, "steering iteration committed").length, 2);
  });

  it("ends generation early when the steering program writes []", async () => {
    const steeringExec =
      `/usr/bin/python3 -c "import json,sys; h=json.load(open(sys.argv[1]))['points']; ` +
      `json.dump([] if len(h) >= 3 else [{'x': 1.0 + len(h) + i} for i in range(int(sys.argv[2]))], open(sys.argv[3], 'w'))" ` +
      `%IN %NUM_POINTS %OUT`;
    const taskId = await api.submit(stepsTask({ maxPoints: 10, nPointsPerIteration: 3, steeringExec }));
    const d = await api.waitFinished(taskId, 120_000);
    assertAllDone(d, 3);
    assert.deepEqual(
      d.points.map((p) => p.values.x),
      [1, 2, 3],
    );
    assert.equal(steeringLines(taskId, "steering returned []").length, 1);
  });

  it("ends generation when the steering program fails, with the reason logged", async () => {
    const steeringExec =
      `/usr/bin/python3 -c "import json,sys; h=json.load(open(sys.argv[1]))['points']; ` +
      `sys.exit('optimiser exploded') if h else json.dump([{'x': 2.0}, {'x': 4.0}], open(sys.argv[2], 'w'))" %IN %OUT`;
    const taskId = await api.submit(stepsTask({ maxPoints: 10, nPointsPerIteration: 2, steeringExec }));
    const d = await api.waitFinished(taskId, 120_000);
    assertAllDone(d, 2);
    // retried twice after a back-off, then the third failure ends generation
    assert.equal(
      steeringLines(taskId, "steering iteration failed: it runs again").length,
      2,
      lines.join("\n"),
    );
    const failed = steeringLines(taskId, "steering iteration failed: generation ends");
    assert.equal(failed.length, 1, lines.join("\n"));
    assert.match(failed[0]!, /exited with code 1/);
    assert.match(failed[0]!, /optimiser exploded/);
    assert.match(d.steering?.failure ?? "", /^iteration 4 failed: the steering process exited with code 1/);

    // PanDA's docker-argument form (no steeringContainer) is refused at submission with the rewrite
    await assert.rejects(
      api.submit(
        stepsTask({
          steeringExec: "run -v $(pwd):/data IMAGE python /opt/opt.py --input=/data/%IN --output=/data/%OUT",
        }),
      ),
      (err: Error) => {
        assert.match(err.message, /docker-argument form/);
        assert.match(
          err.message,
          /"steeringContainer": "IMAGE", "steeringExec": "python \/opt\/opt.py --input=%IN --output=%OUT"/,
        );
        return true;
      },
    );
  });

  it("runs the PanDA documentation's example config submitted with phpo --loadJson", async () => {
    const dir = join(work, "panda");
    await cp(PANDA, dir, { recursive: true });
    const env = { HOME: dir, GRIDTUNE_HOME: stack.dir };
    // the example's training data, put by the user without S3 keys (README's "By hand")
    const put = await phpo(["dataset", "put", "data", "--name", "user.demo.my_training_dataset"], env, dir);
    assert.equal(put.code, 0, put.stderr + put.stdout);
    const sub = await phpo(
      [
        "--loadJson",
        "config.json",
        "--trainingDS",
        "user.demo.my_training_dataset",
        "--outDS",
        "user.test.panda",
        "--wait",
      ],
      env,
      dir,
    );
    assert.equal(sub.code, 0, sub.stderr + sub.stdout);
    const taskId = /jediTaskID=(\d+)/.exec(sub.stdout)?.[1];
    assert.ok(taskId, sub.stdout);
    // PanDA defaults: maxPoints 10, nPointsPerIteration 2, minUnevaluatedPoints 0 → 5 iterations
    assert.match(sub.stdout, /finished: 10\/10 points: 10 done, 0 failed/);
    assert.equal(steeringLines(taskId, "steering iteration committed").length, 5);
    const d = await api.show(taskId);
    for (const p of d.points) {
      assert.ok([true, false].includes(p.values.auto_lr as boolean));
      assert.ok([1, 2].includes(p.values.cnn_block_depths_1 as number));
      assert.equal(p.metricsKeys.length, 1);
    }
  });
});
