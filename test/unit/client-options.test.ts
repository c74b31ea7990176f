// phpo option parsing, --loadJson, --dumpJson, --noSubmit and the bad-input exit codes (no network).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withDefaultVerb } from "../../client/main.ts";
import { parseJsonText } from "../../client/jsonText.ts";
import { PHPO_OPTIONS } from "../../client/options.ts";
import { formatHelpGroup } from "../../client/optionValues.ts";
import { runPhpo } from "../harness/fakeSteering.ts";

const SPACE = {
  lr: { method: "loguniform", dimension: { low: 0.001, high: 0.1 } },
  units: { method: "uniformint", dimension: { low: 2, high: 8 } },
};

describe("phpo options and --loadJson", () => {
  let dir: string;
  const cfg = (name: string) => join(dir, name);
  /** submit --noSubmit --json with the sandbox taken from the temporary directory. */
  const dry = (...args: string[]) => runPhpo(["--noSubmit", "--json", "--sandboxDir", dir, ...args]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "phpo-opts-"));
    await writeFile(cfg("space.json"), JSON.stringify(SPACE));
    // PanDA's documentation example ends with a trailing comma; string integers as PanDA allows.
    await writeFile(
      cfg("panda.json"),
      `{
  "evaluationContainer": "docker://registry/eval:mlflow",
  "evaluationExec": "bash ./exec_in_container.sh",
  "evaluationMetrics": "metrics.tgz",
  "searchSpaceFile": "${cfg("space.json")}",
  "outDS": "user.hoge.hpo",
  "maxPoints": "20",
  "nParallelEvaluation": 3,
  "site": "alpha,beta",
  "checkPointToSave": "ckpt.pt,state",
  "maxPoint": 5,
}
`,
    );
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test("trailing comma, string integers, lists, outDS slash; unknown key warned with the closest option", async () => {
    const r = await dry("--loadJson", cfg("panda.json"));
    assert.equal(r.code, 0, r.stderr);
    const { spec } = JSON.parse(r.stdout) as { spec: Record<string, unknown> };
    assert.equal(spec.maxPoints, 20);
    assert.equal(spec.nParallelEvaluation, 3);
    assert.deepEqual(spec.site, ["alpha", "beta"]);
    assert.deepEqual(spec.checkPointToSave, ["ckpt.pt", "state"]);
    assert.equal(spec.outDS, "user.hoge.hpo/");
    assert.deepEqual(Object.keys(spec.searchSpace as object), ["lr", "units"]);
    assert.match(r.stderr, /ignore unknown option maxPoint in .*panda\.json \(did you mean maxPoints\?\)/);
  });

  test("the command line overrides the --loadJson file (documented difference from PanDA)", async () => {
    const r = await dry("--loadJson", cfg("panda.json"), "--maxPoints", "7", "--site", "gamma");
    assert.equal(r.code, 0, r.stderr);
    const { spec } = JSON.parse(r.stdout) as { spec: Record<string, unknown> };
    assert.equal(spec.maxPoints, 7);
    assert.deepEqual(spec.site, ["gamma"]);
  });

  test("bare `phpo --loadJson` is submit; --noSubmit prints the parameters and the sandbox", async () => {
    await mkdir(join(dir, "sub"), { recursive: true });
    await writeFile(join(dir, "sub", "train.py"), "print(1)\n");
    const r = await runPhpo(["--loadJson", cfg("panda.json"), "--noSubmit", "--sandboxDir", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /task parameters \(--noSubmit: nothing was submitted\)/);
    assert.match(r.stdout, /"evaluationExec": "bash \.\/exec_in_container\.sh"/);
    assert.match(r.stdout, /^ {2}sub\/train\.py$/m);
  });

  test("--dumpJson writes every option plus returnCode, returnOut and jediTaskID", async () => {
    const out = cfg("dump.json");
    const r = await dry("--loadJson", cfg("panda.json"), "--dumpJson", out);
    assert.equal(r.code, 0, r.stderr);
    const dump = JSON.parse(await readFile(out, "utf8")) as Record<string, unknown>;
    for (const o of PHPO_OPTIONS.filter((x) => x.name !== "helpGroup"))
      assert.ok(o.name in dump, `dump lacks ${o.name}`);
    assert.equal(dump.maxPoints, 20);
    assert.equal(dump.steeringExec, null);
    assert.equal(dump.returnCode, 0);
    assert.equal(dump.jediTaskID, null);
    assert.equal(typeof dump.returnOut, "string");
  });

  test("a missing required option: exit 2 naming it", async () => {
    await writeFile(
      cfg("noexec.json"),
      JSON.stringify({ outDS: "x", evaluationContainer: "c", searchSpaceFile: cfg("space.json") }),
    );
    const r = await dry("--loadJson", cfg("noexec.json"));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--evaluationExec is not specified/);
    assert.doesNotMatch(r.stderr, /--outDS is not specified/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });

  test("wrong types: exit 2 naming the option and the source", async () => {
    const cli = await dry("--loadJson", cfg("panda.json"), "--maxPoints", "ten");
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /--maxPoints on the command line must be an integer, got "ten"/);
    await writeFile(
      cfg("badtype.json"),
      JSON.stringify({
        outDS: "x",
        evaluationContainer: "c",
        evaluationExec: "e",
        searchSpaceFile: cfg("space.json"),
        official: "maybe",
      }),
    );
    const js = await dry("--loadJson", cfg("badtype.json"));
    assert.equal(js.code, 2);
    assert.match(js.stderr, /--official in .*badtype\.json must be true or false, got "maybe"/);
    const zero = await dry("--loadJson", cfg("panda.json"), "--nParallelEvaluation", "0");
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /nParallelEvaluation: .*>0/);
  });

  test("a missing --loadJson file and invalid JSON: exit 2 with the path and line:column", async () => {
    const r = await dry("--loadJson", cfg("nope.json"));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--loadJson file .*nope\.json does not exist/);
    await writeFile(cfg("broken.json"), '{\n  "outDS": "x",\n  "maxPoints": 3\n  "site": "a"\n}\n');
    const b = await dry("--loadJson", cfg("broken.json"));
    assert.equal(b.code, 2);
    assert.match(
      b.stderr,
      /broken\.json:4:3: invalid JSON: expected ',' or '}' after the value of "maxPoints"/,
    );
  });

  test("a search space with an unknown method: exit 2 naming it", async () => {
    await writeFile(
      cfg("badspace.json"),
      JSON.stringify({ lr: { method: "unifrom", dimension: { low: 0, high: 1 } } }),
    );
    const r = await dry("--loadJson", cfg("panda.json"), "--searchSpaceFile", cfg("badspace.json"));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /"lr": unknown method "unifrom"; did you mean "uniform"\?/);
  });

  test("an exec string with unbalanced quotes: exit 2", async () => {
    const r = await dry("--loadJson", cfg("panda.json"), "--evaluationExec", "python 'train.py");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /evaluationExec: unbalanced single quote/);
  });

  test("unknown command-line option: exit 2 with commander's suggestion", async () => {
    const r = await dry("--loadJson", cfg("panda.json"), "--maxPoitns", "3");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--maxPoitns'[\s\S]*--maxPoints/);
  });

  test("scheduler and sampler extensions are validated before submission", async () => {
    const good = await dry(
      "--loadJson",
      cfg("panda.json"),
      "--scheduler",
      '{"type": "asha-stopping", "max_t": 27}',
      "--sampler",
      // not grid: this search space flags no grid_search dimension (refused: see guidance.test.ts)
      "random",
    );
    assert.equal(good.code, 0, good.stderr);
    const { spec } = JSON.parse(good.stdout) as {
      spec: { scheduler: { type: string; grace_period: number }; sampler: { type: string } };
    };
    assert.equal(spec.scheduler.type, "asha-stopping");
    assert.equal(spec.scheduler.grace_period, 1);
    assert.equal(spec.sampler.type, "random");
    const bad = await dry("--loadJson", cfg("panda.json"), "--scheduler", '{"type": "ashaa"}');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--scheduler\.type: must be one of/);
  });

  test("--helpGroup prints one group or ALL; an unknown group is exit 2", async () => {
    const r = await runPhpo(["--helpGroup", "submit"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--nParallelEvaluation N +points evaluated concurrently \(default: 1\)/);
    assert.doesNotMatch(r.stdout, /--outDS/);
    const all = formatHelpGroup("ALL");
    for (const o of PHPO_OPTIONS) assert.ok(all.includes(o.flag ?? `--${o.name}`), o.name);
    const bad = await runPhpo(["--helpGroup", "inptu"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /did you mean input\?/);
  });

  test("--version, and the verb inferred as PanDA does", async () => {
    const v = await runPhpo(["--version"]);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.deepEqual(withDefaultVerb(["--loadJson", "a.json"]), ["submit", "--loadJson", "a.json"]);
    assert.deepEqual(withDefaultVerb(["-v", "--loadJson", "a.json"]), [
      "submit",
      "-v",
      "--loadJson",
      "a.json",
    ]);
    assert.deepEqual(withDefaultVerb(["--json", "list"]), ["--json", "list"]);
    assert.deepEqual(withDefaultVerb(["--user", "bob", "show", "3"]), ["--user", "bob", "show", "3"]);
    assert.deepEqual(withDefaultVerb(["--help"]), ["--help"]);
  });

  test("the JSON reader: trailing commas accepted, errors located", () => {
    assert.deepEqual(parseJsonText('{"a": [1, 2,], "b": {"c": null,},}', "x.json"), {
      a: [1, 2],
      b: { c: null },
    });
    assert.throws(() => parseJsonText('{"a": tru}', "x.json"), /x\.json:1:7: invalid JSON: expected a value/);
    assert.throws(
      () => parseJsonText('{"a": 1}}', "x.json"),
      /x\.json:1:9: invalid JSON: expected the end of the file/,
    );
    assert.throws(
      () => parseJsonText('{\n"a": "b\n}', "x.json"),
      /x\.json:2:6: invalid JSON: unterminated string/,
    );
  });
});
