// The one error funnel: exit codes per kind, one line for users, the stack only with -v; and the
// connection settings' precedence (flags > environment > config file).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommanderError } from "commander";
import { resolveClientConfig } from "../../client/connection.ts";
import { RemoteError, TaskFailedError, handleError } from "../../client/errors.ts";
import { GridtuneError, UnavailableError, ValidationError } from "../../protocol/errors.ts";

function capture(err: unknown, verbose = false) {
  let out = "";
  let errText = "";
  const io = {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (errText += s) },
  };
  return { code: handleError(err, io, { verbose }), out, err: errText };
}

describe("handleError", () => {
  test("exit codes: 2 usage, 3 unreachable, 1 remote or task failure, 0 for --help/--version", () => {
    assert.equal(capture(new ValidationError("INVALID_CONFIG", "bad")).code, 2);
    assert.equal(
      capture(new CommanderError(1, "commander.unknownOption", "error: unknown option '--x'")).code,
      2,
    );
    assert.equal(capture(new CommanderError(0, "commander.helpDisplayed", "(outputHelp)")).code, 0);
    assert.equal(capture(new UnavailableError("steering is not running")).code, 3);
    assert.equal(capture(new RemoteError("NOT_FOUND", "task 9 does not exist")).code, 1);
    assert.equal(capture(new RemoteError("UNAVAILABLE", "S3 is down")).code, 3);
    assert.equal(capture(new TaskFailedError("task 3 was killed")).code, 1);
    assert.equal(capture(new GridtuneError("STORAGE_FAILED", "S3 refused")).code, 1);
    assert.equal(capture(new Error("bug")).code, 1);
  });

  test("one clear line, no stack trace unless verbose", () => {
    const quiet = capture(new ValidationError("INVALID_CONFIG", "--outDS is not specified"));
    assert.equal(quiet.err, "phpo: error: --outDS is not specified\n");
    assert.equal(quiet.out, "");
    const remote = capture(new RemoteError("NOT_FOUND", "task 9 does not exist"));
    assert.equal(remote.err, "phpo: error: steering: task 9 does not exist\n");
    const bug = capture(new TypeError("x is undefined"));
    assert.equal(bug.err, "phpo: unexpected error: x is undefined (run with -v for the stack trace)\n");
    const verbose = capture(new ValidationError("INVALID_CONFIG", "bad"), true);
    assert.match(verbose.err, /^phpo: error: bad\nValidationError: bad\n\s+at /);
  });
});

describe("connection settings", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "phpo-conn-"));
    await mkdir(join(dir, "home", ".config", "gridtune"), { recursive: true });
    await writeFile(
      join(dir, "home", ".config", "gridtune", "config.json"),
      JSON.stringify({
        natsUrl: "tls://file:4222",
        user: "fileuser",
        seedFile: "seeds/u.nk",
        caFile: "/ca.pem",
      }),
    );
    await mkdir(join(dir, "stack"));
    await writeFile(
      join(dir, "stack", "client.json"),
      JSON.stringify({ natsUrl: "tls://stack:4222", user: "demo", seedFile: "/s.nk" }),
    );
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test("flags beat the environment, which beats the config file; relative paths are the file's", () => {
    const env = { HOME: join(dir, "home"), NATS_URL: "tls://env:4222", GRIDTUNE_USER: "envuser" };
    const c = resolveClientConfig({ user: "flaguser" }, env);
    assert.equal(c.natsUrl, "tls://env:4222");
    assert.equal(c.user, "flaguser");
    assert.equal(c.seedFile, join(dir, "home", ".config", "gridtune", "seeds", "u.nk"));
    assert.equal(c.caFile, "/ca.pem");
    assert.equal(c.source, join(dir, "home", ".config", "gridtune", "config.json"));
  });

  test("the embedded stack's client.json is the last resort", () => {
    const c = resolveClientConfig({}, { HOME: join(dir, "nohome"), GRIDTUNE_HOME: join(dir, "stack") });
    assert.equal(c.natsUrl, "tls://stack:4222");
    assert.equal(c.user, "demo");
  });

  test("a missing --config file, an incomplete or invalid setting: exit-2 errors naming the fix", () => {
    assert.throws(
      () => resolveClientConfig({ config: join(dir, "none.json") }, { HOME: dir }),
      /config file .*none\.json does not exist/,
    );
    assert.throws(
      () =>
        resolveClientConfig(
          { natsUrl: "tls://x:1" },
          { HOME: join(dir, "nohome"), GRIDTUNE_HOME: join(dir, "nostack") },
        ),
      (e: unknown) =>
        e instanceof ValidationError &&
        /user: .*--user or GRIDTUNE_USER/.test(e.message) &&
        /seedFile: .*--seed-file/.test(e.message),
    );
    assert.throws(
      () =>
        resolveClientConfig(
          { natsUrl: "tls://x:1", user: "Bad.User", seedFile: "/s" },
          { HOME: join(dir, "nohome"), GRIDTUNE_HOME: join(dir, "nostack") },
        ),
      /user: invalid name/,
    );
    assert.throws(
      () => resolveClientConfig({}, { HOME: join(dir, "nohome"), GRIDTUNE_HOME: join(dir, "nostack") }),
      (e: unknown) => e instanceof UnavailableError && /start the embedded stack/.test(e.message),
    );
  });
});
