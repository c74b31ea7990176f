// @ts-check
// The process runtime's spawn helper: a small child of the agent that starts the payloads on its
// behalf. Why: fork() copies the page tables of the calling process, so its cost grows with the
// caller's memory. From the agent (about 140 MB resident: the TypeScript loader, zod, nats.js) a
// spawn costs about 5 ms of CPU on a 2-core VM; from this helper (plain JavaScript, node's
// built-ins only, under 60 MB) about 1 ms. It is plain CommonJS on purpose: it must start without
// the TypeScript loader, which would make it as large as the agent.
//
// Protocol (IPC channel, "advanced" serialization so output chunks travel as bytes):
//   agent → helper  {t: "spawn", id, file, args, cwd, env}
//   helper → agent  {t: "spawned", id, pid} | {t: "failed", id, code, message}
//                   {t: "out", id, fd: 1 | 2, data} | {t: "eof", id, fd} | {t: "exit", id, code, signal}
// Payloads run detached (their own process group), exactly as a direct spawn would run them; the
// agent signals the group itself. When the agent goes away (its IPC channel closes: it exited, or
// was killed with SIGKILL) the helper kills the groups of the payloads still running and exits:
// nobody would report their results, steering gives their jobs to other agents once the leases
// lapse, and an orphan would only burn the node's CPU or GPU meanwhile.
"use strict";
const { spawn } = require("node:child_process");

/** Process group ids of the payloads started and not yet exited. */
const running = new Set();

/** @param {object} m */
function send(m) {
  // After the agent has gone (disconnect) there is nobody to tell; the helper is exiting.
  if (process.connected) process.send?.(m, undefined, undefined, () => {});
}
process.on("error", () => {}); // an IPC write racing the disconnect

/** @param {{t: string, id: number, file: string, args: string[], cwd: string, env: Record<string, string>}} m */
function start(m) {
  let child;
  try {
    child = spawn(m.file, m.args, {
      cwd: m.cwd,
      env: m.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      shell: false,
    });
  } catch (e) {
    const err = /** @type {NodeJS.ErrnoException} */ (e);
    return send({ t: "failed", id: m.id, code: err.code ?? "EINVAL", message: err.message });
  }
  let started = false;
  child.once("spawn", () => {
    started = true;
    if (child.pid !== undefined) running.add(child.pid);
    send({ t: "spawned", id: m.id, pid: child.pid });
  });
  child.once("error", (err) => {
    const e = /** @type {NodeJS.ErrnoException} */ (err);
    if (!started) send({ t: "failed", id: m.id, code: e.code ?? "EINVAL", message: e.message });
  });
  for (const [fd, stream] of /** @type {const} */ ([
    [1, child.stdout],
    [2, child.stderr],
  ])) {
    stream.on("data", (/** @type {Buffer} */ data) => send({ t: "out", id: m.id, fd, data }));
    stream.once("close", () => send({ t: "eof", id: m.id, fd }));
  }
  child.once("exit", (code, signal) => {
    if (child.pid !== undefined) running.delete(child.pid);
    send({ t: "exit", id: m.id, code, signal });
  });
}

process.on("message", (/** @type {any} */ m) => {
  if (m && m.t === "spawn") start(m);
});
process.on("disconnect", () => {
  for (const pgid of running) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // the group is already gone
    }
  }
  process.exit(0);
});
send({ t: "ready" });
