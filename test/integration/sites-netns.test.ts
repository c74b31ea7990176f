// Sites on their own networks (issue "Beyond one machine", item 3): two sites, east and west, each
// an agent in its own network namespace that reaches the hub's NATS and S3 over a veth link
// (test/harness/netns.ts). East's link is cut for longer than the lease while it runs a job: the
// attempt is lost and re-run at west; east's payload keeps running and finishes during the cut.
// When the link is back, east's late result is fenced (ignored, the point counted once, as
// `phpo show --json` reports it), and east is served work again. Process runtime: the payload
// runs as a process in the namespace, so it shares the site's network fate; Docker's own networking
// in a namespace would add nothing to what is tested here (the agent-to-hub link).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../protocol/log.ts";
import { TaskDetail } from "../../protocol/api.ts";
import { addSite } from "../../steering/security/admin.ts";
import type { SteeringService } from "../../steering/shell/service.ts";
import {
  createNetnsLab,
  netnsSupport,
  startSiteAgent,
  type NetnsLab,
  type SiteAgent,
} from "../harness/netns.ts";
import {
  FIXTURES,
  plainUserEnv,
  runBin,
  startTestStack,
  stepsTask,
  TEST_USERS,
  type TestStack,
} from "../harness/stack.ts";

const support = await netnsSupport();
const QUIET_PAYLOAD = join(FIXTURES, "payloads", "quiet.py");

async function eventually(
  what: () => string,
  check: () => boolean | Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timeout: ${what()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe(
  "sites on their own networks",
  { timeout: 300_000, skip: support.ok ? false : `skipped: ${support.reason}` },
  () => {
    let lab: NetnsLab | undefined;
    let stack: TestStack | undefined;
    let work: string;
    const lines: string[] = [];
    const agents: SiteAgent[] = [];
    before(async () => {
      work = await mkdtemp(join(tmpdir(), "gridtune-netns-"));
      lab = await createNetnsLab(["east", "west"]);
      // No agent of the stack's own site: every agent runs in a namespace.
      stack = await startTestStack({
        agents: 0,
        listenHost: lab.hub,
        leaseMs: 3000,
        heartbeatMs: 500,
        logger: createLogger("test-stack", { level: "warn", sink: (x) => lines.push(x) }),
      });
    });
    after(async () => {
      // each step even if an earlier one failed: the namespaces and links must always go
      await Promise.allSettled(agents.map((a) => a.stop(5000)));
      await stack?.cleanup().catch(() => undefined);
      await lab?.teardown();
      await rm(work, { recursive: true, force: true });
    });

    it("a cut site's attempt is re-run elsewhere, its late result fenced, and it gets work again", async () => {
      const s = stack!;
      const l = lab!;
      const api = await s.connect("demo");
      const steering = s.steering as SteeringService;
      // both sites exist (and accept the test users) before the task names them
      await addSite(s.dir, "west", ["a1"], { users: TEST_USERS, all: false, runtimes: ["process"] });
      agents.push(await startSiteAgent(s, l, "east", "a1", { users: TEST_USERS }));
      // 6 s per evaluation: east's payload outlives the 3 s lease and ends while east is cut.
      const taskId = await api.submit(
        stepsTask(
          {
            evaluationExec: `/usr/bin/python3 ${QUIET_PAYLOAD}`,
            maxPoints: 2,
            nParallelEvaluation: 1,
            nPointsPerIteration: 1,
            site: ["east", "west"],
          },
          { delay: 6 },
        ),
      );
      const job = `t${taskId}-p0-j1`;
      const onEast = await api.waitFor(taskId, (d) => d.points[0]?.state === "running", 60_000);
      assert.equal(onEast.points[0]!.site, "east");
      // East is cut at once (its payload has 6 s to go); west joins only now, so the first attempt
      // went to east, the only site with a slot, and however long west takes to start counts
      // into the cut, not into east's run.
      await l.cut("east");
      const west = await startSiteAgent(s, l, "west", "a1", { users: TEST_USERS });
      agents.push(west);
      const ignoredBefore = steering.ingest!.ignored;
      await api.waitFor(
        taskId,
        (d) => d.points[0]?.attempts === 2 && d.points[0]?.state === "running",
        60_000,
      );
      // Paused, the task dispatches no second point: it stays open (in memory, its job known)
      // until east's late result has been judged, and east is the only site to serve it after.
      await api.call("pause", { taskId });
      const rerun = await api.waitFor(taskId, (d) => d.points[0]?.state === "done", 60_000);
      const p = rerun.points[0]!;
      assert.equal(p.site, "west", "the second attempt ran at west");
      const first = p.history?.find((h) => h.attempt === 1);
      assert.equal(first?.status, "lost", JSON.stringify(p.history));
      assert.equal(first?.site, "east");
      await west.stop();
      // West's attempt started after the lease lapsed and took as long as east's, which started
      // before the cut: east's payload has ended, and its result waits for the link.
      assert.equal(steering.ingest!.ignored, ignoredBefore, "nothing from east got through the cut");

      await l.restore("east");
      const fenced = new RegExp(`report ignored: .*site=east agent=a1 jobId=${job} attempt=1 type=result`);
      const said = () =>
        `east's late result reaches steering and is fenced; steering said:\n${lines.join("\n")}`;
      await eventually(said, () => lines.some((x) => fenced.test(x)));
      assert.ok(steering.ingest!.ignored > ignoredBefore);
      const paused = await api.show(taskId);
      assert.equal(paused.state, "paused", "the task was open when the late result came");
      assert.equal(paused.points[0]!.attempts, 2);
      assert.equal(paused.points[0]!.history?.filter((h) => h.status === "ok").length, 1);

      // East is back and the only site left: the task's second point runs there.
      await api.call("resume", { taskId });
      await api.waitFinished(taskId, 90_000);

      // Counted once, as a user sees it.
      const env = await plainUserEnv(s, work, "demo");
      const shown = await runBin("phpo", ["show", taskId, "--json"], { env });
      assert.equal(shown.code, 0, shown.stderr);
      const d = TaskDetail.parse(JSON.parse(shown.stdout));
      assert.equal(d.state, "finished");
      assert.equal(d.counts.done, 2, JSON.stringify(d.counts));
      assert.equal(d.points.length, 2);
      const [p0, p1] = d.points;
      assert.equal(p0!.site, "west");
      assert.equal(p0!.attempts, 2);
      assert.deepEqual(
        p0!.history?.map((h) => `${h.attempt}:${h.site}:${h.status}`),
        ["1:east:lost", "2:west:ok"],
      );
      assert.equal(p0!.loss, ((p0!.values.x as number) - 3) ** 2);
      assert.equal(p1!.site, "east", "east got work again");
      assert.equal(p1!.attempts, 1);
      assert.equal(p1!.state, "done");
    });
  },
);
