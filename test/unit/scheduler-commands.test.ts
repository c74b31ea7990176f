// The scheduler commands: config validation, preview (TV-DET-4/10) and replay, the latter end to
// end as a subprocess through steering/cli/schedulerMain.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { parseSchedulerConfig } from "../../protocol/scheduler.ts";
import { parsePreviewInput, previewOutput, previewPlan } from "../../steering/cli/preview.ts";
import { runReplay } from "../../steering/cli/replay.ts";

const root = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "gridtune-sched-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, data: unknown) => {
  const p = join(dir, name);
  writeFileSync(p, typeof data === "string" ? data : JSON.stringify(data));
  return p;
};
const cli = (args: string[], input = "") =>
  spawnSync(process.execPath, ["--import", "tsx", join(root, "steering/cli/schedulerMain.ts"), ...args], {
    input,
    encoding: "utf8",
    cwd: root,
  });

describe("SchedulerConfig validation", () => {
  const message = (c: unknown) => {
    try {
      parseSchedulerConfig(c);
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.code, "INVALID_CONFIG");
      return e.message;
    }
    assert.fail("expected a ValidationError");
  };
  it("names the field", () => {
    assert.match(message({ type: "asha" }), /scheduler\.type: must be one of fifo, sha, asha-stopping/);
    assert.match(message({ type: "asha-stopping" }), /scheduler\.max_t/);
    assert.match(message({ type: "asha-stopping", max_t: 9, rule: "hyperopt" }), /scheduler\.rule/);
    assert.match(
      message({ type: "asha-stopping", max_t: 9, rung_levels: [3, 1] }),
      /scheduler\.rung_levels\.1: .*increasing/,
    );
    assert.match(
      message({ type: "asha-promotion", max_t: 9, rule: "ray" }),
      /scheduler\.rule: "ray" has no promotion/,
    );
    assert.match(message({ type: "adaptive-asha", max_time: 100 }), /scheduler\.max_trials/);
    assert.match(
      message({ type: "moasha", metrics: ["a", "b"], mode: ["min"] }),
      /scheduler\.mode: needs one mode per metric/,
    );
    assert.match(
      message({ type: "sockeye", r: 3, u: 1, R: 2, p: 2, max_trials: 8 }),
      /scheduler\.R: must be ≥ r/,
    );
    assert.match(message({ type: "fifo", max_t: 5, maxt: 3 }), /maxt/);
  });
  it("applies the spec's defaults", () => {
    const c = parseSchedulerConfig({ type: "asha-stopping", max_t: 81 });
    assert.equal(c.type, "asha-stopping");
    if (c.type !== "asha-stopping") return;
    assert.deepEqual(
      [c.rule, c.mode, c.metric, c.grace_period, c.brackets, c.seed],
      ["syne-tune", "min", "loss", 1, 1, 0],
    );
    const d = parseSchedulerConfig({ type: "adaptive-asha", max_trials: 10, max_time: 100 });
    if (d.type !== "adaptive-asha") return;
    assert.deepEqual(
      [d.mode, d.divisor, d.max_rungs, d.max_concurrent_trials, d.smaller_is_better],
      ["standard", 4, 5, 16, true],
    );
  });
});

describe("preview", () => {
  it("TV-DET-10: case c renders the det preview-search table", () => {
    const input = parsePreviewInput(
      JSON.stringify({
        type: "adaptive-asha",
        max_trials: 10,
        max_time: 900,
        divisor: 3,
        max_rungs: 10,
        max_concurrent_trials: 5,
        time_metric: "batches",
      }),
      "c.json",
    );
    const text = previewOutput(input, false);
    assert.ok(
      text.includes(
        [
          "   Trials | Training Time",
          "----------+-----------------------",
          "        5 | train for 100 batches",
          "        3 | train for 300 batches",
          "        2 | train for 900 batches",
        ].join("\n"),
      ),
      text,
    );
  });
  it("a task config: maxPoints is the budget, other keys are ignored", () => {
    const input = parsePreviewInput(
      JSON.stringify({
        outDS: "user.x",
        maxPoints: 27,
        nParallelEvaluation: 4,
        scheduler: { type: "asha-stopping", max_t: 27 },
      }),
      "task.json",
    );
    const plan = previewPlan(input.config, input.context);
    assert.deepEqual(plan.brackets, [{ rungs: [1, 3, 9, 27], maxTrials: 27, maxConcurrentTrials: 4 }]);
    assert.deepEqual(plan.counts, [
      { units: 1, trials: 18 },
      { units: 3, trials: 6 },
      { units: 9, trials: 2 },
      { units: 27, trials: 1 },
    ]);
  });
  it("--json prints exactly brackets and counts (subprocess)", () => {
    const p = file("case-a.json", {
      type: "adaptive-asha",
      max_trials: 10,
      max_time: 100,
      max_concurrent_trials: 2,
    });
    const r = cli(["preview", p, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      brackets: [
        { rungs: [25, 100], maxTrials: 7, maxConcurrentTrials: 1 },
        { rungs: [100], maxTrials: 3, maxConcurrentTrials: 1 },
      ],
      counts: [
        { units: 25, trials: 6 },
        { units: 100, trials: 4 },
      ],
    });
  });
  it("a budget-less scheduler without maxPoints is an error naming max_trials", () => {
    assert.throws(
      () => previewOutput(parsePreviewInput('{"type":"hyperband","max_t":81}', "h.json"), true),
      /max_trials/,
    );
  });
});

describe("replay", () => {
  const lines = [
    { op: "report", trial: "T0", resource: 1, metric: 0.5 },
    { op: "report", trial: "T1", resource: 1, metric: 0.4 },
    { op: "report", trial: "T2", resource: 1, metric: 0.6 },
    { op: "schedule" },
  ];
  it("runReplay answers one line per line, bad lines included", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const chunks: string[] = [];
    output.on("data", (c: Buffer) => chunks.push(c.toString()));
    const done = runReplay(
      parseSchedulerConfig({ type: "asha-stopping", max_t: 9, rung_levels: [1, 3] }),
      input,
      output,
    );
    input.end(
      [
        ...lines.map((l) => JSON.stringify(l)),
        "{",
        JSON.stringify({ op: "report", trial: "T0", resource: 1 }),
      ].join("\n") + "\n",
    );
    await done;
    const answers = chunks
      .join("")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(answers.slice(0, 4), [
      { decision: "continue" },
      { decision: "continue" },
      { decision: "stop" },
      { action: "new", trial: "T3", milestone: 1 },
    ]);
    assert.match(JSON.stringify(answers[4]), /not valid JSON/);
    assert.match(JSON.stringify(answers[5]), /metric/);
  });
  it("end to end: promotion, multi-objective metrics, deterministic output", () => {
    const cfg = file("promo.json", { type: "asha-promotion", rung_levels: [1, 3], max_t: 9 });
    const input =
      [
        { op: "schedule" },
        { op: "report", trial: "T0", resource: 1, metric: 0.5 },
        { op: "schedule" },
        { op: "report", trial: "T1", resource: 1, metric: 0.4 },
        { op: "schedule" },
        { op: "report", trial: "T9", resource: 1, metric: 0.4 },
        { op: "fail", trial: "nobody" },
      ]
        .map((l) => JSON.stringify(l))
        .join("\n") + "\n";
    const r = cli(["replay", "--config", cfg], input);
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(out.slice(0, 6), [
      { action: "new", trial: "T0", milestone: 1 },
      { decision: "pause" },
      { action: "new", trial: "T1", milestone: 1 },
      { decision: "pause" },
      { action: "promote", trial: "T1", from: 1, to: 3 },
      { decision: "pause" },
    ]);
    assert.match(JSON.stringify(out[6]), /NOT_FOUND/);
    assert.equal(cli(["replay", "--config", cfg], input).stdout, r.stdout);
    const mo = file("mo.json", { type: "moasha", metrics: ["loss", "cost"], max_t: 10, reduction_factor: 2 });
    const moOut = cli(
      ["replay", "--config", mo],
      '{"op":"report","trial":"T0","resource":1,"metrics":{"loss":1,"cost":2}}\n',
    );
    assert.deepEqual(JSON.parse(moOut.stdout), { decision: "continue" });
  });
  it("an invalid config exits 2 with a message naming the field", () => {
    const bad = file("bad.json", { type: "asha-stopping", max_t: 9, reduction_factor: 1 });
    const r = cli(["replay", "--config", bad], "");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /reduction_factor/);
    assert.equal(r.stdout, "");
    const missing = cli(["replay", "--config", join(dir, "none.json")], "");
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /--config: cannot read/);
  });
});
