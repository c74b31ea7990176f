import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { parseSearchSpace } from "../../protocol/searchSpace.ts";
import { type Point } from "../../protocol/points.ts";
import {
  buildSteeringInput,
  createSampler,
  parseSteeringInput,
  parseSteeringOutput,
  readSteeringOutput,
  type ExternalSampler,
  type History,
} from "../../steering/sampler/index.ts";

const IDDS_TEST_FILE = `{"points": [[{"A": 1, "B": 2}, 0.3], [{"A": 1, "B": 3}, null]], "opt_space": {"A": [1, 4], "B": [2, 5]}}`;

const space = parseSearchSpace({
  A: { method: "uniformint", dimension: { low: 1, high: 4 } },
  B: { method: "categorical", dimension: { categories: [2, 3, 5, true] } },
});

function outputError(fn: () => unknown, ...parts: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError);
    assert.equal(e.code, "OUTPUT_INVALID");
    for (const p of parts)
      assert.ok(e.message.includes(p), `message lacks ${JSON.stringify(p)}:\n${e.message}`);
    return true;
  });
}

void describe("%IN: the steering input", () => {
  void it("reads iDDS's own test file", () => {
    const input = parseSteeringInput(JSON.parse(IDDS_TEST_FILE));
    assert.deepEqual(input.points, [
      [{ A: 1, B: 2 }, 0.3],
      [{ A: 1, B: 3 }, null],
    ]);
    assert.deepEqual(input.opt_space, { A: [1, 4], B: [2, 5] });
  });

  void it("builds exactly iDDS's layout, and reads back what it builds", () => {
    const history: History = [
      [{ A: 1, B: 2 }, 0.3],
      [{ A: 1, B: 3 }, null],
    ];
    const text = JSON.stringify(buildSteeringInput(history, space));
    assert.equal(
      text,
      `{"points":[[{"A":1,"B":2},0.3],[{"A":1,"B":3},null]],"opt_space":${JSON.stringify(space)}}`,
    );
    assert.deepEqual(parseSteeringInput(JSON.parse(text)), { points: history, opt_space: space });
    assert.equal(JSON.stringify(buildSteeringInput([], null)), `{"points":[],"opt_space":null}`);
  });

  void it("keeps booleans and strings typed in the points", () => {
    const text = JSON.stringify(buildSteeringInput([[{ A: 2, B: true }, 1]], space));
    assert.deepEqual(parseSteeringInput(JSON.parse(text)).points, [[{ A: 2, B: true }, 1]]);
  });

  void it("refuses losses JSON cannot carry", () => {
    for (const loss of [Infinity, -Infinity, NaN])
      assert.throws(
        () =>
          buildSteeringInput(
            [
              [{ A: 1, B: 2 }, 0.1],
              [{ A: 2, B: 2 }, loss],
            ],
            space,
          ),
        new RegExp(`history\\[1\\] has loss ${String(loss)}, which JSON cannot carry`),
      );
  });

  void it("names the field of a malformed input", () => {
    assert.throws(
      () => parseSteeringInput({ points: [[{ A: 1 }, "x"]], opt_space: null }),
      /%IN: points\.0\.1: /,
    );
    assert.throws(() => parseSteeringInput({ points: [] }), /%IN: opt_space: /);
  });
});

void describe("%OUT: the steering output", () => {
  void it("reads a list of points, each validated", () => {
    assert.deepEqual(readSteeringOutput(`[{"A": 4, "B": 5}, {"B": true, "A": 1}]`, space), [
      { A: 4, B: 5 },
      { B: true, A: 1 },
    ]);
  });

  void it("reads [] as stop", () => assert.deepEqual(readSteeringOutput("[]", space), []));

  void it("names the bad point and key", () => {
    outputError(
      () =>
        parseSteeringOutput(
          [
            { A: 1, B: 2 },
            { A: 9, B: 2 },
          ],
          space,
        ),
      "steering output %OUT[1]",
      `"A" is 9`,
    );
    outputError(
      () => parseSteeringOutput([{ A: 1 }], space, "out.json"),
      "steering output out.json[0]",
      `"B" is missing`,
    );
    outputError(() => parseSteeringOutput([{ A: 1, B: 2, C: 3 }], space), `unknown parameter "C"`);
    outputError(() => parseSteeringOutput(["A=1"], space), "%OUT[0]", "must be a JSON object");
  });

  void it("rejects a document that is not a list", () => {
    outputError(
      () => parseSteeringOutput({ points: [] }, space),
      "must be a JSON list of points",
      "[] to stop",
    );
    outputError(() => parseSteeringOutput(null, space), "must be a JSON list", "got null");
  });

  void it("locates invalid JSON", () =>
    outputError(() => readSteeringOutput(`[{"A": 1,}]`, space), "%OUT is not valid JSON"));
});

void describe("ExternalSampler", () => {
  void it("is satisfied by an async optimiser that reads the history and the %IN/%OUT formats round-trip", async () => {
    // a stand-in for the steering-container runner: it writes %IN, "runs", and reads %OUT
    const fake: ExternalSampler = {
      ask(n, history) {
        const input = JSON.stringify(buildSteeringInput(history, space));
        const seen = parseSteeringInput(JSON.parse(input)).points.length;
        const out = JSON.stringify(
          Array.from({ length: Math.min(n, 4 - seen) }, (_, i) => ({ A: seen + i + 1, B: 2 })),
        );
        return Promise.resolve(readSteeringOutput(out, space));
      },
    };
    const history: [Point, number | null][] = [];
    for (;;) {
      const pts = await fake.ask(3, history);
      if (pts.length === 0) break;
      for (const p of pts) history.push([p, null]);
    }
    assert.deepEqual(
      history.map(([p]) => p.A),
      [1, 2, 3, 4],
    );
  });

  void it("points from a built-in sampler serialise into %IN and validate when read back", () => {
    const pts = createSampler(space, { type: "random", seed: 1 }).ask(5);
    const text = JSON.stringify(pts);
    assert.deepEqual(readSteeringOutput(text, space), pts);
  });
});
