// Sites choose their tenants (issue 14, item 3), on a real stack whose site runs the process
// runtime (payloads unconfined, as the agent's user, on this host) and trusts only "demo": an
// untrusted user naming that site, or no site, is refused at submission and nothing runs; an
// unknown site is refused with the user's sites; a site without an agent is a warning; if
// steering's policy is changed to let the user through, the agent itself still refuses the job;
// an agent whose runtime its site does not offer cannot register; and the embedded stack notices
// an agent killed with SIGKILL, says so and starts it again.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GridtuneError } from "../../protocol/errors.ts";
import { FAILED_POINT_LOSS } from "../../protocol/files.ts";
import { createLogger } from "../../protocol/log.ts";
import { addSite, setSite } from "../../steering/security/admin.ts";
import { startTestStack, stepsTask, type TestStack } from "../harness/stack.ts";

const refused = (code: string, message: RegExp) => (e: unknown) => {
  assert.ok(e instanceof GridtuneError, `expected a GridtuneError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, message);
  return true;
};

async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A one-point task whose payload, if it ever runs on this host, leaves `marker` behind (and fails). */
const markerTask = (marker: string, site?: string[]) => ({
  outDS: "user.test.marker/",
  evaluationContainer: "gridtune/busybox:1",
  evaluationExec: `/bin/sh -c "touch ${marker}"`,
  searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } } as never,
  maxPoints: 1,
  maxEvaluationJobs: 1,
  nParallelEvaluation: 1,
  ...(site ? { site } : {}),
});

describe("sites choose their tenants", { timeout: 240_000 }, () => {
  let stack: TestStack;
  let scratch: string;
  const lines: string[] = [];
  const logger = createLogger("stack", { level: "warn", sink: (l) => lines.push(l) });
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "gridtune-sites-"));
    stack = await startTestStack({
      agents: 1,
      slotsPerAgent: 1,
      runtime: "process",
      trustedUsers: ["demo"],
      logger,
    });
  });
  after(async () => {
    await stack?.cleanup();
    await rm(scratch, { recursive: true, force: true });
  });

  it("an untrusted user is refused at submission, naming site; nothing runs", async () => {
    const mallory = await stack.connect("mallory");
    const marker = join(scratch, "mallory-ran");
    await assert.rejects(
      mallory.submit(markerTask(marker, ["local"])),
      refused(
        "FORBIDDEN",
        /^site: site "local" does not accept work from user mallory; no site accepts your work/,
      ),
    );
    await assert.rejects(mallory.submit(markerTask(marker)), refused("FORBIDDEN", /^site: no site accepts/));
    assert.deepEqual((await mallory.call("list", {})).tasks, [], "no task was created");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(existsSync(marker), false, "the payload never ran on the host");
  });

  it("an unknown site is refused with the sites the user may use", async () => {
    const demo = await stack.connect("demo");
    await assert.rejects(
      demo.submit(markerTask(join(scratch, "unknown"), ["nowhere"])),
      refused("INVALID_ARGUMENT", /^site: there is no site "nowhere"; sites you may use: local\. Fix --site/),
    );
  });

  it("a site with no registered agent: accepted with a warning naming site", async () => {
    await addSite(stack.dir, "empty", [], { all: true });
    const demo = await stack.connect("demo");
    const r = await demo.call("submit", { spec: markerTask(join(scratch, "empty"), ["empty"]) as never });
    assert.match(r.warnings?.[0] ?? "", /^site: no agent of site empty is registered now; the task waits/);
    await demo.call("kill", { taskId: r.taskId });
    const ok = await demo.call("submit", {
      spec: stepsTask({ maxPoints: 1 }, { steps: 1, delay: 0 }) as never,
    });
    assert.equal(ok.warnings, undefined, "no warning where an agent serves the site");
    assert.equal((await demo.waitFinished(ok.taskId, 60_000)).counts.done, 1);
  });

  it("defence in depth: with steering's policy opened to mallory, the agent still refuses her job", async () => {
    // e.g. an operator's mistake: steering now accepts mallory for the process site
    await setSite(stack.dir, "local", { users: ["demo", "mallory"] });
    const mallory = await stack.connect("mallory");
    const marker = join(scratch, "mallory-ran-at-agent");
    const taskId = await mallory.submit(markerTask(marker, ["local"]));
    const d = await mallory.waitFinished(taskId, 60_000);
    const p = d.points[0]!;
    // its only attempt failed (maxEvaluationJobs 1: no budget left for a retry, so the point ends
    // budget-spent with PanDA's very large loss; a refusing agent is the site's failure)
    assert.equal(p.state, "budget-spent", JSON.stringify(d.points));
    assert.equal(p.loss, FAILED_POINT_LOSS);
    assert.equal(p.failureClass, "infrastructure");
    assert.match(p.error ?? "", /process runtime does not run jobs of user mallory: it trusts only demo/);
    assert.equal(existsSync(marker), false, "the payload never ran on the host");
    await setSite(stack.dir, "local", { users: ["demo"] });
  });

  it("an agent cannot register with a runtime its site does not offer", async () => {
    await setSite(stack.dir, "local", { runtimes: ["docker"] });
    try {
      await assert.rejects(stack.startAgent("a9"), /exited with code/);
      const log = await readFile(join(stack.dir, "logs", "agent-a9.log"), "utf8");
      assert.match(log, /uses the process runtime, which site local does not offer \(runtimes: docker\)/);
    } finally {
      await setSite(stack.dir, "local", { runtimes: ["process"] });
    }
  });

  it("the embedded stack restarts an agent killed with SIGKILL and says so", async () => {
    const before = stack.agents[0]!;
    const pid = before.child.pid!;
    process.kill(pid, "SIGKILL");
    await eventually("the stack restarts the agent", () =>
      lines.some((l) => /agent a1 restarted \(pid \d+\)/.test(l)),
    );
    assert.ok(
      lines.some((l) => /agent a1 killed by SIGKILL; restarting it \(1 of 5 within 60 s\)/.test(l)),
      lines.join("\n"),
    );
    const now = stack.agents[0]!;
    assert.notEqual(now.child.pid, pid, "a new agent process took its place");
    assert.equal(now.child.exitCode, null);
    const demo = await stack.connect("demo");
    const taskId = await demo.submit(stepsTask({ maxPoints: 1 }, { steps: 1, delay: 0 }));
    assert.equal((await demo.waitFinished(taskId, 60_000)).counts.done, 1, "the new agent serves the site");
  });
});
