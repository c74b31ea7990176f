// Per-user limits (steering/core/limits.ts) through Api.handle: one tenant cannot take steering for
// itself with many, huge or fast submissions. Each refusal is a LIMIT_EXCEEDED error naming the
// limit, its value and the fix, and nothing of a refused task is logged. The rate uses a literal
// clock. And the admin's overrides: the limits file, written atomically, read again when it changes.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Command } from "commander";
import { createLogger } from "../../protocol/log.ts";
import { ApiReplies, type ApiReply } from "../../protocol/messages.ts";
import { registerAdminCommands } from "../../steering/cli/adminCommands.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { DEFAULT_TENANT_LIMITS } from "../../steering/core/limits.ts";
import { LimitsFileReader } from "../../steering/shell/limits.ts";
import { limitsFilePath, readLimitsFile, setLimits } from "../../steering/security/adminLimits.ts";
import { apiKit, call, type ApiKit } from "./fixtures/apiKit.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";
import { specInput } from "./fixtures/engineKit.ts";

const logger = createLogger("test", { level: "error" });

function refusal(r: ApiReply) {
  assert.ok(!r.ok, "expected an error reply");
  return r.error;
}

async function submit(kit: ApiKit, user: string, over: Record<string, unknown> = {}): Promise<ApiReply> {
  // typed as the loose body: a spec input is not the parsed TaskSpec of ApiRequest
  const body: Record<string, unknown> = { verb: "submit", spec: { ...specInput(), ...over } };
  return call(kit, user, body);
}

async function submitted(kit: ApiKit, user: string, over: Record<string, unknown> = {}): Promise<string> {
  const r = await submit(kit, user, over);
  assert.ok(r.ok, `submit refused: ${r.ok ? "" : r.error.message}`);
  return ApiReplies.submit.parse(r.data).taskId;
}

const created = (kit: ApiKit) => kit.log.stored.filter((e) => e.type === "task-created").length;

void describe("tenant limits", () => {
  void it("a spec over spec_bytes is refused before it is parsed, naming the limit and the admin command", async () => {
    const kit = apiKit({ limits: { specBytes: 4096 } });
    await submitted(kit, "alice", { outDS: "user.alice.small" });
    const big = refusal(await submit(kit, "alice", { outDS: `user.alice.${"x".repeat(5000)}` }));
    assert.equal(big.code, "LIMIT_EXCEEDED");
    assert.equal(big.retryable, false);
    assert.match(big.message, /the submitted spec is \d+ bytes, the limit spec_bytes is 4096/);
    assert.match(big.message, /`gridtune-steering admin set-limits alice --spec-bytes 8192`/);
    assert.equal(created(kit), 1, "the refused task is not logged");
  });

  void it("a task over max_points is refused; segments multiply its points", async () => {
    const kit = apiKit({ limits: { maxPoints: 40 } });
    await submitted(kit, "alice", { maxPoints: 40 });
    const over = refusal(await submit(kit, "alice", { maxPoints: 41 }));
    assert.equal(over.code, "LIMIT_EXCEEDED");
    assert.match(over.message, /the task asks for 41 points, the limit max_points is 40: ask for fewer/);
    assert.match(over.message, /--max-points 80/);
    const segmented = refusal(
      await submit(kit, "alice", {
        maxPoints: 30,
        trainingDS: "user.alice.data",
        segments: [
          { name: "a", files: ["a.h5"] },
          { name: "b", files: ["b.h5"] },
        ],
      }),
    );
    assert.equal(segmented.code, "LIMIT_EXCEEDED", segmented.message);
    assert.match(segmented.message, /asks for 60 points/);
    assert.equal(created(kit), 1);
  });

  void it("active_tasks: the next submission is refused until a task is killed; other users are not counted", async () => {
    const kit = apiKit({ limits: { activeTasks: 2 } });
    const first = await submitted(kit, "alice");
    await submitted(kit, "alice");
    const third = refusal(await submit(kit, "alice"));
    assert.equal(third.code, "LIMIT_EXCEEDED");
    assert.equal(third.retryable, false);
    assert.equal(
      third.message,
      "you have 2 active tasks, the limit active_tasks is 2: kill one or wait for one to finish, " +
        "or ask an admin to raise it with `gridtune-steering admin set-limits alice --active-tasks 4`",
    );
    await submitted(kit, "bob");
    assert.ok((await call(kit, "alice", { verb: "kill", taskId: first })).ok);
    await submitted(kit, "alice");
    assert.equal(created(kit), 4);
  });

  void it("active_tasks holds for submissions in flight together (checked in the commit queue)", async () => {
    const kit = apiKit({ limits: { activeTasks: 3 } });
    const replies = await Promise.all(Array.from({ length: 8 }, () => submit(kit, "alice")));
    assert.equal(replies.filter((r) => r.ok).length, 3);
    assert.equal(created(kit), 3);
  });

  void it("submits_per_minute: refused (retryable, saying when) within the minute, accepted after it", async () => {
    const clock = new FakeClock(1_000_000);
    const kit = apiKit({ limits: { submitsPerMinute: 3 }, clock });
    for (let i = 0; i < 3; i++) {
      await submitted(kit, "alice");
      clock.advance(10_000);
    }
    const fast = refusal(await submit(kit, "alice"));
    assert.equal(fast.code, "LIMIT_EXCEEDED");
    assert.equal(fast.retryable, true);
    assert.match(
      fast.message,
      /you submitted 3 tasks in the last minute, the limit submits_per_minute is 3: try again in 30 s/,
    );
    await submitted(kit, "bob");
    clock.advance(30_001); // the first submission is now more than a minute old
    await submitted(kit, "alice");
    assert.ok(!(await submit(kit, "alice")).ok, "the window slides: 3 in the last minute again");
  });

  void it("an admin's override replaces the default for that user only", async () => {
    const kit = apiKit({
      limits: { activeTasks: 1 },
      overrides: (user) => (user === "alice" ? { activeTasks: 3 } : {}),
    });
    for (let i = 0; i < 3; i++) await submitted(kit, "alice");
    assert.equal(refusal(await submit(kit, "alice")).code, "LIMIT_EXCEEDED");
    await submitted(kit, "bob");
    assert.match(refusal(await submit(kit, "bob")).message, /the limit active_tasks is 1/);
  });

  void it("defaults come from steering's configuration, each settable by the environment", () => {
    const base = {
      GRIDTUNE_SEED_FILE: "/x/seed",
      GRIDTUNE_API_SEED_FILE: "/x/api-seed",
      S3_ENDPOINT: "http://127.0.0.1:9",
      AWS_ACCESS_KEY_ID: "a",
      AWS_SECRET_ACCESS_KEY: "b",
    };
    assert.deepEqual(compileSteeringConfig({}, base).limits, DEFAULT_TENANT_LIMITS);
    const c = compileSteeringConfig({}, { ...base, GRIDTUNE_LIMIT_ACTIVE_TASKS: "5" });
    assert.equal(c.limits.activeTasks, 5);
    assert.throws(
      () => compileSteeringConfig({}, { ...base, GRIDTUNE_LIMIT_SPEC_BYTES: "-1" }),
      /limits\.specBytes/,
    );
  });
});

void describe("tenant limits: the admin's limits file", () => {
  void it("set-limits writes the overrides (0600) and steering's reader sees each change; --clear drops them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gridtune-limits-"));
    try {
      const reader = new LimitsFileReader(limitsFilePath(dir), logger);
      assert.deepEqual(await reader.overrides("alice"), {}, "no file: no overrides");
      await setLimits(dir, "alice", { activeTasks: "40" });
      assert.deepEqual(await reader.overrides("alice"), { activeTasks: 40 });
      await setLimits(dir, "alice", { maxPoints: "500" });
      assert.deepEqual(await reader.overrides("alice"), { activeTasks: 40, maxPoints: 500 });
      assert.deepEqual(await reader.overrides("bob"), {});
      const { stat } = await import("node:fs/promises");
      assert.equal((await stat(limitsFilePath(dir))).mode & 0o777, 0o600);
      await setLimits(dir, "alice", {}, true);
      assert.deepEqual(await reader.overrides("alice"), {});
      assert.deepEqual(await readLimitsFile(dir), { users: {} });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it("bad values and names are refused; a broken file keeps the last good overrides in force", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gridtune-limits-"));
    try {
      await assert.rejects(
        setLimits(dir, "alice", { activeTasks: "0" }),
        /--active-tasks 0: give a positive/,
      );
      await assert.rejects(setLimits(dir, "alice", { specBytes: "1e3x" }), /--spec-bytes/);
      await assert.rejects(setLimits(dir, "../bob", { activeTasks: "2" }), /not a valid name/);
      const reader = new LimitsFileReader(limitsFilePath(dir), logger);
      await setLimits(dir, "alice", { activeTasks: "2" });
      assert.deepEqual(await reader.overrides("alice"), { activeTasks: 2 });
      // a hand edit that lifts every limit by mistake (a typo) must not be taken
      await writeFile(limitsFilePath(dir), '{"users": {"alice": {"activeTasks": 1e9, "typo": 1}}}');
      assert.deepEqual(await reader.overrides("alice"), { activeTasks: 2 });
      await assert.rejects(readLimitsFile(dir), /is not a limits file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it("`gridtune-steering admin set-limits alice --active-tasks 40` as typed, then `admin limits`", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gridtune-limits-"));
    const cli = async (args: string[]) => {
      const program = new Command().exitOverride();
      let out = "";
      registerAdminCommands(program, { write: (text) => (out += text) });
      await program.parseAsync(["node", "gridtune-steering", ...args]);
      return out;
    };
    try {
      const set = await cli(["admin", "--dir", dir, "set-limits", "alice", "--active-tasks", "40"]);
      assert.match(set, /limits of alice: \{"activeTasks":40\}/);
      assert.deepEqual(await readLimitsFile(dir), { users: { alice: { activeTasks: 40 } } });
      assert.match(await cli(["admin", "--dir", dir, "limits"]), /^alice\s+\{"activeTasks":40\}\n$/);
      await assert.rejects(
        cli(["admin", "--dir", dir, "set-limits", "alice", "--max-points", "lots"]),
        /--max-points lots/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
