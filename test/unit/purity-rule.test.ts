// The purity rule of eslint.config.js: steering/core, steering/scheduler and steering/sampler do no
// I/O and read neither the clock nor chance. Lints snippets with ESLint's Node API and the repo's
// own config (untyped: the purity rules need no type information, and a snippet is no project
// file), expecting each violation where it is and none outside the pure folders; then lints the
// real pure folders, which must be clean.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ESLint, type Linter } from "eslint";
import tseslint from "typescript-eslint";

const root = join(import.meta.dirname, "..", "..");
const PURITY_RULES = new Set([
  "no-restricted-imports",
  "no-restricted-globals",
  "no-restricted-properties",
  "no-restricted-syntax",
]);

const eslint = new ESLint({
  cwd: root,
  overrideConfig: tseslint.configs.disableTypeChecked as Linter.Config,
});

/** The purity findings in `code` linted as the file `path` (relative to the repo), as "line:rule". */
async function findings(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, path) });
  assert.ok(result, `no lint result for ${path}`);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `${path} did not parse`);
  return result.messages
    .filter((m) => m.ruleId !== null && PURITY_RULES.has(m.ruleId))
    .map((m) => `${m.line}:${m.ruleId}`)
    .sort();
}

// One violation per line; the line numbers below count from 1.
const OFFENDING = [
  'import { readFileSync } from "node:fs";',
  'import { readFile } from "fs";',
  'import { connect } from "@nats-io/transport-node";',
  'import { S3Client } from "@aws-sdk/client-s3";',
  'import Docker from "dockerode";',
  'import * as tar from "tar";',
  'import { Committer } from "../shell/committer.ts";',
  'import { runIteration } from "../program/iteration.ts";',
  'import { connectNats } from "../../protocol/natsConnect.ts";',
  "export const t1 = Date.now();",
  "export const t2 = new Date(0);",
  "export const r = Math.random();",
  "export const t3 = performance.now();",
  "setTimeout(() => undefined, 1);",
  "export const env = process.env;",
  "export const g = globalThis.Math;",
  'export const lazy = import("./state.ts");',
  "export const uses = [readFileSync, readFile, connect, S3Client, Docker, tar, Committer, runIteration, connectNats];",
].join("\n");

const EXPECTED = [
  "1:no-restricted-imports",
  "2:no-restricted-imports",
  "3:no-restricted-imports",
  "4:no-restricted-imports",
  "5:no-restricted-imports",
  "6:no-restricted-imports",
  "7:no-restricted-imports",
  "8:no-restricted-imports",
  "9:no-restricted-imports",
  // Date.now(): the global Date and the property Date.now
  "10:no-restricted-globals",
  "10:no-restricted-properties",
  // new Date(): the global and the syntax
  "11:no-restricted-globals",
  "11:no-restricted-syntax",
  "12:no-restricted-properties",
  "13:no-restricted-globals",
  "14:no-restricted-globals",
  "15:no-restricted-globals",
  "16:no-restricted-globals",
  "17:no-restricted-syntax",
].sort();

describe("the purity rule (eslint.config.js)", () => {
  it("finds every I/O import, clock read, timer, chance and dynamic import in steering/core", async () => {
    assert.deepEqual(await findings("steering/core/probe.ts", OFFENDING), EXPECTED);
  });

  it("holds in steering/scheduler and steering/sampler too", async () => {
    assert.deepEqual(await findings("steering/scheduler/probe.ts", OFFENDING), EXPECTED);
    assert.deepEqual(await findings("steering/sampler/probe.ts", OFFENDING), EXPECTED);
  });

  it("forbids the shell and the steering program from any depth of core", async () => {
    const code = [
      'import { Committer } from "../../shell/committer.ts";',
      'import { api } from "../../shell/channels/api.ts";',
      'import { runIteration } from "../../../steering/program/iteration.ts";',
      "export const uses = [Committer, api, runIteration];",
    ].join("\n");
    const all = ["1:no-restricted-imports", "2:no-restricted-imports", "3:no-restricted-imports"];
    assert.deepEqual(await findings("steering/core/task/probe.ts", code), all);
    assert.deepEqual(await findings("steering/core/decide/probe.ts", code), all);
  });

  it("still keeps the service boundary there (no client/ or evaluator/)", async () => {
    const code = [
      'import { x } from "../../client/render.ts";',
      'import { y } from "../../evaluator/agent.ts";',
      "export const uses = [x, y];",
    ].join("\n");
    assert.deepEqual(await findings("steering/core/probe.ts", code), [
      "1:no-restricted-imports",
      "2:no-restricted-imports",
    ]);
  });

  it("leaves the shell alone: the same code in steering/shell has no purity finding", async () => {
    const shellOk = OFFENDING.split("\n")
      // the steering boundary still applies there; only the purity rules are checked here
      .filter((l) => !l.includes("../shell/") && !l.includes("../program/"))
      .join("\n")
      .replace(", Committer, runIteration", "");
    assert.deepEqual(await findings("steering/shell/probe.ts", shellOk), []);
  });

  it("finds nothing in the real steering/core, steering/scheduler and steering/sampler", async () => {
    const results = await eslint.lintFiles(["steering/core", "steering/scheduler", "steering/sampler"]);
    assert.ok(results.length > 30, `only ${results.length} files linted`);
    const found = results.flatMap((r) =>
      r.messages.map((m) => `${r.filePath.slice(root.length + 1)}:${m.line} ${m.ruleId}: ${m.message}`),
    );
    assert.deepEqual(found, []);
  });
});
