// connectNats failure mapping without a server: refused ports and unsafe or malformed seed files.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { UnavailableError, ValidationError } from "../../protocol/errors.ts";
import { connectNats, readSeedFile } from "../../protocol/natsConnect.ts";

const identity = { role: "agent", site: "alpha", agent: "a1" } as const;

/** A port nobody listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  await new Promise((r) => srv.close(r));
  return typeof addr === "object" && addr ? addr.port : 1;
}

describe("connectNats error mapping", () => {
  let dir: string;
  let seedFile: string;
  const seed = new TextDecoder().decode(createUser().getSeed());
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gt-secconn-"));
    seedFile = join(dir, "a1.nk");
    await writeFile(seedFile, seed + "\n", { mode: 0o600 });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("refused port → UnavailableError naming the URL and the fix", async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    await assert.rejects(
      connectNats({ servers: url, seedFile, identity, maxReconnectAttempts: 0 }),
      (err) => {
        assert.ok(err instanceof UnavailableError, String(err));
        assert.equal(err.code, "UNAVAILABLE");
        assert.ok(err.message.includes(url), err.message);
        assert.match(err.message, /connection refused/);
        assert.match(err.message, /start the stack|NATS_URL/i);
        assert.ok(!err.message.includes(seed));
        return true;
      },
    );
  });

  test("seed file readable by group/others, missing or malformed → ValidationError without the seed", async () => {
    const open = join(dir, "open.nk");
    await writeFile(open, seed, { mode: 0o640 });
    assert.throws(
      () => readSeedFile(open),
      (err) => {
        assert.ok(err instanceof ValidationError);
        assert.match(err.message, /0640/);
        assert.match(err.message, /chmod 600/);
        assert.ok(!err.message.includes(seed));
        return true;
      },
    );
    await assert.rejects(
      connectNats({ servers: "nats://127.0.0.1:1", seedFile: open, identity }),
      ValidationError,
    );
    assert.throws(() => readSeedFile(join(dir, "missing.nk")), /cannot be read \(ENOENT\)/);
    const junk = join(dir, "junk.nk");
    await writeFile(junk, "not a seed", { mode: 0o600 });
    assert.throws(() => readSeedFile(junk), /does not hold an nkey user seed/);
    assert.equal(new TextDecoder().decode(readSeedFile(seedFile)), seed);
  });

  test("an invalid identity is refused before connecting", async () => {
    await assert.rejects(
      connectNats({ servers: "nats://127.0.0.1:1", seedFile, identity: { role: "user", user: "a.b" } }),
      (err) => err instanceof ValidationError && err.code === "INVALID_NAME",
    );
  });
});
