// Steering's service configuration: the two NATS identities (issue 14). A deployment from before
// the split passes only --seed-file; it is refused with the steps that fix it, not a bare
// "required" on a field it has never heard of.
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { addSteering } from "../../steering/security/admin.ts";

const env = {
  NATS_URL: "tls://127.0.0.1:4222",
  GRIDTUNE_SEED_FILE: "/s/seeds/steering.nk",
  S3_ENDPOINT: "http://127.0.0.1:9000",
  AWS_ACCESS_KEY_ID: "k",
  AWS_SECRET_ACCESS_KEY: "s",
};

void describe("steering config: two identities", () => {
  void it("takes the steering-api seed from --api-seed-file or GRIDTUNE_API_SEED_FILE", () => {
    const fromEnv = compileSteeringConfig({}, { ...env, GRIDTUNE_API_SEED_FILE: "/s/seeds/steering-api.nk" });
    assert.equal(fromEnv.seedFile, "/s/seeds/steering.nk");
    assert.equal(fromEnv.apiSeedFile, "/s/seeds/steering-api.nk");
    const fromFlag = compileSteeringConfig(
      { apiSeedFile: "/f.nk" },
      { ...env, GRIDTUNE_API_SEED_FILE: "/e.nk" },
    );
    assert.equal(fromFlag.apiSeedFile, "/f.nk");
  });

  void it("a single-seed deployment is refused with the migration steps", () => {
    assert.throws(
      () => compileSteeringConfig({}, env),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.equal(e.code, "INVALID_CONFIG");
        assert.match(e.message, /--api-seed-file or GRIDTUNE_API_SEED_FILE/);
        assert.match(e.message, /gridtune-steering admin add-steering/);
        assert.match(e.message, /seeds\/steering-api\.nk/);
        return true;
      },
    );
  });
});

void describe("admin add-steering", () => {
  void it("makes both steering seeds (0600) once; a second call keeps them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gt-add-steering-"));
    try {
      const first = await addSteering(dir);
      assert.deepEqual(
        first.identities.map((i) => [i.name, i.created]),
        [
          ["steering", true],
          ["steering-api", true],
        ],
      );
      assert.equal((await stat(join(dir, "seeds", "steering-api.nk"))).mode & 0o777, 0o600);
      assert.equal(first.reloaded, false, "no stack set up in this directory yet");
      const again = await addSteering(dir);
      assert.deepEqual(
        again.identities.map((i) => [i.publicKey, i.created]),
        first.identities.map((i) => [i.publicKey, false]),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
