import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileAgentConfig, planSlots, type AgentFlags } from "../../evaluator/config.ts";
import { parseProgressLine } from "../../evaluator/progress.ts";
import { ValidationError } from "../../protocol/errors.ts";
import { throwsCode } from "./fixtures/engineKit.ts";

void describe("parseProgressLine", () => {
  void it("takes the resource from `resource`, else `epoch`, else the line's ordinal", () => {
    assert.deepEqual(parseProgressLine('{"epoch": 3, "loss": 0.41}', 7), {
      resource: 3,
      metrics: { epoch: 3, loss: 0.41 },
    });
    assert.deepEqual(parseProgressLine('{"epoch": 3, "resource": 12, "loss": 0.4}', 7), {
      resource: 12,
      metrics: { epoch: 3, resource: 12, loss: 0.4 },
    });
    assert.deepEqual(parseProgressLine('{"loss": 0.5, "acc": 0.8}', 7), {
      resource: 7,
      metrics: { loss: 0.5, acc: 0.8 },
    });
    assert.deepEqual(
      parseProgressLine('{"epoch": 0, "loss": 1}', 7),
      { resource: 0, metrics: { epoch: 0, loss: 1 } },
      "epoch 0 is a resource, not missing",
    );
  });
  void it("keeps only finite numbers as metrics", () => {
    assert.deepEqual(
      parseProgressLine(
        '{"loss": 0.5, "tag": "x", "ok": true, "n": null, "arr": [1], "obj": {"a": 1}, "big": 1e308}',
        1,
      ),
      {
        resource: 1,
        metrics: { loss: 0.5, big: 1e308 },
      },
    );
  });
  void it("accepts surrounding whitespace and negative values", () => {
    assert.deepEqual(parseProgressLine('  {"loss": -2.5}\n', 2), { resource: 2, metrics: { loss: -2.5 } });
  });
  void it("ignores lines that are not JSON objects or carry no number", () => {
    for (const line of [
      "",
      "epoch 3 loss 0.4",
      "{",
      "[1,2]",
      "3",
      '"x"',
      "null",
      "true",
      '{"tag": "x"}',
      "{}",
      '{"loss": "0.4"}',
    ]) {
      assert.equal(parseProgressLine(line, 1), null, JSON.stringify(line));
    }
  });
  void it("ignores a line whose epoch or resource is not a number", () => {
    assert.equal(parseProgressLine('{"epoch": "3", "loss": 0.4}', 1), null);
    assert.equal(parseProgressLine('{"resource": null, "loss": 0.4}', 1), null);
  });
});

void describe("planSlots", () => {
  void it("--slots N gives N CPU slots; default 1", () => {
    assert.deepEqual(planSlots(undefined, undefined, undefined), [[]]);
    assert.deepEqual(planSlots("3", undefined, undefined), [[], [], []]);
    assert.deepEqual(planSlots("1024", undefined, undefined).length, 1024);
    assert.deepEqual(planSlots("2", "", undefined), [[], []], "an empty --gpus falls back to --slots");
    assert.deepEqual(planSlots("2", "  ", undefined), [[], []]);
  });
  void it("--gpus with --gpus-per-job chunks the ids in order; default 1 per job", () => {
    assert.deepEqual(planSlots(undefined, "0,1,2,3", "2"), [
      ["0", "1"],
      ["2", "3"],
    ]);
    assert.deepEqual(planSlots(undefined, " 0, 1 ,2,3 ", undefined), [["0"], ["1"], ["2"], ["3"]]);
    assert.deepEqual(planSlots(undefined, "GPU-a,GPU-b,GPU-c", "3"), [["GPU-a", "GPU-b", "GPU-c"]]);
    assert.deepEqual(planSlots("8", "0,1", "1"), [["0"], ["1"]], "--gpus wins over --slots");
  });
  void it("refuses a bad --gpus-per-job, naming the flag and value", () => {
    for (const bad of ["0", "-1", "1.5", "x", ""]) {
      const e = throwsCode(
        () => planSlots(undefined, "0,1", bad),
        "INVALID_ARGUMENT",
        "--gpus-per-job",
        `got ${bad}`,
      );
      assert.ok(e instanceof ValidationError);
    }
  });
  void it("refuses a GPU count that is not a multiple of --gpus-per-job", () => {
    throwsCode(
      () => planSlots(undefined, "0,1,2", "2"),
      "INVALID_ARGUMENT",
      "--gpus lists 3 GPUs",
      "--gpus-per-job 2",
    );
  });
  void it("refuses a GPU listed twice", () => {
    throwsCode(
      () => planSlots(undefined, "0,1,0,2", "1"),
      "INVALID_ARGUMENT",
      "--gpus lists a GPU twice",
      "0,1,0,2",
    );
  });
  void it("refuses a bad --slots, naming the flag and value", () => {
    for (const bad of ["0", "-2", "1025", "2.5", "many", ""]) {
      throwsCode(
        () => planSlots(bad, undefined, undefined),
        "INVALID_ARGUMENT",
        "--slots must be an integer from 1 to 1024",
        `got ${bad}`,
      );
    }
  });
});

void describe("compileAgentConfig", () => {
  const flags = (over: AgentFlags = {}): AgentFlags => ({
    site: "site-a",
    name: "agent-1",
    seedFile: "/etc/gridtune/agent.nk",
    runtime: "process",
    trustedUsers: "alice",
    ...over,
  });

  void it("compiles flags with defaults, independent of the process environment", () => {
    const c = compileAgentConfig(flags(), {});
    assert.equal(c.site, "site-a");
    assert.equal(c.agent, "agent-1");
    assert.equal(c.natsUrl, "tls://127.0.0.1:4222");
    assert.equal(c.runtime, "process");
    assert.deepEqual(c.slots, [[]]);
    assert.equal(c.workRoot, "/var/tmp/gridtune/site-a/agent-1");
    assert.equal(c.allowedImages, undefined);
    assert.equal(c.allowAnyImage, false);
    assert.equal(c.policy.allowNetwork, false);
    assert.equal(c.policy.maxMemoryBytes, 16384 * 1024 * 1024);
    assert.equal(c.policy.maxNanoCpus, 64e9);
    assert.equal(c.policy.pidsLimit, 1024);
    assert.equal(c.policy.maxWallClockMs, 7 * 24 * 60 * 60_000);
  });

  void it("flags win over the environment, the environment over defaults", () => {
    const env = {
      GRIDTUNE_SITE: "site-env",
      GRIDTUNE_AGENT: "agent-env",
      NATS_URL: "tls://nats:4222",
      GRIDTUNE_SEED_FILE: "/env.nk",
      GRIDTUNE_RUNTIME: "docker",
      GRIDTUNE_ALLOWED_IMAGES: "a:1, b:2,,",
      GRIDTUNE_GPUS: "0,1",
      GRIDTUNE_ALLOW_NETWORK: "1",
    };
    const c = compileAgentConfig({}, env);
    assert.equal(c.site, "site-env");
    assert.equal(c.agent, "agent-env");
    assert.equal(c.natsUrl, "tls://nats:4222");
    assert.equal(c.seedFile, "/env.nk");
    assert.equal(c.runtime, "docker");
    assert.deepEqual(c.allowedImages, ["a:1", "b:2"]);
    assert.deepEqual(c.slots, [["0"], ["1"]]);
    assert.equal(c.policy.allowNetwork, true);
    const f = compileAgentConfig(
      {
        site: "site-flag",
        natsUrl: "nats://x:1",
        runtime: "process",
        allowNetwork: false,
        trustedUsers: "alice",
      },
      env,
    );
    assert.equal(f.site, "site-flag");
    assert.equal(f.natsUrl, "nats://x:1");
    assert.equal(f.runtime, "process");
    assert.equal(f.policy.allowNetwork, false);
  });

  void it("refuses a site name with a dot (or a wildcard), naming --site", () => {
    for (const bad of ["site.a", "site*", ">", "Site", "", "a b"]) {
      throwsCode(
        () => compileAgentConfig(flags({ site: bad }), {}),
        "INVALID_NAME",
        `--site ${JSON.stringify(bad)} is not a valid name`,
      );
    }
    throwsCode(() => compileAgentConfig(flags({ site: undefined }), {}), "INVALID_NAME", "--site");
  });

  void it("refuses a bad agent name, naming --name", () => {
    throwsCode(() => compileAgentConfig(flags({ name: "agent.1" }), {}), "INVALID_NAME", "--name");
  });

  void it("the docker runtime without an allow-list is refused with the hint", () => {
    const e = throwsCode(
      () => compileAgentConfig(flags({ runtime: "docker" }), {}),
      "INVALID_CONFIG",
      "--allowed-images",
      "GRIDTUNE_ALLOWED_IMAGES",
      "--allow-any-image",
    );
    assert.ok(e instanceof ValidationError);
    assert.deepEqual(
      compileAgentConfig(flags({ runtime: "docker", allowedImages: "busybox:1.36" }), {}).allowedImages,
      ["busybox:1.36"],
    );
    assert.equal(
      compileAgentConfig(flags({ runtime: "docker", allowAnyImage: true }), {}).allowAnyImage,
      true,
    );
    assert.equal(
      compileAgentConfig(flags({ runtime: "docker" }), { GRIDTUNE_ALLOW_ANY_IMAGE: "1" }).allowAnyImage,
      true,
    );
  });

  void it("refuses an unknown runtime and a missing seed file, naming the field", () => {
    throwsCode(() => compileAgentConfig(flags({ runtime: "podman" }), {}), "INVALID_CONFIG", /^runtime: /m);
    throwsCode(
      () => compileAgentConfig(flags({ seedFile: undefined }), {}),
      "INVALID_CONFIG",
      /^seedFile: an nkey seed file is required/m,
    );
  });

  void it("refuses non-positive numeric limits, naming the flag", () => {
    throwsCode(
      () => compileAgentConfig(flags({ maxMemoryMb: "0" }), {}),
      "INVALID_ARGUMENT",
      "--max-memory-mb must be a positive number, got 0",
    );
    throwsCode(() => compileAgentConfig(flags({ maxCpus: "x" }), {}), "INVALID_ARGUMENT", "--max-cpus");
    throwsCode(() => compileAgentConfig(flags({ pidsLimit: "-5" }), {}), "INVALID_ARGUMENT", "--pids-limit");
    throwsCode(
      () => compileAgentConfig(flags({ maxWallClockMinutes: "Infinity" }), {}),
      "INVALID_ARGUMENT",
      "--max-wall-clock-minutes",
    );
    assert.equal(compileAgentConfig(flags({ maxCpus: "0.5" }), {}).policy.maxNanoCpus, 5e8);
  });

  void it("the process runtime needs --trusted-users, names checked and deduplicated", () => {
    throwsCode(
      () => compileAgentConfig(flags({ trustedUsers: undefined }), {}),
      "INVALID_CONFIG",
      "--trusted-users u1,u2",
    );
    assert.deepEqual(
      compileAgentConfig(flags({ trustedUsers: undefined }), { GRIDTUNE_TRUSTED_USERS: "bob, alice,bob" })
        .trustedUsers,
      ["bob", "alice"],
    );
    throwsCode(
      () => compileAgentConfig(flags({ trustedUsers: "Alice" }), {}),
      "INVALID_CONFIG",
      "trustedUsers",
    );
    // docker confines payloads: no trusted list needed
    assert.deepEqual(
      compileAgentConfig(flags({ runtime: "docker", allowAnyImage: true, trustedUsers: undefined }), {})
        .trustedUsers,
      [],
    );
  });

  void it("passes --gpus/--gpus-per-job errors through", () => {
    throwsCode(
      () => compileAgentConfig(flags({ gpus: "0,1,2", gpusPerJob: "2" }), {}),
      "INVALID_ARGUMENT",
      "--gpus-per-job 2",
    );
  });
});
