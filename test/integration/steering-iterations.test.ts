// Steering iterations seen by the user, on the real stack through phpo: a user's own steering
// program from the task's sandbox runs to maxPoints (as a process, and in the hardened steering
// container with the sandbox read-only), each run listed by `phpo show` with its output through
// `phpo logs --steering`; a failing program is retried after a back-off, then ends generation with
// its reason in `phpo show`, `phpo list`, the submit's own error and `phpo logs --steering`.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dockerAnswers } from "../../stack/images.ts";
import { dockerObjectExists, testDocker } from "../harness/images.ts";
import { runBin, startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

const STEERING_IMAGE = "gridtune/steering:1";

/** A user's own optimiser: reads its settings from the sandbox, says what it saw, writes %OUT. */
const MY_OPT = `import json, sys
inp, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = json.load(open(inp))["points"]
step = json.load(open("opt_settings.json"))["step"]
print("my_opt: %d seen, asked %d, step %s" % (len(seen), n, step))
print("my_opt: a line on stderr", file=sys.stderr)
if len(sys.argv) > 4:  # the container case: the sandbox must be read-only
    for f in ("my_opt.py", "opt_settings.json"):
        try:
            open(f, "a").write("#")
            print("my_opt: WROTE " + f)
        except OSError as e:
            print("my_opt: cannot write %s (%s)" % (f, e.__class__.__name__))
json.dump([{"x": step * (len(seen) + i + 1)} for i in range(n)], open(out, "w"))
`;

describe(
  "steering iterations through phpo (show, logs --steering, the sandbox)",
  { timeout: 600_000 },
  () => {
    let stack: TestStack;
    let work: string;

    before(async () => {
      stack = await startTestStack({ runtime: "process", agents: 1, slotsPerAgent: 2 });
      work = await mkdtemp(join(tmpdir(), "gt-steer-it-"));
    });
    after(async () => {
      await stack?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /** A submit directory with the task's config.json and the user's files; phpo run there. */
    async function userDir(name: string, over: Record<string, unknown>, files: Record<string, string>) {
      const dir = join(work, name);
      await mkdir(dir);
      const {
        outDS: _outDS,
        searchSpace,
        ...spec
      } = stepsTask({ maxPoints: 4, nPointsPerIteration: 2, ...over });
      await writeFile(join(dir, "search_space.json"), JSON.stringify(searchSpace));
      await writeFile(
        join(dir, "config.json"),
        JSON.stringify({ ...spec, searchSpaceFile: "search_space.json" }),
      );
      for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
      const env = { HOME: dir, GRIDTUNE_HOME: stack.dir };
      return (args: string[]) => runBin("phpo", args, { env, cwd: dir });
    }

    it("runs a user's own steering program from the sandbox to maxPoints, as a process", async () => {
      const phpo = await userDir(
        "own",
        { steeringExec: "python3 my_opt.py %IN %NUM_POINTS %OUT" },
        { "my_opt.py": MY_OPT, "opt_settings.json": JSON.stringify({ step: 0.5 }) },
      );
      const sub = await phpo(["--loadJson", "config.json", "--outDS", "user.test.own", "--wait"]);
      assert.equal(sub.code, 0, sub.stderr + sub.stdout);
      const taskId = /jediTaskID=(\d+)/.exec(sub.stdout)?.[1];
      assert.ok(taskId, sub.stdout);
      assert.match(sub.stdout, /finished: 4\/4 points: 4 done/);

      const show = await phpo(["show", taskId]);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /steering program: 2 iterations, 0 failed/);
      const json = await phpo(["--json", "show", taskId]);
      const d = JSON.parse(json.stdout) as { points: Array<{ values: { x: number } }> };
      assert.deepEqual(
        d.points.map((p) => p.values.x),
        [0.5, 1, 1.5, 2],
      );

      const first = await phpo(["logs", taskId, "--steering", "--iteration", "1"]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /my_opt: 0 seen, asked 2, step 0.5/);
      assert.match(first.stdout, /my_opt: a line on stderr/);
      const last = await phpo(["logs", taskId, "--steering"]);
      assert.match(last.stdout, /my_opt: 2 seen, asked 2/);
      assert.match(last.stderr, /steering iteration 2: points, 2 points added, exit 0/);
      const none = await phpo(["logs", taskId, "--steering", "--iteration", "3"]);
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /has no steering iteration 3 \(it has 2: 1–2\)/);
    });

    it("gives the sandbox read-only to a steering container", async (t) => {
      const present =
        (await dockerAnswers()) &&
        (await dockerObjectExists(() => testDocker().getImage(STEERING_IMAGE).inspect()));
      if (!present)
        return t.skip(`${STEERING_IMAGE} is not built (containers/build-images.sh --only steering)`);
      const phpo = await userDir(
        "own-container",
        { steeringContainer: STEERING_IMAGE, steeringExec: "python3 my_opt.py %IN %NUM_POINTS %OUT check" },
        { "my_opt.py": MY_OPT, "opt_settings.json": JSON.stringify({ step: 1 }) },
      );
      const sub = await phpo(["--loadJson", "config.json", "--outDS", "user.test.ownc", "--wait"]);
      assert.equal(sub.code, 0, sub.stderr + sub.stdout);
      const taskId = /jediTaskID=(\d+)/.exec(sub.stdout)?.[1];
      assert.ok(taskId, sub.stdout);
      assert.match(sub.stdout, /finished: 4\/4 points: 4 done/);
      const log = await phpo(["logs", taskId, "--steering"]);
      assert.match(log.stdout, /my_opt: 2 seen, asked 2, step 1/);
      assert.match(log.stdout, /cannot write my_opt.py/);
      assert.match(log.stdout, /cannot write opt_settings.json/);
      assert.doesNotMatch(log.stdout, /WROTE/);
    });

    it("retries a failing program, then ends generation with the reason in submit, show, list and logs", async () => {
      const phpo = await userDir(
        "failing",
        { steeringExec: "python3 missing_opt.py %IN %NUM_POINTS %OUT" },
        {},
      );
      const sub = await phpo(["--loadJson", "config.json", "--outDS", "user.test.fail", "--wait"]);
      assert.notEqual(sub.code, 0, sub.stdout);
      const taskId = /jediTaskID=(\d+)/.exec(sub.stdout)?.[1];
      assert.ok(taskId, sub.stdout);
      assert.match(
        sub.stderr + sub.stdout,
        /steering program failed, generation ended: iteration 3 failed: the steering process exited with code 2/,
      );
      assert.match(sub.stderr + sub.stdout, new RegExp(`phpo logs ${taskId} --steering --iteration 3`));

      const show = await phpo(["show", taskId]);
      assert.match(show.stdout, /steering program: 3 iterations, 3 failed/);
      assert.match(show.stdout, /failed, retried/);
      assert.match(show.stdout, /FAILED/);
      assert.match(show.stdout, /iteration 3: the steering process exited with code 2 .*missing_opt\.py/s);
      const list = await phpo(["list"]);
      assert.match(
        list.stdout,
        new RegExp(`task ${taskId}: steering program failed, generation ended: iteration 3 failed`),
      );
      // watch of the ended task: its last run's line, then the summary naming the failure; exit 1
      const watch = await phpo(["watch", taskId]);
      assert.equal(watch.code, 1, watch.stderr + watch.stdout);
      assert.match(
        watch.stdout,
        /steering iteration 3: FAILED, 0 points added, exit 2: the steering process exited/,
      );
      assert.match(
        watch.stdout + watch.stderr,
        /steering program failed, generation ended: iteration 3 failed/,
      );
      const log = await phpo(["logs", taskId, "--steering", "--iteration", "2"]);
      assert.equal(log.code, 0, log.stderr);
      assert.match(log.stdout, /can't open file .*missing_opt\.py/);
      assert.match(log.stderr, /failed, retried/);
    });

    it("names a steering image missing on the steering host, with the fix, after the retries", async (t) => {
      if (!(await dockerAnswers())) return t.skip("no Docker daemon answers");
      const phpo = await userDir(
        "no-image",
        {
          steeringContainer: "gridtune/no-such-optimiser:1",
          steeringExec: "python3 my_opt.py %IN %NUM_POINTS %OUT",
        },
        { "my_opt.py": MY_OPT },
      );
      const sub = await phpo(["--loadJson", "config.json", "--outDS", "user.test.noimg", "--wait"]);
      assert.equal(sub.code, 1, sub.stdout);
      const taskId = /jediTaskID=(\d+)/.exec(sub.stdout)?.[1];
      assert.ok(taskId, sub.stdout);
      const show = await phpo(["show", taskId]);
      assert.match(show.stdout, /steering program: 3 iterations, 3 failed/);
      assert.match(
        show.stdout,
        /iteration 3: steeringContainer gridtune\/no-such-optimiser:1 is not on the steering host .*ask its admin to load the image there/,
      );
      assert.doesNotMatch(show.stdout, /build-images\.sh/);
    });
  },
);
