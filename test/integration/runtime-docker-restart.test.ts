// A Docker daemon that dies under a running evaluation: the run fails with RUNTIME_UNAVAILABLE
// and a clear reason, and once the daemon is back the same runtime serves the next run. The
// daemon here is a private dockerd (own data root, exec root and socket, no bridge or iptables) in
// its own network namespace, so the machine's daemon, its containers and its network (a dockerd
// with --bridge=none in the host's namespace deletes the host's docker0) are never touched.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, openSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Docker from "dockerode";
import { RuntimeError } from "../../protocol/errors.ts";
import { DockerRuntime } from "../../evaluator/runtime/docker.ts";
import type { RunSpec } from "../../evaluator/runtime/types.ts";
import { dockerAnswers } from "../../stack/images.ts";
import { BUSYBOX_IMAGE, ensureTestImages } from "../harness/images.ts";

const DOCKERD = "/usr/sbin/dockerd";

async function startPrivateDockerd(root: string, socket: string): Promise<ChildProcess> {
  const child = spawn(
    "unshare", // `unshare --net` execs dockerd in a fresh network namespace: the child is dockerd
    [
      "--net",
      DOCKERD,
      "--data-root",
      join(root, "data"),
      "--exec-root",
      join(root, "exec"),
      "--pidfile",
      join(root, "dockerd.pid"),
      "-H",
      `unix://${socket}`,
      "--bridge=none",
      "--iptables=false",
      "--ip-masq=false",
    ],
    { stdio: ["ignore", openSync(join(root, "dockerd.log"), "a"), openSync(join(root, "dockerd.log"), "a")] },
  );
  for (let i = 0; i < 150 && !(await dockerAnswers(socket)); i++)
    await new Promise((r) => setTimeout(r, 200));
  if (!(await dockerAnswers(socket))) {
    const log = await readFile(join(root, "dockerd.log"), "utf8").catch(() => "");
    assert.fail(`the private dockerd did not start within 30 s:\n${log.split("\n").slice(-8).join("\n")}`);
  }
  return child;
}

/** Unmounts what the private daemon mounted under its root (its data root, overlays), deepest first. */
async function unmountUnder(root: string): Promise<void> {
  const mounts = (await readFile("/proc/mounts", "utf8"))
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(root))
    .sort()
    .reverse();
  for (const m of mounts) spawnSync("umount", ["-l", m]);
}

/** Kills every process (containerd, shims) started under `dir`, and waits until they are gone. */
async function killLeftovers(dir: string): Promise<void> {
  const pids: number[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (!cmd.includes(dir)) continue;
    try {
      process.kill(Number(pid), "SIGKILL");
      pids.push(Number(pid));
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 100 && pids.some((p) => existsSync(`/proc/${p}`)); i++)
    await new Promise((r) => setTimeout(r, 100));
}

describe("a Docker daemon restart under a running evaluation", { timeout: 180_000 }, () => {
  let root: string;
  let socket: string;
  let dockerd: ChildProcess;

  before(async () => {
    assert.equal(
      process.getuid?.(),
      0,
      "this test starts a private dockerd and must run as root (npm test does)",
    );
    await ensureTestImages();
    root = await mkdtemp(join(tmpdir(), "gt-dockerd-"));
    socket = join(root, "docker.sock");
    dockerd = await startPrivateDockerd(root, socket);
    // The image comes from the machine's daemon (no registry): save there, load here.
    const image = await new Docker().getImage(BUSYBOX_IMAGE).get();
    const priv = new Docker({ socketPath: socket });
    await new Promise<void>((resolve, reject) => {
      priv.loadImage(image, {}, (err, stream) => {
        if (err || !stream) return reject(err instanceof Error ? err : new Error("no load stream"));
        priv.modem.followProgress(stream, (e) => (e ? reject(e) : resolve()));
      });
    });
  });

  after(async () => {
    dockerd?.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1500));
    await killLeftovers(root);
    await unmountUnder(root);
    await rm(root, { recursive: true, force: true });
  });

  it("fails the run with RUNTIME_UNAVAILABLE, then serves the next run once the daemon is back", async () => {
    const hostBridge = existsSync("/sys/class/net/docker0");
    const runtime = new DockerRuntime({
      socketPath: socket,
      allowedImages: [BUSYBOX_IMAGE],
      watchdogMs: 500,
    });
    const spec = async (key: string, script: string): Promise<RunSpec> => {
      const workDir = join(root, "work", key);
      await mkdir(workDir, { recursive: true });
      return {
        key,
        image: BUSYBOX_IMAGE,
        argv: ["sh", "-c", script],
        workDir,
        env: {},
        limits: { wallClockMs: 60_000, memoryBytes: 64 << 20 },
        network: "none",
        gpus: [],
        logFile: join(root, `${key}.log`),
        maxLogBytes: 1 << 20,
        stopGraceMs: 1000,
      };
    };
    try {
      const running = runtime.run(await spec("long", "echo started; sleep 60"), {
        signal: new AbortController().signal,
      });
      await new Promise((r) => setTimeout(r, 2000));
      const t0 = Date.now();
      dockerd.kill("SIGKILL");
      await assert.rejects(running, (e: unknown) => {
        assert.ok(e instanceof RuntimeError, String(e));
        assert.equal(e.code, "RUNTIME_UNAVAILABLE");
        assert.match(e.message, /dockerd|daemon/);
        return true;
      });
      assert.ok(Date.now() - t0 < 15_000, `the loss was noticed after ${Date.now() - t0} ms`);
      // While the daemon is down, a run is refused at once with the socket named.
      await assert.rejects(
        runtime.run(await spec("down", "true"), { signal: new AbortController().signal }),
        /RUNTIME_UNAVAILABLE|cannot reach the Docker daemon|docker\.sock/,
      );
      // The killed daemon's containerd and shims hold the exec root: end them and start afresh.
      await killLeftovers(join(root, "exec"));
      await unmountUnder(join(root, "exec"));
      await rm(join(root, "exec"), { recursive: true, force: true });
      dockerd = await startPrivateDockerd(root, socket);
      const ok = await runtime.run(await spec("after", "echo back > out.txt"), {
        signal: new AbortController().signal,
      });
      assert.equal(ok.exitCode, 0);
      assert.equal((await readFile(join(root, "work", "after", "out.txt"), "utf8")).trim(), "back");
    } finally {
      await runtime.close();
    }
    assert.equal(
      existsSync("/sys/class/net/docker0"),
      hostBridge,
      "the host's docker0 bridge was left as it was",
    );
  });
});
