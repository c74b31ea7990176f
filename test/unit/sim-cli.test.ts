// phpo simulate and phpo preview --simulate, run in-process with the simulator composed in as
// bin/phpo does it; on the shipped quickstart config and on LCBench folders. The LCBench tests
// skip with a message where ../shared/data/lcbench is absent (a user's checkout).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { main } from "../../client/main.ts";
import { simulatorExtension } from "../../simulate/extension.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const LCBENCH = resolve(ROOT, "../shared/data/lcbench");
const SKIP = existsSync(LCBENCH)
  ? false
  : `LCBench is not at ${LCBENCH} (it is not shipped; see steering/sim/lcbench.ts for where to get it)`;
const DATA = join(LCBENCH, "yahpo-lcbench-3945");

async function phpo(args: string[], extensions = [simulatorExtension]) {
  let stdout = "";
  let stderr = "";
  const io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  };
  const env = { HOME: join(tmpdir(), "gridtune-no-home"), GRIDTUNE_LCBENCH: LCBENCH };
  const code = await main(["node", "phpo", ...args], io, env, extensions);
  return { code, stdout, stderr };
}

describe("phpo simulate on LCBench", { skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), "phpo-sim-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("--json gives one object with the documented names per method", async () => {
    const args = [
      "--json",
      "simulate",
      "--curves",
      DATA,
      "--seeds",
      "2",
      "--compare",
      "fifo,asha", // the short names of random and asha-promotion
    ];
    const r = await phpo(args);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { methods: Array<Record<string, unknown>> };
    assert.deepEqual(
      out.methods.map((m) => m.method),
      ["random", "asha-promotion"],
    );
    const [random, asha] = out.methods as [Record<string, unknown>, Record<string, unknown>];
    for (const k of ["method", "workers", "seeds", "reached", "computeRatio", "wallRatio"])
      assert.ok(k in asha, k);
    assert.deepEqual(random.computeRatio, { median: 1, min: 1, max: 1 });
    assert.equal(asha.workers, 4);
    assert.equal(asha.seeds, 2);
    const ratio = asha.computeRatio as { median: number } | null;
    assert.ok(ratio === null || (ratio.median > 0 && ratio.median < 1), JSON.stringify(ratio));
    // the same seeds give the same figures
    assert.equal((await phpo(args)).stdout, r.stdout);
  });

  it("with no config, the benchmark's configurations are the space; a table and an SVG plot", async () => {
    const plot = join(dir, "best.svg");
    const r = await phpo(["simulate", "--curves", "yahpo-lcbench-3945", "--seeds", "2", "--plot", plot]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /its configurations are the search space/);
    for (const m of ["random", "asha-promotion", "hyperband", "pasha"])
      assert.match(r.stdout, new RegExp(`^${m} `, "m"));
    const svg = readFileSync(plot, "utf8");
    assert.match(svg, /^<\?xml/);
    assert.match(svg, /<polygon/); // the band over seeds
    assert.match(svg, />asha-promotion</);
  });

  it("the shipped quickstart config (PanDA style, no scheduler) and the ASHA example", async () => {
    const q = await phpo([
      "simulate",
      join(ROOT, "examples/quickstart.json"),
      "--curves",
      DATA,
      "--seeds",
      "2",
    ]);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /nearest configuration/);
    assert.match(q.stdout, /fifo \(no scheduler\)/);
    const a = await phpo(["simulate", join(ROOT, "examples/asha.json"), "--curves", DATA, "--seeds", "2"]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /^asha-promotion /m);
    assert.match(a.stdout, /^without early stopping /m);
  });

  it("preview --simulate adds the cost estimate to the plan", async () => {
    const r = await phpo([
      "preview",
      join(ROOT, "examples/asha.json"),
      "--simulate",
      "--curves",
      DATA,
      "--seeds",
      "2",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /total compute 81 epochs/);
    assert.match(r.stdout, /simulated cost on 2000 curves/);
    const j = await phpo([
      "--json",
      "preview",
      join(ROOT, "examples/quickstart.json"),
      "--simulate",
      "--curves",
      DATA,
      "--seeds",
      "2",
    ]);
    assert.equal(j.code, 0, j.stderr);
    const plan = JSON.parse(j.stdout) as {
      simulation: { methods: Array<{ computeHours: { median: number } }> };
    };
    assert.ok((plan.simulation.methods[0]?.computeHours.median ?? 0) > 0);
  });
});

describe("phpo simulate: bad input is a usage error naming the flag", () => {
  it("an unknown --compare method", async () => {
    const r = await phpo(["simulate", "--curves", DATA, "--compare", "random,ashb"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--compare: unknown method "ashb"; choose from/);
  });

  it("no curves, or a folder without LCBench's files, says where LCBench comes from", async () => {
    const none = await phpo(["simulate"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--curves DIR or --from-task N.*github.com\/automl\/LCBench/);
    const empty = mkdtempSync(join(tmpdir(), "phpo-nocurves-"));
    const r = await phpo(["simulate", "--curves", empty]);
    rmSync(empty, { recursive: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no curves\.csv there.*LCBench/);
  });

  it("--curves with --from-task, --seeds 0, a failure rate above 1", async () => {
    assert.match((await phpo(["simulate", "--curves", DATA, "--from-task", "3"])).stderr, /not both/);
    assert.match(
      (await phpo(["simulate", "--curves", DATA, "--seeds", "0"])).stderr,
      /--seeds "0" must be an integer ≥ 1/,
    );
    assert.match(
      (await phpo(["simulate", "--curves", DATA, "--failure-rate", "2"])).stderr,
      /--failure-rate "2" must be a number in \[0, 1\]/,
    );
  });

  it("preview: simulation flags need --simulate, and --simulate needs the simulator", async () => {
    const cfg = join(ROOT, "examples/asha.json");
    const r = await phpo(["preview", cfg, "--curves", DATA]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--curves belongs to --simulate: add --simulate/);
    const bare = await phpo(["preview", cfg, "--simulate", "--curves", DATA], []);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /started without the simulator/);
    assert.equal((await phpo(["simulate"], [])).code, 2); // no such verb without the extension
  });
});
