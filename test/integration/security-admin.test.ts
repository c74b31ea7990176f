// The admin verbs against a running nats-server: onboarding takes effect without a restart,
// removal disconnects, rotation keeps a connectNats client working with its new seed file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { AuthorizationError, type NatsConnection } from "@nats-io/transport-node";
import { ValidationError } from "../../protocol/errors.ts";
import { type Identity } from "../../protocol/identity.ts";
import { connectNats } from "../../protocol/natsConnect.ts";
import { registerAdminCommands } from "../../steering/cli/adminCommands.ts";
import {
  addSite,
  addUser,
  listIdentities,
  removeAgent,
  removeUser,
  rotateIdentity,
} from "../../steering/security/admin.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import {
  type NatsServerHandle,
  runningServerPid,
  startNatsServer,
} from "../../steering/security/natsServer.ts";

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `admin …` through commander, capturing its output. */
async function cli(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  let out = "";
  registerAdminCommands(program, { write: (text) => (out += text) });
  await program.parseAsync(["node", "gridtune-steering", ...args]);
  return out;
}

describe("admin verbs with a running nats-server", () => {
  let dir: string;
  let srv: NatsServerHandle;
  const conns: NatsConnection[] = [];
  const connectAs = async (identity: Identity, seedFile: string) => {
    const nc = await connectNats({
      servers: srv.url,
      seedFile,
      caFile: srv.caFile,
      identity,
      reconnectTimeWaitMs: 100,
      logger: () => {},
    });
    conns.push(nc);
    return nc;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gt-secadmin-"));
    srv = await startNatsServer({ dir, store: new IdentityStore(dir) });
  });
  after(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await srv?.stop();
    assert.equal(await runningServerPid(dir), undefined, "pid file removed on stop");
    await srv?.stop(); // idempotent
    await rm(dir, { recursive: true, force: true });
  });

  test("add-site with agents: seeds to hand over, new agents connect without a restart", async () => {
    const r = await addSite(dir, "alpha", ["a1", "a2"]);
    assert.equal(r.reloaded, true);
    assert.deepEqual(
      r.identities.map((i) => [i.name, i.created]),
      [
        ["agent:alpha:a1", true],
        ["agent:alpha:a2", true],
      ],
    );
    for (const i of r.identities) {
      assert.ok(i.seedFile);
      assert.equal((await stat(i.seedFile)).mode & 0o777, 0o600);
      const nc = await connectAs(i.identity, i.seedFile);
      await nc.flush();
    }
    assert.equal((await stat(srv.configFile)).mode & 0o777, 0o600);
    const again = await addSite(dir, "alpha", ["a1"]);
    assert.equal(again.identities[0]?.created, false);
  });

  test("remove-agent disconnects it at once; other agents of the site stay", async () => {
    const a2 = { role: "agent", site: "alpha", agent: "a2" } as const;
    const a1 = { role: "agent", site: "alpha", agent: "a1" } as const;
    const store = new IdentityStore(dir);
    const nc2 = await connectAs(a2, store.seedFile(a2));
    const nc1 = await connectAs(a1, store.seedFile(a1));
    const r = await removeAgent(dir, "alpha", "a2");
    assert.deepEqual(
      r.removed.map((i) => i.name),
      ["agent:alpha:a2"],
    );
    assert.ok((await within(nc2.closed(), 10_000, "a2 closed")) instanceof AuthorizationError);
    await nc1.flush();
    await assert.rejects(removeAgent(dir, "alpha", "a2"), /not registered/);
    assert.deepEqual((await listIdentities(dir)).map((i) => i.name).sort(), [
      "agent:alpha:a1",
      "steering",
      "steering-api",
    ]);
  });

  test("rotate: the old key is refused, a connectNats client picks up the new seed file", async () => {
    await addUser(dir, "carol");
    const carol = { role: "user", user: "carol" } as const;
    const seedFile = new IdentityStore(dir).seedFile(carol);
    const oldSeed = await readFile(seedFile, "utf8");
    const nc = await connectAs(carol, seedFile);
    const r = await rotateIdentity(dir, carol);
    assert.equal(r.reloaded, true);
    assert.notEqual(await readFile(seedFile, "utf8"), oldSeed);
    // The server drops the old key; the client reconnects with the re-read seed.
    await within(
      (async () => {
        for await (const s of nc.status()) if (s.type === "reconnect") return;
      })(),
      10_000,
      "reconnect with the rotated seed",
    );
    await nc.flush();
    assert.equal(nc.isClosed(), false);
    await removeUser(dir, "carol");
    assert.ok((await within(nc.closed(), 10_000, "carol closed")) instanceof AuthorizationError);
  });

  test("CLI: add-user --json prints the seed path, never the seed; bad names are refused", async () => {
    const out = await cli(["admin", "--dir", dir, "--json", "add-user", "dave"]);
    const r = JSON.parse(out) as { identities: { seedFile: string; name: string }[]; reloaded: boolean };
    assert.equal(r.identities[0]?.name, "user:dave");
    assert.equal(r.reloaded, true);
    const seed = (await readFile(r.identities[0]?.seedFile ?? "", "utf8")).trim();
    assert.ok(!out.includes(seed));
    assert.doesNotMatch(out, /\bSU[A-Z2-7]{56}\b/);
    const text = await cli(["admin", "--dir", dir, "add-site", "beta", "--agents", "b1,b2"]);
    assert.match(text, /created agent:beta:b1/);
    assert.match(text, /seed file to hand over: .*agent-beta\.b2\.nk/);
    const list = await cli(["admin", "--dir", dir, "list"]);
    assert.match(list, /user:dave/);
    for (const bad of [
      ["add-user", "Dave"],
      ["add-site", "a.b"],
      ["add-agent", "beta", "*"],
      ["add-site", "gamma", "--agents", "g1,g>"],
      ["remove-site", ">"],
    ]) {
      await assert.rejects(
        cli(["admin", "--dir", dir, ...bad]),
        (err) => err instanceof ValidationError && /not a valid name/.test(err.message),
      );
    }
    await assert.rejects(
      connectNats({
        servers: srv.url,
        seedFile: join(dir, "seeds", "user-nobody.nk"),
        caFile: srv.caFile,
        identity: { role: "user", user: "nobody" },
      }),
      ValidationError,
    );
  });
});
