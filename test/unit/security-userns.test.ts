// userns-remap: the working directory's owner under a daemon that shifts container ids into the
// remap user's subordinate ranges (docs/security.md). Pure functions, plus the runtime's detection
// through a stub daemon (no dockerd is reconfigured).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type Docker from "dockerode";
import { RuntimeError } from "../../protocol/errors.ts";
import {
  DEFAULT_REMAP_USER,
  isUsernsRemapped,
  mapContainerId,
  parseSubordinateRanges,
  remappedOwner,
} from "../../evaluator/runtime/containerConfig.ts";
import { DockerRuntime } from "../../evaluator/runtime/docker.ts";

// What `dockerd --userns-remap=default` wrote on this kind of host, plus other users' lines.
const SUBUID = `# managed by useradd
alice:100000:65536
dockremap:165536:65536
1001:300000:65536
`;
const SUBGID = `alice:100000:65536
dockremap:231072:65536
`;

describe("userns-remap detection", () => {
  it("recognises name=userns among the daemon's security options", () => {
    assert.equal(isUsernsRemapped(["name=seccomp,profile=default", "name=userns"]), true);
    assert.equal(isUsernsRemapped(["name=apparmor", "name=userns,foo=bar"]), true);
    assert.equal(isUsernsRemapped(["name=seccomp,profile=default"]), false);
    assert.equal(isUsernsRemapped(["name=usernsx"]), false);
    assert.equal(isUsernsRemapped(undefined), false);
  });
});

describe("subordinate ranges", () => {
  it("parses the remap user's lines, by name or numeric id, and skips the rest", () => {
    assert.deepEqual(parseSubordinateRanges(SUBUID, "dockremap"), [{ start: 165536, count: 65536 }]);
    assert.deepEqual(parseSubordinateRanges(SUBUID, "bob", 1001), [{ start: 300000, count: 65536 }]);
    assert.deepEqual(parseSubordinateRanges(SUBUID, "nobody"), []);
    assert.deepEqual(parseSubordinateRanges("dockremap:x:1\ndockremap:5:0\n\n", "dockremap"), []);
  });

  it("maps container ids through the ranges in order of their start", () => {
    const ranges = parseSubordinateRanges("u:500000:10\nu:100000:1000\n", "u");
    assert.deepEqual(ranges, [
      { start: 100000, count: 1000 },
      { start: 500000, count: 10 },
    ]);
    assert.equal(mapContainerId(ranges, 0), 100000);
    assert.equal(mapContainerId(ranges, 999), 100999);
    assert.equal(mapContainerId(ranges, 1000), 500000);
    assert.equal(mapContainerId(ranges, 1009), 500009);
    assert.equal(mapContainerId(ranges, 1010), undefined);
  });

  it("container 1000:1000 → host start+1000 for uid and gid separately", () => {
    assert.equal(DEFAULT_REMAP_USER, "dockremap");
    assert.deepEqual(remappedOwner({ uid: 1000, gid: 1000 }, SUBUID, SUBGID), { uid: 166536, gid: 232072 });
    assert.deepEqual(remappedOwner({ uid: 1000, gid: 1000 }, SUBUID, SUBGID, "alice"), {
      uid: 101000,
      gid: 101000,
    });
  });

  it("refuses clearly when the remap user has no range or the id is outside it", () => {
    assert.throws(
      () => remappedOwner({ uid: 1000, gid: 1000 }, "", SUBGID),
      (e) =>
        e instanceof RuntimeError &&
        e.code === "INVALID_CONFIG" &&
        /no range for "dockremap"/.test(e.message),
    );
    assert.throws(
      () => remappedOwner({ uid: 70000, gid: 1000 }, SUBUID, SUBGID),
      (e) => e instanceof RuntimeError && /container id 70000 is outside/.test(e.message),
    );
  });
});

describe("DockerRuntime.workDirOwner (stub daemon)", () => {
  const stub = (SecurityOptions: string[]) =>
    ({ info: () => Promise.resolve({ SecurityOptions }) }) as unknown as Docker;

  it("is the configured uid:gid without remap, and the shifted ids with it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gt-userns-"));
    try {
      const subuidFile = join(dir, "subuid");
      const subgidFile = join(dir, "subgid");
      await writeFile(subuidFile, SUBUID);
      await writeFile(subgidFile, SUBGID);
      const plain = new DockerRuntime({
        docker: stub(["name=seccomp,profile=default"]),
        subuidFile,
        subgidFile,
      });
      assert.deepEqual(await plain.workDirOwner(), { uid: 1000, gid: 1000 });
      const remapped = new DockerRuntime({
        docker: stub(["name=seccomp,profile=default", "name=userns"]),
        user: "1000:1001",
        subuidFile,
        subgidFile,
      });
      assert.deepEqual(await remapped.workDirOwner(), { uid: 166536, gid: 232073 });
      const missing = new DockerRuntime({
        docker: stub(["name=userns"]),
        subuidFile: join(dir, "absent"),
        subgidFile,
      });
      await assert.rejects(missing.workDirOwner(), /has no range for "dockremap"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
