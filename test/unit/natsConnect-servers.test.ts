// The server list every service and phpo accept: a URL, a comma-separated list, or a list; a bad
// entry is refused up front with the setting's name and the fix, before any connection is tried.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ValidationError } from "../../protocol/errors.ts";
import { parseNatsServers } from "../../protocol/natsConnect.ts";

describe("parseNatsServers", () => {
  test("one URL, a comma-separated list (spaces allowed) and a list give the same servers", () => {
    assert.deepEqual(parseNatsServers("tls://127.0.0.1:4222"), ["tls://127.0.0.1:4222"]);
    const three = ["tls://10.0.0.1:4222", "tls://10.0.0.2:4222", "tls://10.0.0.3:4222"];
    assert.deepEqual(
      parseNatsServers(" tls://10.0.0.1:4222, tls://10.0.0.2:4222 ,tls://10.0.0.3:4222"),
      three,
    );
    assert.deepEqual(parseNatsServers(three), three);
  });

  test("host:port without a scheme is kept (nats.js takes it); a repeated entry is dropped", () => {
    assert.deepEqual(parseNatsServers("127.0.0.1:4222,nats://h:1,127.0.0.1:4222"), [
      "127.0.0.1:4222",
      "nats://h:1",
    ]);
  });

  for (const [bad, why] of [
    ["", /NATS_URL is empty/],
    [" , ", /NATS_URL is empty/],
    ["tls://a:1,,tls://b:2", /entry 2 is empty/],
    ["http://a:4222", /not a NATS server URL/],
    ["tls://a:4222/path", /not a NATS server URL/],
    ["tls://a:99999", /not a URL/],
  ] as const) {
    test(`${JSON.stringify(bad)} is refused naming the setting and the fix`, () => {
      assert.throws(
        () => parseNatsServers(bad, "NATS_URL"),
        (e) => {
          assert.ok(e instanceof ValidationError, String(e));
          assert.equal(e.code, "INVALID_CONFIG");
          assert.match(e.message, why);
          assert.match(e.message, /separated by commas/);
          return true;
        },
      );
    });
  }

  test("the field named is the one the caller gives", () => {
    assert.throws(() => parseNatsServers("ftp://x", "natsUrl in client.json"), /natsUrl in client\.json/);
  });
});
