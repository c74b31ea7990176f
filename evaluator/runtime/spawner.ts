// How the process runtime starts a payload: directly (child_process.spawn from the agent), or
// through the spawn helper (spawnHelper.cjs), a lean child of the agent that forks for it; fork()
// costs grow with the caller's memory, so the helper makes a start several times cheaper (see the
// helper's header). Both give the runtime the same SpawnedChild: pid, stdout, stderr and the
// spawn/error/exit events of a ChildProcess. The payload always runs in its own process group.
import { fork, spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { PassThrough, type Readable } from "node:stream";

export interface SpawnOptions {
  cwd: string;
  env: Record<string, string>;
}

/** The part of a ChildProcess that the process runtime uses. */
export interface SpawnedChild {
  readonly pid?: number | undefined;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  once(event: "spawn", fn: () => void): this;
  once(event: "error", fn: (err: Error) => void): this;
  once(event: "exit", fn: (code: number | null, signal: NodeJS.Signals | null) => void): this;
}

export interface Spawner {
  spawn(file: string, args: string[], o: SpawnOptions): SpawnedChild;
  close(): void;
}

export class DirectSpawner implements Spawner {
  spawn(file: string, args: string[], o: SpawnOptions): SpawnedChild {
    return spawn(file, args, {
      cwd: o.cwd,
      env: o.env,
      // Own process group: stop signals go to -pid and so reach the whole tree.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      shell: false,
    });
  }
  close(): void {}
}

const HELPER = new URL("./spawnHelper.cjs", import.meta.url).pathname;

type HelperMessage =
  | { t: "ready" }
  | { t: "spawned"; id: number; pid: number }
  | { t: "failed"; id: number; code: string; message: string }
  | { t: "out"; id: number; fd: 1 | 2; data: Uint8Array }
  | { t: "eof"; id: number; fd: 1 | 2 }
  | { t: "exit"; id: number; code: number | null; signal: NodeJS.Signals | null };

class HelperChild extends EventEmitter implements SpawnedChild {
  pid: number | undefined = undefined;
  // Output written before anyone reads it stays buffered in the streams.
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  /** Both streams ended and the exit seen: the helper has nothing more to say about it. */
  pending = 3;
  private exit: [number | null, NodeJS.Signals | null] | null = null;

  get exited(): boolean {
    return this.exit !== null;
  }

  exitWith(code: number | null, signal: NodeJS.Signals | null): void {
    this.exit = [code, signal];
    this.emit("exit", code, signal);
  }

  // The spawn and the exit can come in one IPC read, before the runtime has added its exit
  // listener (a ChildProcess never does that): a listener added after the exit still gets it.
  override once(event: string | symbol, fn: (...args: never[]) => void): this {
    const exit = this.exit;
    if (event === "exit" && exit) {
      queueMicrotask(() => (fn as (c: number | null, s: NodeJS.Signals | null) => void)(...exit));
      return this;
    }
    return super.once(event, fn as (...args: unknown[]) => void);
  }
}

export class HelperSpawner implements Spawner {
  private proc: ChildProcess | null = null;
  private nextId = 1;
  private readonly children = new Map<number, HelperChild>();
  private closed = false;

  spawn(file: string, args: string[], o: SpawnOptions): SpawnedChild {
    const child = new HelperChild();
    const id = this.nextId++;
    this.children.set(id, child);
    // Messages sent before the helper is up wait in the IPC channel.
    this.helper().send({ t: "spawn", id, file, args, cwd: o.cwd, env: o.env });
    return child;
  }

  /** Disconnects the helper: it kills the groups of payloads still running (none, after the runtime's close) and exits. */
  close(): void {
    this.closed = true;
    if (this.proc?.connected) this.proc.disconnect();
  }

  private helper(): ChildProcess {
    if (this.proc?.connected) return this.proc;
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // the helper must not load the agent's loaders: it would grow as large
    const proc = fork(HELPER, [], {
      execArgv: [],
      env,
      serialization: "advanced",
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    proc.on("message", (m: HelperMessage) => this.onMessage(m));
    proc.once("exit", () => this.lost(proc));
    proc.once("error", () => this.lost(proc));
    this.proc = proc;
    return proc;
  }

  private onMessage(m: HelperMessage): void {
    if (m.t === "ready") return;
    const c = this.children.get(m.id);
    if (!c) return;
    switch (m.t) {
      case "spawned":
        c.pid = m.pid;
        c.emit("spawn");
        return;
      case "failed":
        this.children.delete(m.id);
        c.emit("error", Object.assign(new Error(m.message), { code: m.code }));
        return;
      case "out":
        (m.fd === 1 ? c.stdout : c.stderr).write(Buffer.from(m.data));
        return;
      case "eof":
        (m.fd === 1 ? c.stdout : c.stderr).end();
        break;
      case "exit":
        c.exitWith(m.code, m.signal);
        break;
    }
    if (--c.pending === 0) this.children.delete(m.id);
  }

  /**
   * The helper died (killed, out of memory): its payloads lose their output pipes, so they are
   * killed and reported as killed; a payload not yet started fails to start. The next spawn
   * starts a new helper.
   */
  private lost(proc: ChildProcess): void {
    if (this.proc !== proc) return;
    this.proc = null;
    const children = [...this.children.values()];
    this.children.clear();
    for (const c of children) {
      if (c.pid === undefined) {
        if (!this.closed)
          c.emit("error", Object.assign(new Error("the spawn helper exited"), { code: "EAGAIN" }));
        continue;
      }
      try {
        process.kill(-c.pid, "SIGKILL");
      } catch {
        // the group is already gone
      }
      for (const s of [c.stdout, c.stderr]) if (!s.writableEnded) s.end();
      if (!c.exited) c.exitWith(null, "SIGKILL");
    }
  }
}
