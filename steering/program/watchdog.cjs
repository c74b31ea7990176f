// @ts-check
// Runs one local steering program (steeringExec without steeringContainer) for steering, and takes
// it down with steering. Why: the program runs detached (its own process group, so a timeout kills
// what it started too), and a detached process outlives a steering killed with SIGKILL: it would go
// on for up to the iteration timeout, writing into a scratch directory the restarted steering has
// already removed. This watchdog is steering's child with an IPC channel; the channel closes when
// steering exits for whatever reason, and the watchdog then kills the program's group and exits.
// Plain CommonJS with node's built-ins only, so it starts without the TypeScript loader (~40 ms).
//
//   node programWatchdog.cjs FILE [ARG…]     (cwd and env are the program's)
// Protocol (IPC): steering → watchdog {t: "kill"}
//                 watchdog → steering {t: "failed", code, message} | {t: "exit", code, signal}
// The program inherits the watchdog's stdout and stderr (steering's pipes), so its output goes to
// steering without a relay.
"use strict";
const { spawn } = require("node:child_process");

const [file, ...args] = process.argv.slice(2);
/** @type {import("node:child_process").ChildProcess | undefined} */
let child;

/**
 * Tells steering, then calls `then` once the message is written (or at once without a channel).
 * @param {object} m
 * @param {() => void} [then]
 */
function send(m, then = () => {}) {
  if (process.connected && process.send) process.send(m, undefined, undefined, () => then());
  else then();
}
process.on("error", () => {}); // an IPC write racing the disconnect

function killGroup() {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // the group is already gone
  }
}

process.on("message", (/** @type {any} */ m) => {
  if (m && m.t === "kill") killGroup();
});
process.on("disconnect", () => {
  killGroup();
  process.exit(0);
});

if (file === undefined) {
  send({ t: "failed", code: "EINVAL", message: "no program named" }, () => process.exit(2));
} else {
  run(file);
}

/** @param {string} program */
function run(program) {
  try {
    child = spawn(program, args, { detached: true, stdio: ["ignore", "inherit", "inherit"], shell: false });
  } catch (e) {
    const err = /** @type {NodeJS.ErrnoException} */ (e);
    send({ t: "failed", code: err.code ?? "EINVAL", message: err.message }, () => process.exit(2));
    return;
  }
  let started = false;
  child.once("spawn", () => {
    started = true;
  });
  child.once("error", (e) => {
    const err = /** @type {NodeJS.ErrnoException} */ (e);
    if (!started)
      send({ t: "failed", code: err.code ?? "EINVAL", message: err.message }, () => process.exit(2));
  });
  // the channel keeps this process alive: it exits once steering has the program's status
  child.once("exit", (code, signal) => send({ t: "exit", code, signal }, () => process.exit(0)));
}
