// Guidance that is true: each piece of advice or refusal a user meets at the first mistakes of a
// real deployment (issue: the user's own path), checked without a server.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { missingImageAdvice, PROJECT_IMAGES } from "../../evaluator/runtime/imageAdvice.ts";
import { TaskDetail } from "../../protocol/api.ts";
import { parseSchedulerConfig } from "../../protocol/scheduler.ts";
import { parseTaskSpec, type TaskSpecInput } from "../../protocol/taskConfig.ts";
import { ROOT } from "../../stack/embedded.ts";
import { runPhpo, sampleDetail, samplePoints, startFakeSteering } from "../harness/fakeSteering.ts";
import { specInput } from "./fixtures/engineKit.ts";

const SPACE = {
  lr: { method: "loguniform", dimension: { low: 0.001, high: 0.1 } },
  units: { method: "uniformint", dimension: { low: 2, high: 8 } },
};

describe("guidance that is true", () => {
  let dir: string;
  const file = (name: string) => join(dir, name);
  /** submit --noSubmit --json with a config, its search space and sandbox in the temporary directory. */
  const dry = (...args: string[]) =>
    runPhpo(["--loadJson", file("cfg.json"), "--noSubmit", "--json", "--sandboxDir", dir, ...args]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "phpo-guidance-"));
    await writeFile(file("space.json"), JSON.stringify(SPACE));
    await writeFile(
      file("cfg.json"),
      JSON.stringify({
        evaluationContainer: "gridtune/python:1",
        evaluationExec: "python3 train.py",
        searchSpaceFile: file("space.json"),
        outDS: "user.me.hpo",
        maxPoints: 9,
      }),
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("a missing image: the build script only for the images it builds, else use or load an image", () => {
    for (const ref of PROJECT_IMAGES)
      assert.match(missingImageAdvice(ref), /sudo containers\/build-images\.sh/);
    const mine = missingImageAdvice("registry.cern.ch/me/train:2");
    assert.doesNotMatch(mine, /build-images/);
    assert.match(mine, /docker pull registry\.cern\.ch\/me\/train:2, or docker load/);
  });

  test("promotion without checkPointToSave: a warning at submission that each promotion retrains", async () => {
    const promo = JSON.stringify({ type: "asha-promotion", max_t: 9, reduction_factor: 3 });
    const warned = await dry("--scheduler", promo);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(
      warned.stderr,
      /asha-promotion .* no checkPointToSave: every promotion trains again from scratch/,
    );
    assert.match(warned.stderr, /--checkPointToSave checkpoint/);
    for (const [sched, extra] of [
      [promo, ["--checkPointToSave", "checkpoint"]],
      [JSON.stringify({ type: "asha-stopping", max_t: 9 }), []],
      [JSON.stringify({ type: "hyperband", max_t: 9, variant: "stopping" }), []],
    ] as const) {
      const r = await dry("--scheduler", sched, ...extra);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /checkPointToSave/, sched);
    }
    for (const type of ["pasha", "sha"]) {
      const r = await dry("--scheduler", JSON.stringify({ type, max_t: 9 }));
      assert.match(r.stderr, new RegExp(`${type} pauses trials`));
    }
  });

  test("--sampler grid without a grid_search dimension is refused at submission, by phpo and by steering", async () => {
    const r = await dry("--sampler", '{"type": "grid"}');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /sampler type "grid" needs at least one parameter with "grid_search": 1/);
    assert.match(r.stderr, /or use --sampler random/);
    // steering parses what it receives: a spec built without phpo is refused the same way
    assert.throws(
      () => parseTaskSpec(specInput({ sampler: { type: "grid" } })),
      (e: unknown) =>
        e instanceof ValidationError && e.code === "INVALID_CONFIG" && /grid_search/.test(e.message),
    );
    const flagged: TaskSpecInput["searchSpace"] = {
      bs: { method: "categorical", dimension: { categories: [8, 16], grid_search: 1 } },
      lr: { method: "uniform", dimension: { low: 0, high: 1 } },
    };
    assert.equal(
      parseTaskSpec(specInput({ searchSpace: flagged, sampler: { type: "grid" } })).sampler?.type,
      "grid",
    );
    // each segment's own space needs one
    assert.throws(
      () =>
        parseTaskSpec(
          specInput({
            searchSpace: flagged,
            sampler: { type: "grid" },
            trainingDS: "user.me.data",
            segments: [
              { name: "a", files: ["a.h5"] },
              { name: "b", files: ["b.h5"] },
            ],
            segmentSearchSpaces: [flagged, { lr: { method: "uniform", dimension: { low: 0, high: 1 } } }],
          } as never),
        ),
      /segmentSearchSpaces\[1\] has none/,
    );
  });

  test("a misspelt scheduler key: did you mean, and the keys of that type", async () => {
    const bad = { type: "asha-stopping", max_t: 9, reduction_facor: 3 };
    const r = await dry("--scheduler", JSON.stringify(bad));
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /--scheduler\.reduction_facor: type "asha-stopping" has no key "reduction_facor" \(did you mean "reduction_factor"\?\); its keys are .*grace_period/,
    );
    // steering's own parse of a submitted spec says the same
    assert.throws(
      () => parseTaskSpec(specInput({ scheduler: bad as never })),
      /scheduler\.reduction_facor: .*did you mean "reduction_factor"/,
    );
    assert.throws(
      () => parseSchedulerConfig({ type: "pasha", max_t: 9, gracePeriod: 1 }),
      /did you mean "grace_period"/,
    );
    // other errors keep their own message, next to the key hint
    assert.throws(
      () => parseSchedulerConfig({ type: "asha-stopping", reduction_facor: 3 }),
      (e: unknown) =>
        e instanceof ValidationError &&
        /did you mean "reduction_factor"/.test(e.message) &&
        /max_t/.test(e.message),
    );
  });

  test("plot --out and --dumpJson to a path that cannot be written: a usage error naming it, before any request", async () => {
    await writeFile(file("plain"), "x");
    const cases: Array<[string, RegExp]> = [
      [join(dir, "no-such-dir", "c.svg"), /no such directory/],
      [join(dir, "plain", "c.svg"), /plain is not a directory/],
      [join(dir, "dir.svg"), /it is a directory/],
    ];
    await mkdir(join(dir, "dir.svg"));
    for (const [out, reason] of cases) {
      // no steering runs here: had phpo sent a request first, this would be exit 3 (unreachable)
      const r = await runPhpo(["plot", "7", "--out", out]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /^phpo: error: --out .*: cannot write .* give a path in a directory you can write to/m,
      );
      assert.match(r.stderr, reason);
      assert.doesNotMatch(r.stderr, /unexpected error/);
    }
    // --dumpJson: refused before anything is submitted (no steering runs here: a request would be exit 3)
    const dump = await runPhpo([
      "--loadJson",
      file("cfg.json"),
      "--sandboxDir",
      dir,
      "--dumpJson",
      join(dir, "nope", "d.json"),
    ]);
    assert.equal(dump.code, 2, dump.stderr);
    assert.match(dump.stderr, /--dumpJson .*nope\/d\.json: cannot write .*no such directory/);
  });

  test("plot: a legend naming every curve, and no colour used twice", async () => {
    const { renderPlotSvg } = await import("../../client/plot.ts");
    const base = samplePoints()[0]!;
    const many = Array.from({ length: 27 }, (_, i) => ({
      ...base,
      pointId: i,
      reports: [
        { resource: 1, loss: 1 + i / 10 },
        { resource: 3, loss: 0.5 + i / 10 },
      ],
    }));
    const svg = renderPlotSvg("t", many, "epochs");
    const strokes = [...svg.matchAll(/<polyline fill="none" stroke="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(strokes.length, 28, "27 curves and the best-so-far line");
    assert.equal(new Set(strokes.slice(0, 27)).size, 27, "27 distinct colours");
    for (let i = 0; i < 27; i++) assert.match(svg, new RegExp(`<text x="[0-9.]+" y="[0-9.]+">p${i}</text>`));
    const huge = Array.from({ length: 130 }, (_, i) => ({ ...many[0]!, pointId: i }));
    assert.match(renderPlotSvg("t", huge, "epochs"), /… and 34 more curves/);
  });

  test(
    "results --csv | head: a reader that goes away is no error (no stack trace)",
    { timeout: 60_000 },
    async () => {
      const fake = await startFakeSteering();
      try {
        // a CSV far larger than a pipe's buffer, so phpo is still writing when the reader leaves
        const base = samplePoints()[0]!;
        const points = Array.from({ length: 1000 }, (_, i) => ({ ...base, pointId: i }));
        fake.on("show", () => ({ ok: true, data: TaskDetail.parse({ ...sampleDetail("7"), points }) }));
        // through a real shell pipe: a spawned child's stdio is a socket, which reports no EPIPE so
        const phpo = [process.execPath, join(ROOT, "bin", "phpo"), ...fake.flags(), "results", "7", "--csv"];
        const quoted = phpo.map((x) => `'${x.replaceAll("'", `'"'"'`)}'`).join(" ");
        const child = spawn("bash", ["-c", `set -o pipefail; ${quoted} | head -1`], {
          env: { ...process.env, HOME: dir },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
        child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
        const code = await new Promise<number | null>((r) => child.once("exit", r));
        assert.equal(stderr, "", "nothing on stderr");
        assert.equal(code, 0, "phpo's own exit status (pipefail)");
        assert.match(stdout, /^task_id,point_id,/);
      } finally {
        await fake.stop();
      }
    },
  );
});
