// Identity names, the golden permission lists of spec §3, inbox prefixes, config rendering and
// the identity store's file modes.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ValidationError } from "../../protocol/errors.ts";
import {
  agentIdentity,
  connectionName,
  identityId,
  inboxPrefix,
  parseIdentity,
  permissionsFor,
  userIdentity,
  validateIdentityName,
} from "../../protocol/identity.ts";
import { IdentityStore } from "../../steering/security/identities.ts";
import { renderNatsConfig } from "../../steering/security/natsConfig.ts";

const isInvalidName = (value: string) => (err: unknown) => {
  assert.ok(err instanceof ValidationError, String(err));
  assert.equal(err.code, "INVALID_NAME");
  assert.ok(err.message.includes(JSON.stringify(value)), err.message);
  assert.match(err.message, /lowercase letters, digits/);
  return true;
};

describe("identity names", () => {
  test("accepts one lowercase subject token of 1–32 characters", () => {
    for (const ok of ["a", "alpha", "site_1", "cern-t0", "0", "a".repeat(32)]) {
      assert.equal(validateIdentityName(ok), ok);
    }
  });
  test("refuses . * > spaces, uppercase, leading -/_, empty and too long names", () => {
    for (const bad of [
      "a.b",
      "*",
      ">",
      "al*",
      "a>",
      "a b",
      " a",
      "Alpha",
      "-a",
      "_a",
      "",
      "a".repeat(33),
      "a\n",
    ]) {
      assert.throws(() => validateIdentityName(bad, "site"), isInvalidName(bad));
    }
    assert.throws(() => agentIdentity("alpha", "a.1"), isInvalidName("a.1"));
    assert.throws(() => userIdentity("Bob"), isInvalidName("Bob"));
  });
  test("parseIdentity names the field and refuses unknown roles and extra fields", () => {
    assert.throws(
      () => parseIdentity({ role: "agent", site: "al.pha", agent: "a1" }),
      (err) =>
        err instanceof ValidationError && err.code === "INVALID_NAME" && /identity\.site/.test(err.message),
    );
    assert.throws(() => parseIdentity({ role: "admin" }), ValidationError);
    assert.throws(() => parseIdentity({ role: "steering", user: "x" }), ValidationError);
  });
  test("ids, connection names and inbox prefixes", () => {
    const a = agentIdentity("alpha", "a1");
    assert.equal(identityId(a), "agent-alpha.a1");
    // '-' in names cannot make two agents collide: names never contain '.'.
    assert.notEqual(identityId(agentIdentity("a-b", "c")), identityId(agentIdentity("a", "b-c")));
    assert.equal(connectionName(a), "agent:alpha:a1");
    assert.equal(inboxPrefix(a), "_INBOX.site.alpha.a1");
    assert.equal(inboxPrefix(userIdentity("alice")), "_INBOX.user.alice");
    assert.equal(inboxPrefix({ role: "steering" }), "_INBOX.steering");
    assert.equal(inboxPrefix({ role: "steering-api" }), "_INBOX.steering-api");
    assert.equal(identityId({ role: "steering-api" }), "steering-api");
    assert.equal(identityId(userIdentity("alice")), "user-alice");
  });
});

describe("permission templates (golden, spec §3)", () => {
  test("agent", () => {
    assert.deepEqual(permissionsFor(agentIdentity("alpha", "a1")), {
      publish: {
        allow: [
          "$JS.API.CONSUMER.INFO.JOBS.alpha",
          "$JS.API.CONSUMER.MSG.NEXT.JOBS.alpha",
          "$JS.ACK.JOBS.alpha.>",
          "gt.results.alpha.a1.>",
          "gt.hb.alpha.a1",
        ],
      },
      subscribe: { allow: ["_INBOX.site.alpha.a1.>", "gt.ctl.alpha.>"] },
    });
  });
  test("user", () => {
    assert.deepEqual(permissionsFor(userIdentity("alice")), {
      publish: { allow: ["gt.api.alice.>"] },
      subscribe: { allow: ["_INBOX.user.alice.>", "gt.events.alice.>"] },
    });
  });
  test("steering", () => {
    assert.deepEqual(permissionsFor({ role: "steering" }), {
      publish: { allow: [">"] },
      subscribe: { allow: [">"] },
    });
  });
  test("steering-api: serves the request subjects, publishes only into requesters' inboxes", () => {
    assert.deepEqual(permissionsFor({ role: "steering-api" }), {
      publish: { allow: ["_INBOX.user.*.>", "_INBOX.site.*.*.>"] },
      subscribe: { allow: ["gt.api.*.>", "gt.hb.*.*"] },
    });
  });
});

const KEY_A = "U" + "A".repeat(55);
const KEY_B = "U" + "B".repeat(55);
const tls = { certFile: "/p/server.pem", keyFile: "/p/server-key.pem", caFile: "/p/ca.pem" };

describe("nats-server configuration", () => {
  test("renders accounts, users with permissions, JetStream and TLS as JSON", () => {
    const text = renderNatsConfig({
      host: "127.0.0.1",
      port: 4222,
      monitorPort: 8222,
      storeDir: "/s/js",
      tls,
      identities: [
        { identity: agentIdentity("alpha", "a1"), publicKey: KEY_A },
        { identity: userIdentity("alice"), publicKey: KEY_B },
      ],
    });
    const cfg = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(cfg, {
      host: "127.0.0.1",
      port: 4222,
      http: "127.0.0.1:8222",
      jetstream: { store_dir: "/s/js" },
      tls: { cert_file: tls.certFile, key_file: tls.keyFile, ca_file: tls.caFile, verify: false, timeout: 5 },
      accounts: {
        GRIDTUNE: {
          jetstream: "enabled",
          users: [
            { nkey: KEY_A, permissions: permissionsFor(agentIdentity("alpha", "a1")) },
            { nkey: KEY_B, permissions: permissionsFor(userIdentity("alice")) },
          ],
        },
        SYS: { users: [] },
      },
      system_account: "SYS",
    });
  });
  test("mTLS switch, and refusals of bad names, keys and duplicates", () => {
    const base = { host: "0.0.0.0", port: 4222, storeDir: "/s", identities: [] };
    const cfg = JSON.parse(renderNatsConfig({ ...base, tls: { ...tls, verify: true } })) as {
      tls: { verify: boolean };
    };
    assert.equal(cfg.tls.verify, true);
    const bad = (identities: unknown) =>
      assert.throws(
        () => renderNatsConfig({ ...base, tls, identities } as Parameters<typeof renderNatsConfig>[0]),
        ValidationError,
      );
    bad([{ identity: { role: "agent", site: "a.*", agent: "x" }, publicKey: KEY_A }]);
    bad([{ identity: { role: "user", user: "bob" }, publicKey: "SUAAAA" }]);
    bad([
      { identity: { role: "user", user: "bob" }, publicKey: KEY_A },
      { identity: { role: "user", user: "eve" }, publicKey: KEY_A },
    ]);
  });
});

describe("IdentityStore", () => {
  test("seeds and identities.json are 0600; ensure is idempotent; rotate and remove-site", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gt-idstore-"));
    try {
      const store = new IdentityStore(dir);
      const a1 = agentIdentity("alpha", "a1");
      const first = await store.ensure(a1);
      assert.equal(first.created, true);
      assert.match(first.record.publicKey, /^U[A-Z2-7]{55}$/);
      assert.equal(first.seedFile, join(dir, "seeds", "agent-alpha.a1.nk"));
      assert.equal((await stat(first.seedFile)).mode & 0o777, 0o600);
      assert.equal((await stat(store.file)).mode & 0o777, 0o600);
      assert.equal((await stat(store.seedsDir)).mode & 0o777, 0o700);
      assert.match(await readFile(first.seedFile, "utf8"), /^SU[A-Z2-7]{56}$/);
      // The public file never holds a seed.
      assert.doesNotMatch(await readFile(store.file, "utf8"), /\bSU[A-Z2-7]{56}\b/);
      const again = await store.ensure(a1);
      assert.equal(again.created, false);
      assert.equal(again.record.publicKey, first.record.publicKey);

      const rotated = await store.rotate(a1);
      assert.notEqual(rotated.record.publicKey, first.record.publicKey);

      await store.ensure(agentIdentity("alpha", "a2"));
      await store.ensure(agentIdentity("beta", "b1"));
      await store.ensure(userIdentity("alpha"));
      const removed = await store.removeSite("alpha");
      assert.deepEqual(removed.map((r) => identityId(r.identity)).sort(), [
        "agent-alpha.a1",
        "agent-alpha.a2",
      ]);
      assert.deepEqual((await store.list()).map((r) => identityId(r.identity)).sort(), [
        "agent-beta.b1",
        "user-alpha",
      ]);
      assert.deepEqual((await readdir(store.seedsDir)).sort(), ["agent-beta.b1.nk", "user-alpha.nk"]);
      assert.deepEqual(await store.remove(agentIdentity("nope", "x")), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
