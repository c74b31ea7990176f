// phpo monitor in a real browser (Debian's Chromium through playwright-core) against the real
// embedded stack: `phpo monitor` runs as the user would start it, a running ASHA task updates live
// (through a steering restart), the rung ladder matches steering's rungs, a curve is found by
// hovering, a failed point shows its reason and its log, and a task is killed from the page.
// GRIDTUNE_UPDATE_SCREENSHOTS=1 writes the screenshots to docs/img/ (else to a temp dir).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { numpyQuantile } from "../../protocol/schedulerFormulas.ts";
import type { TaskDetail } from "../../protocol/api.ts";
import { userIdentity } from "../../protocol/identity.ts";
import { ROOT } from "../../stack/embedded.ts";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "../harness/browser.ts";
import { FIXTURES, startTestStack, stepsTask, type StackClient, type TestStack } from "../harness/stack.ts";

const CURVE = join(FIXTURES, "payloads", "curve.py");
const SHOTS = process.env.GRIDTUNE_UPDATE_SCREENSHOTS ? join(ROOT, "docs", "img") : null;

/** Starts `phpo monitor --port 0` as the user would; resolves with its URL line. */
function startMonitorProcess(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bin", "phpo"), "monitor", "--port", "0"], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n") && line !== undefined) resolve({ child, url: line });
    });
    child.once("exit", (code) => reject(new Error(`phpo monitor exited with ${code}: ${err}`)));
  });
}

const countsText = (page: Page) => page.locator("#counts").innerText();
/** What the test reads of uPlot in the page (the project's TypeScript has no DOM types). */
interface PagePlot {
  data: (number | null)[][];
  valToPos(v: number, scale: string): number;
  over: { getBoundingClientRect(): { left: number; top: number; width: number; height: number } };
}

/** The curve standing furthest (in pixels) from every other at some x, and where it is on the screen. */
function furthestCurve(): { series: number; x: number; y: number } {
  const u = (globalThis as unknown as { GTM: { last: PagePlot } }).GTM.last;
  const xs = u.data[0] as number[];
  let best = { s: -1, i: -1, gap: -1 };
  for (let s = 1; s < u.data.length; s++) {
    // inside the plot: a click on its very edge can fall outside uPlot's cursor area
    for (let i = 1; i < xs.length - 1; i++) {
      const v = u.data[s]?.[i];
      if (v === null || v === undefined) continue;
      const py = u.valToPos(v, "y");
      let gap = Infinity;
      for (let o = 1; o < u.data.length; o++) {
        const w = u.data[o]?.[i];
        if (o !== s && w !== null && w !== undefined) gap = Math.min(gap, Math.abs(u.valToPos(w, "y") - py));
      }
      if (gap > best.gap) best = { s, i, gap };
    }
  }
  const r = u.over.getBoundingClientRect();
  // a point on the plot's edge is a pixel inside it, where the mouse is over the plot (no inner
  // function: the loader would name it with a helper the page does not have)
  const px = u.valToPos(xs[best.i] as number, "x");
  const py = u.valToPos(u.data[best.s]?.[best.i] as number, "y");
  return {
    series: best.s,
    x: r.left + Math.min(Math.max(px, 1), r.width - 1),
    y: r.top + Math.min(Math.max(py, 1), r.height - 1),
  };
}

/** Waits until the task page shows this state (the page's CSP forbids string predicates). */
const stateIs = (page: Page, state: string, timeout: number) =>
  page.locator(`#summary [data-state="${state}"]`).first().waitFor({ timeout });

describe("phpo monitor in a browser", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let api: StackClient;
  let monitor: ChildProcess | undefined;
  let url: string;
  let browser: BrowserContext;
  let page: Page;
  let profile: string;
  let shots: string;
  const errors: string[] = [];

  before(async () => {
    stack = await startTestStack({ mode: "process", agents: 1, slotsPerAgent: 2 });
    api = await stack.connect("demo");
    const started = await startMonitorProcess({ HOME: stack.dir, GRIDTUNE_HOME: stack.dir });
    monitor = started.child;
    url = started.url;
    profile = await mkdtemp(join(tmpdir(), "gridtune-chromium-"));
    shots = SHOTS ?? (await mkdtemp(join(tmpdir(), "gridtune-shots-")));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("dialog", (d) => void d.accept());
  });
  after(async () => {
    await browser?.close();
    monitor?.kill("SIGTERM");
    await stack?.cleanup();
    if (profile) await rm(profile, { recursive: true, force: true });
    if (!SHOTS && shots) await rm(shots, { recursive: true, force: true });
  });

  it("prints its URL, with a token, on a line of its own, and refuses requests without it", async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}$/);
    const bare = new URL(url);
    bare.search = "";
    assert.equal((await fetch(bare)).status, 401);
    assert.equal((await fetch(new URL("/api/tasks", bare))).status, 401);
  });

  it("follows a running ASHA task live, through a steering restart, and draws its ladder", async () => {
    const taskId = await api.submit({
      outDS: "user.demo.asha/",
      evaluationContainer: "gridtune/python:1",
      evaluationExec: `/usr/bin/python3 ${CURVE}`,
      searchSpace: {
        x: { method: "uniform", dimension: { low: 0, high: 6 } },
        delay: { method: "categorical", dimension: { categories: [0.25] } },
      } as never,
      checkPointToSave: ["checkpoint"],
      maxPoints: 9,
      nParallelEvaluation: 2,
      scheduler: { type: "asha-stopping", max_t: 9, grace_period: 1, reduction_factor: 3 },
      sampler: { type: "random", seed: 5 },
    });
    await page.goto(url);
    await page.locator(`tr[data-task="${taskId}"]`).waitFor();
    await page.goto(`${url}#/task/${taskId}`);
    await page.locator("body[data-rendered=task]").waitFor();
    await page.locator("#live.on").waitFor();

    // live: the counts change with no reload
    const first = await countsText(page);
    for (const deadline = Date.now() + 60_000; (await countsText(page)) === first;) {
      assert.ok(Date.now() < deadline, `the counts stayed ${first}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    // steering restarts mid-task; the page keeps following it to the end
    await api.waitFor(taskId, (d) => d.counts.done >= 2, 90_000);
    const steering = stack.steering;
    assert.ok(!("start" in steering));
    await steering.kill();
    // the stack stops the steering it holds at cleanup: hand it the new one
    stack.steering = await stack.startSteering();
    const done = await api.waitFinished(taskId, 120_000);
    await stateIs(page, "finished", 60_000);
    assert.match(await countsText(page), new RegExp(`^${done.points.length} = `));

    // the ladder: steering's own rungs (levels, counts, values) against what the page draws
    await checkLadder(page, done);
    await page.screenshot({ path: join(shots, "monitor-task.png"), fullPage: false });
    await page.locator("#ladder").screenshot({ path: join(shots, "monitor-ladder.png") });

    // hover: the curve that stands furthest from the others is named in the tip; a click opens it
    // the ladder's screenshot scrolled the page: the curves back into view first
    // a late watch message redraws the chart under the mouse (and may move it): take the curve's
    // place again, then hover and click again
    let target = { series: 0, x: 0, y: 0 };
    let pointId: number | undefined;
    for (let tries = 1; ; tries++) {
      await page.locator("#curves").scrollIntoViewIfNeeded();
      target = await page.evaluate(furthestCurve);
      assert.ok(target.series > 0);
      pointId = done.points[target.series - 1]?.pointId;
      await page.mouse.move(target.x - 3, target.y);
      await page.mouse.move(target.x, target.y);
      await page.locator("#tip").waitFor({ state: "visible" });
      assert.match(await page.locator("#tip").innerText(), new RegExp(`^point ${pointId} \\(`));
      await page.mouse.click(target.x, target.y);
      const opened = await page
        .locator("body[data-rendered=point]")
        .waitFor({ timeout: 5000 })
        .then(() => true)
        .catch(() => false);
      if (opened) break;
      if (tries < 6) continue;
      const under = String(
        await page.evaluate(
          `(() => { const e = document.elementFromPoint(${target.x}, ${target.y}); return e ? e.tagName + "." + e.className : "nothing"; })()`,
        ),
      );
      assert.fail(
        `clicking the hovered curve did not open its point (at ${page.url()}; page errors: ${errors.join("; ") || "none"}; under the mouse: ${under})`,
      );
    }
    assert.ok(page.url().endsWith(`#/task/${taskId}/point/${pointId}`), page.url());
    assert.equal(
      await page.locator("#reports tbody tr").count(),
      done.points[target.series - 1]?.reports.length,
    );
  });

  it("shows a failed point's reason and its log", async () => {
    const taskId = await api.submit(
      stepsTask({ maxPoints: 1, maxEvaluationJobs: 3 }, { mode: "exit3", steps: 1, delay: 0 }),
    );
    const d = await api.waitFinished(taskId, 90_000);
    const failed = d.points[0];
    assert.equal(failed?.state, "failed");
    await page.goto(`${url}#/task/${taskId}/point/${failed.pointId}`);
    await page.locator("body[data-rendered=point]").waitFor();
    const reason = await page.locator("#failure").innerText();
    assert.ok(failed.error && reason.includes(failed.error), `${reason} lacks ${failed.error}`);
    await page.locator('#log[data-loaded="1"]').waitFor();
    assert.match(await page.locator("#log").innerText(), /starting/);
    await page.screenshot({ path: join(shots, "monitor-point.png") });
  });

  it("shows another user only that user's tasks", async () => {
    const mine = (await api.call("list", {})).tasks;
    assert.ok(mine.length > 0);
    await stack.connect("eve"); // creates eve's identity (and reloads the server)
    const eve = await startMonitorProcess({
      HOME: stack.dir,
      NATS_URL: stack.nats.url,
      GRIDTUNE_USER: "eve",
      GRIDTUNE_SEED_FILE: stack.store.seedFile(userIdentity("eve")),
      GRIDTUNE_CA_FILE: stack.nats.caFile,
    });
    try {
      const token = new URL(eve.url).searchParams.get("token") ?? "";
      const get = (path: string) => fetch(new URL(path, eve.url), { headers: { "x-monitor-token": token } });
      const list = (await (await get("/api/tasks")).json()) as { user: string; tasks: unknown[] };
      assert.deepEqual(list, { user: "eve", tasks: [] });
      // demo's task, asked for by eve: steering answers eve's API subject, where it does not exist
      const other = await get(`/api/tasks/${mine[0]?.taskId}`);
      assert.equal(other.status, 404);
    } finally {
      eve.child.kill("SIGTERM");
    }
  });

  it("kills a task through the page, after a confirmation", async () => {
    const taskId = await api.submit(
      stepsTask({ maxPoints: 4, nParallelEvaluation: 1 }, { steps: 200, delay: 0.1 }),
    );
    await api.waitFor(taskId, (d) => d.counts.running > 0, 60_000);
    await page.goto(`${url}#/task/${taskId}`);
    await page.locator("body[data-rendered=task]").waitFor();
    await page.locator('[data-action="kill"]').click();
    await stateIs(page, "killed", 30_000);
    assert.equal((await api.show(taskId)).state, "killed");
    assert.deepEqual(errors, []);
    for (const f of ["monitor-task.png", "monitor-ladder.png", "monitor-point.png"]) {
      const s = await stat(join(shots, f));
      assert.ok(s.size < 300 * 1024, `${f} is ${s.size} bytes`);
    }
  });
});

/** Every rung of steering's `show` is on the page with its count, fates that add up, and its cut-off. */
async function checkLadder(page: Page, d: TaskDetail): Promise<void> {
  const rungs = d.rungs ?? [];
  assert.ok(rungs.length >= 2, JSON.stringify(rungs));
  for (const [i, r] of rungs.entries()) {
    const el = page.locator(`#ladder .rung[data-level="${r.level}"]`);
    const count = async (k: string) =>
      Number((await el.locator(`[data-count=${k}]`).innerText()).split(" ")[0]);
    const reached = await count("reached");
    assert.equal(reached, r.count, `rung ${r.level}: the page's trials against steering's count`);
    // steering names the rung's trials; those it recorded at the next rung went on, and at the
    // top rung those that trained to max_t
    assert.equal(r.trials?.length, r.values.length, `rung ${r.level} names its trials`);
    const above = rungs[i + 1]?.trials;
    const promoted = (r.trials ?? []).filter((name) =>
      above
        ? above.includes(name)
        : d.points.some((p) => p.trial === name && p.reports.some((x) => x.resource >= 9)),
    ).length;
    assert.equal(await count("promoted"), promoted, `rung ${r.level}: went on`);
    assert.equal(
      (await count("promoted")) +
        (await count("stopped")) +
        (await count("waiting")) +
        (await count("running")),
      reached,
    );
    // the syne-tune rule: the quantile level/next level of the rung's values, best first
    const next = rungs[i + 1]?.level ?? 9;
    const cutoff =
      r.values.length < 2
        ? null
        : numpyQuantile(r.values.length, (k) => r.values[k] as number, r.level / next);
    const shown = (await el.locator("[data-count=cutoff]").innerText()).replace("cut-off ", "");
    if (cutoff === null) assert.equal(shown, "-");
    else
      assert.ok(Math.abs(Number(shown) - cutoff) <= 1e-4 * Math.abs(cutoff), `cut-off ${shown} vs ${cutoff}`);
  }
}
