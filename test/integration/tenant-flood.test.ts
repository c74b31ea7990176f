// One tenant must not degrade all (issue 14, item 5), on the real stack: a user floods steering
// with large specs up to and past their limits. The refusals are LIMIT_EXCEEDED errors naming the
// limit (and phpo prints one cleanly, exit code 1); another user's `list` stays fast; once the
// flood's tasks are killed they leave steering's memory, so it does not grow with their number;
// and after a restart the finished tasks are still listed and shown, while start-up read only the
// active tasks' logs.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GridtuneError } from "../../protocol/errors.ts";
import { createLogger } from "../../protocol/log.ts";
import type { TaskSpecInput } from "../../protocol/taskConfig.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { SteeringService } from "../../steering/shell/service.ts";
import { runBin, startTestStack, stepsTask, type StackClient, type TestStack } from "../harness/stack.ts";

const ACTIVE = 4;
const SPEC_BYTES = 400_000;
const ROUNDS = 5;

/** A task whose spec is about `bytes` long: a categorical of many long names (as in the attack). */
function bigTask(bytes: number, over: Partial<TaskSpecInput> = {}): TaskSpecInput {
  const n = Math.ceil(bytes / 34);
  const categories = Array.from({ length: n }, (_, i) => `c${String(i).padStart(8, "0")}-${"x".repeat(20)}`);
  const base = stepsTask({ outDS: "user.demo.flood/", maxPoints: 2, ...over });
  return {
    ...base,
    searchSpace: {
      ...(base.searchSpace as Record<string, unknown>),
      pad: { method: "categorical", dimension: { categories } },
    } as never,
  };
}

async function refused(p: Promise<unknown>): Promise<GridtuneError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof GridtuneError, String(e));
    return e;
  }
  assert.fail("expected a refusal");
}

async function listMs(c: StackClient): Promise<number> {
  const t0 = performance.now();
  await c.call("list", { from: 0 });
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe("a tenant flood on the embedded stack", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let work: string;
  const steering = () => stack.steering as SteeringService;

  before(async () => {
    stack = await startTestStack({
      agents: 0, // nothing runs: the tasks stay active until killed
      env: {
        GRIDTUNE_LIMIT_ACTIVE_TASKS: String(ACTIVE),
        GRIDTUNE_LIMIT_SPEC_BYTES: String(SPEC_BYTES),
        GRIDTUNE_LIMIT_MAX_POINTS: "100",
        GRIDTUNE_LIMIT_SUBMITS_PER_MINUTE: "1000",
      },
    });
    work = await mkdtemp(join(tmpdir(), "gt-flood-"));
  });
  after(async () => {
    await stack?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("refuses past the limits, keeps another user's list fast, forgets finished tasks, and lists them after a restart", async () => {
    const alice = await stack.connect("alice");
    const demo = await stack.connect("demo");
    const aliceTasks = [await alice.submit(stepsTask()), await alice.submit(stepsTask())];
    const baseline: number[] = [];
    for (let i = 0; i < 7; i++) baseline.push(await listMs(alice));

    // the limits, each refused with its name, value and fix; nothing of a refused task is kept
    const tooBig = await refused(demo.submit(bigTask(SPEC_BYTES + 50_000)));
    assert.equal(tooBig.code, "LIMIT_EXCEEDED");
    assert.match(tooBig.message, /the limit spec_bytes is 400000.*admin set-limits demo --spec-bytes 800000/);
    const tooMany = await refused(demo.submit(stepsTask({ maxPoints: 101 })));
    assert.match(tooMany.message, /the task asks for 101 points, the limit max_points is 100/);

    // the flood: rounds of large specs up to the active-task limit, one past it, then all killed
    const during: number[] = [];
    const flood: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const submits = Promise.allSettled(
        Array.from({ length: ACTIVE + 1 }, () => demo.submit(bigTask(SPEC_BYTES - 20_000))),
      );
      while (during.length < (round + 1) * 3) during.push(await listMs(alice));
      const results = await submits;
      const ok = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      const no = results.flatMap((r) => (r.status === "rejected" ? [r.reason as GridtuneError] : []));
      assert.equal(ok.length, ACTIVE, `round ${round}: ${no.map((e) => e.message).join("; ")}`);
      assert.equal(no.length, 1);
      assert.equal(no[0]!.code, "LIMIT_EXCEEDED");
      assert.match(no[0]!.message, /you have 4 active tasks, the limit active_tasks is 4: kill one/);
      flood.push(...ok);
      for (const id of ok) await demo.call("kill", { taskId: id });
      if (round === 0) {
        // phpo prints the refusal as one line and exits 1 (a refusal, not a usage error)
        for (let i = 0; i < ACTIVE; i++) await demo.submit(stepsTask());
        await writeFile(
          join(work, "config.json"),
          JSON.stringify({ ...stepsTask(), searchSpace: undefined, searchSpaceFile: "space.json" }),
        );
        await writeFile(join(work, "space.json"), JSON.stringify(stepsTask().searchSpace));
        const r = await runBin("phpo", ["--loadJson", "config.json"], {
          env: { HOME: work, GRIDTUNE_HOME: stack.dir },
          cwd: work,
        });
        assert.equal(r.code, 1, r.stderr + r.stdout);
        assert.match(
          r.stderr,
          /^phpo: error: steering: you have 4 active tasks, the limit active_tasks is 4: .*`gridtune-steering admin set-limits demo --active-tasks 8`\n$/,
        );
        const mine = (await demo.call("list", { from: 0 })).tasks.filter((t) => t.state === "running");
        for (const t of mine) await demo.call("kill", { taskId: t.taskId });
      }
    }
    // Generous: another user's list stays within a small factor of its baseline (2 shared cores).
    const base = median(baseline);
    assert.ok(
      median(during) <= base * 10 + 250,
      `alice's list: ${median(during).toFixed(1)} ms during the flood, ${base.toFixed(1)} ms before`,
    );

    // Killed tasks leave memory: only alice's two active tasks stay, whatever the flood's size.
    const state = steering().committer!.state;
    const deadline = Date.now() + 20_000;
    while (state.engines.size > aliceTasks.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([...state.engines.keys()].sort(), [...aliceTasks].sort());
    assert.equal(state.finished.size, flood.length + ACTIVE);

    // After a restart: start-up reads alice's two tasks only; the flood's are listed and shown.
    await steering().close();
    stack.steering = new SteeringService(
      compileSteeringConfig({}, stack.steeringEnv),
      createLogger("steering", { level: "warn" }),
    );
    await steering().start();
    assert.deepEqual(steering().restored, { tasksRead: aliceTasks.length, finished: flood.length + ACTIVE });
    const listed = (await demo.call("list", { from: 0 })).tasks;
    assert.equal(listed.length, flood.length + ACTIVE);
    assert.ok(listed.every((t) => t.state === "killed"));
    const shown = await demo.show(flood[0]!);
    assert.equal(shown.state, "killed");
    assert.equal(
      (shown.spec.searchSpace as Record<string, { dimension: { categories: unknown[] } }>).pad?.dimension
        .categories.length,
      Math.ceil((SPEC_BYTES - 20_000) / 34),
    );
    assert.deepEqual(
      (await alice.call("list", { from: 0 })).tasks.map((t) => [t.taskId, t.state]),
      aliceTasks.map((id) => [id, "running"]),
    );
    // a new task gets a fresh id after the restart (ids of retired tasks are not reused)
    const next = await alice.submit(stepsTask());
    assert.ok(Number(next) > Math.max(...flood.map(Number)));
  });
});
