// The embedded stack's agent supervision without processes: a crash is reported and restarted, an
// exit that was asked for is not, and restarts are bounded per agent within the window.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { describe, it } from "node:test";
import { createLogger } from "../../protocol/log.ts";
import type { ServiceProcess } from "../../stack/embedded.ts";
import { MAX_RESTARTS, RESTART_WINDOW_MS, superviseAgent } from "../../stack/supervise.ts";

let pids = 100;
function fakeProcess(): ServiceProcess & { crash(): void; asked: boolean } {
  const child = Object.assign(new EventEmitter(), { pid: pids++ }) as unknown as ChildProcess;
  const p = {
    name: "agent a1",
    child,
    asked: false,
    get stopping() {
      return p.asked;
    },
    stop: () => ((p.asked = true), Promise.resolve(0)),
    kill: () => ((p.asked = true), Promise.resolve()),
    crash: () => void child.emit("exit", null, "SIGKILL"),
  };
  return p;
}

const tick = () => new Promise((r) => setImmediate(r));

void describe("embedded stack: agent supervision", () => {
  void it("restarts crashed agents, at most MAX_RESTARTS within the window; asked-for exits stay down", async () => {
    const lines: string[] = [];
    const logger = createLogger("stack", { level: "warn", sink: (l) => lines.push(l) });
    let clock = 0;
    const history: number[] = [];
    let current = fakeProcess();
    const started: ServiceProcess[] = [];
    const watch = (p: ReturnType<typeof fakeProcess>): void =>
      superviseAgent(p, {
        logger,
        history,
        now: () => clock,
        stopping: () => false,
        restart: () => {
          const next = fakeProcess();
          started.push(next);
          watch(next);
          return Promise.resolve(next);
        },
        replace: (next) => (current = next as ReturnType<typeof fakeProcess>),
      });
    watch(current);
    for (let i = 1; i <= MAX_RESTARTS; i++) {
      current.crash();
      await tick();
      assert.equal(started.length, i);
      clock += 1000;
    }
    current.crash();
    await tick();
    assert.equal(started.length, MAX_RESTARTS, "no restart past the bound");
    assert.match(
      lines.at(-1) ?? "",
      /agent a1 killed by SIGKILL; not restarted: it died 5 times within 60 s/,
    );
    assert.match(lines.join("\n"), /agent a1 killed by SIGKILL; restarting it \(1 of 5 within 60 s\)/);

    // once the window has passed, a crash is restarted again
    clock += RESTART_WINDOW_MS;
    const again = fakeProcess();
    current = again;
    watch(again);
    again.crash();
    await tick();
    assert.equal(started.length, MAX_RESTARTS + 1);

    // an exit that was asked for (stop/kill through the handle) is not a crash
    const n = started.length;
    await current.stop();
    current.crash();
    await tick();
    assert.equal(started.length, n);
  });
});
