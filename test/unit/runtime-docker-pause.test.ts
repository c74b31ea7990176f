// The docker runtime pairs every pause of a container with an unpause, on every path, against a
// stub daemon that records the calls (no dockerd): a stop while held (the SIGTERM goes out first,
// then the unpause, so the payload handles it before training on), the wall clock while held, a
// daemon lost while held (the unpause is still tried before the removal), and an unpause the
// daemon refused (tried again when the run stops). The stub's container, like a frozen one,
// handles a signal only once unpaused.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import type Docker from "dockerode";
import { DockerRuntime } from "../../evaluator/runtime/docker.ts";
import type { PauseControl, RunSpec } from "../../evaluator/runtime/types.ts";
import { RuntimeError } from "../../protocol/errors.ts";

interface StubOptions {
  /** Calls that fail once, e.g. "unpause#1" (the daemon's 500). */
  fail?: string[];
  /** The wait stream breaks (a daemon that went away) once the container is paused. */
  loseDaemonWhenPaused?: boolean;
}

function stubDaemon(o: StubOptions = {}) {
  const calls: string[] = [];
  const count = new Map<string, number>();
  let paused = false;
  let pendingSignal: string | null = null;
  let exited = false;
  let exit!: (code: number) => void;
  let lose!: (e: Error) => void;
  const exitCode = new Promise<number>((resolve, reject) => {
    exit = (code) => {
      exited = true;
      resolve(code);
    };
    lose = reject;
  });
  exitCode.catch(() => undefined);
  const call = (name: string, fn: () => void = () => undefined): Promise<unknown> => {
    calls.push(name);
    const n = (count.get(name) ?? 0) + 1;
    count.set(name, n);
    if (o.fail?.includes(`${name}#${n}`))
      return Promise.reject(Object.assign(new Error(`${name} failed`), { statusCode: 500 }));
    fn();
    return Promise.resolve({});
  };
  const deliver = (): void => {
    if (!paused && pendingSignal && !exited) exit(pendingSignal === "SIGKILL" ? 137 : 143);
  };
  const container = {
    id: "stub0000",
    attach: () => Promise.resolve(new PassThrough()),
    start: () => call("start"),
    wait: () => exitCode.then((StatusCode) => ({ StatusCode })),
    inspect: () =>
      Promise.resolve({
        State: { Running: !exited, ExitCode: 143, OOMKilled: false },
        Config: { Labels: {} },
      }),
    kill: (opts: { signal: string }) =>
      call(`kill:${opts.signal}`, () => {
        pendingSignal = opts.signal;
        deliver();
      }),
    pause: () =>
      call("pause", () => {
        paused = true;
        if (o.loseDaemonWhenPaused) lose(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
      }),
    unpause: () =>
      call("unpause", () => {
        paused = false;
        deliver();
      }),
    remove: () => call("remove"),
  };
  const docker = {
    info: () => Promise.resolve({ SecurityOptions: [] }),
    getImage: () => ({ inspect: () => Promise.resolve({ Id: "sha256:stub" }) }),
    createContainer: () => Promise.resolve(container),
    modem: { demuxStream: () => undefined },
  } as unknown as Docker;
  return { docker, calls };
}

/** Only the calls the hold and the stop make, in order. */
const holdCalls = (calls: string[]) => calls.filter((c) => c !== "start");

void describe("DockerRuntime: pause and unpause are paired on every path (stub daemon)", () => {
  let root = "";
  let seq = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "gt-dockerpause-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const newSpec = async (over: Partial<RunSpec> = {}): Promise<RunSpec> => {
    const workDir = await mkdtemp(join(root, "wd-"));
    return {
      key: `stub-${++seq}`,
      image: "gridtune/busybox:1",
      argv: ["sh"],
      workDir,
      env: {},
      limits: { wallClockMs: 20_000 },
      network: "none",
      gpus: [],
      logFile: join(root, `stub-${seq}.log`),
      maxLogBytes: 4096,
      stopGraceMs: 10_000,
      ...over,
    };
  };

  /** Runs a container, pauses it once started, then `then(control, abort)`. */
  async function runHeld(
    o: StubOptions,
    then: (control: PauseControl, abort: () => void) => Promise<void> | void,
    over: Partial<RunSpec> = {},
  ) {
    const { docker, calls } = stubDaemon(o);
    const runtime = new DockerRuntime({ docker, drainMs: 10, watchdogMs: 60_000 });
    const ac = new AbortController();
    let control: PauseControl | null = null;
    const run = runtime.run(await newSpec(over), { signal: ac.signal, onStarted: (c) => (control = c) });
    while (!control) await sleep(1);
    const c: PauseControl = control;
    await c.pause();
    await then(c, () => ac.abort());
    const outcome = await run.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    await runtime.close();
    return { outcome, calls: holdCalls(calls) };
  }

  void it("a stop while held: SIGTERM first, then the unpause; the agent's own resume waits for it", async () => {
    const { outcome, calls } = await runHeld({}, async (control, abort) => {
      abort();
      await control.resume(); // the judge gate's resume on the same stop
    });
    assert.deepEqual(calls, ["pause", "kill:SIGTERM", "unpause", "remove"]);
    assert.ok(!(outcome instanceof Error) && outcome.stopped && outcome.exitCode === 143);
  });

  void it("the wall clock while held: the same order, and the run is timed out", async () => {
    const { outcome, calls } = await runHeld({}, () => undefined, { limits: { wallClockMs: 100 } });
    assert.deepEqual(calls, ["pause", "kill:SIGTERM", "unpause", "remove"]);
    assert.ok(!(outcome instanceof Error) && outcome.timedOut);
  });

  void it("a daemon lost while held: the run fails, and the unpause is still tried before the removal", async () => {
    const { outcome, calls } = await runHeld({ loseDaemonWhenPaused: true }, () => undefined);
    assert.ok(
      outcome instanceof RuntimeError && outcome.code === "RUNTIME_UNAVAILABLE",
      JSON.stringify(outcome),
    );
    assert.deepEqual(calls, ["pause", "unpause", "remove"]);
  });

  void it("an unpause the daemon refused is tried again when the run stops", async () => {
    const { outcome, calls } = await runHeld({ fail: ["unpause#1"] }, async (control, abort) => {
      await control.resume(); // refused by the daemon: still paused
      abort();
    });
    assert.deepEqual(calls, ["pause", "unpause", "kill:SIGTERM", "unpause", "remove"]);
    assert.ok(!(outcome instanceof Error) && outcome.exitCode === 143, "handled its SIGTERM once unpaused");
  });
});
