// phpo's option values map into the submitted spec in one place (client/compile.ts): an option
// named like a spec field is that field, the file options are read, and nothing else leaks in.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { specFromOptions } from "../../client/compile.ts";
import { resolveOptions } from "../../client/optionValues.ts";
import { PHPO_OPTIONS } from "../../client/options.ts";
import { TaskSpec } from "../../protocol/taskConfig.ts";
import { SMALL_SPACE } from "./fixtures/engineKit.ts";

const dir = mkdtempSync(join(tmpdir(), "gt-compile-"));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, "space.json"), JSON.stringify(SMALL_SPACE));

/** Options as typed on the command line (commander's raw strings). */
const typed = {
  outDS: "user.alice.hpo",
  evaluationContainer: "busybox:1.36",
  evaluationExec: "python train.py",
  searchSpaceFile: "space.json",
  maxPoints: "5",
  nParallelEvaluation: "2",
  checkPointToSave: "ckpt/a,ckpt/b",
  site: "CERN,BNL",
  official: "true",
  maxAttempts: "4",
  resourceKey: "steps",
  trainingDS: "user.alice.data",
  wait: "true",
  noSubmit: "true",
};

void describe("specFromOptions", () => {
  void it("passes every option named like a spec field into the spec, typed", () => {
    const spec = specFromOptions(resolveOptions(typed, {}), { cwd: dir });
    assert.equal(spec.outDS, "user.alice.hpo/", "outDS gets its trailing slash");
    assert.deepEqual(spec.searchSpace, TaskSpec.shape.searchSpace.parse(SMALL_SPACE));
    assert.equal(spec.maxPoints, 5);
    assert.equal(spec.nParallelEvaluation, 2);
    assert.deepEqual(spec.checkPointToSave, ["ckpt/a", "ckpt/b"]);
    assert.deepEqual(spec.site, ["CERN", "BNL"]);
    assert.equal(spec.official, true);
    assert.equal(spec.maxAttempts, 4);
    assert.equal(spec.resourceKey, "steps");
    assert.equal(spec.trainingDS, "user.alice.data");
  });

  void it("leaves out the options that are not spec fields (the spec is strict)", () => {
    const spec = specFromOptions(resolveOptions(typed, {}), { cwd: dir });
    const fields = new Set(TaskSpec.keyof().options as readonly string[]);
    const others = PHPO_OPTIONS.map((o) => o.name).filter((n) => !fields.has(n));
    assert.ok(others.includes("wait") && others.includes("searchSpaceFile"));
    for (const n of others) assert.ok(!(n in spec), `${n} is phpo's own option`);
  });
});
