// Pause and resume of a payload are paired on every path (evaluator/runtime/pauseHold.ts, what both
// runtimes use): the agent's resume, a stop while held (release), a hold nobody ends (its bound),
// a pause or resume call that fails, and a release racing a pause still in flight. The ops record
// what a runtime would send (docker pause/unpause, SIGSTOP/SIGCONT); time is a FakeClock's.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PauseHold, type PauseOps } from "../../evaluator/runtime/pauseHold.ts";
import { FakeClock } from "./fixtures/fakeClock.ts";

const BOUND_MS = 10_000;

/** Ops that log each call; `fail` names calls that reject (e.g. "pause#1": the first pause). */
function recorder(o: { fail?: string[]; slowPause?: Promise<void> } = {}) {
  const calls: string[] = [];
  const count = { pause: 0, resume: 0 };
  const op = (kind: "pause" | "resume") => async (): Promise<void> => {
    const n = ++count[kind];
    calls.push(kind);
    if (kind === "pause" && o.slowPause) await o.slowPause;
    if (o.fail?.includes(`${kind}#${n}`)) throw new Error(`daemon said no to ${kind} #${n}`);
  };
  const ops: PauseOps = { pause: op("pause"), resume: op("resume") };
  return { ops, calls };
}

function holdWith(ops: PauseOps) {
  const clock = new FakeClock();
  const notes: string[] = [];
  const hold = new PauseHold(ops, (t) => notes.push(t), BOUND_MS, clock);
  return { hold, clock, notes };
}

/** Lets the hold's queued steps run (they chain on promises; no time passes). */
const settle = () => new Promise<void>((r) => setImmediate(r));

void describe("PauseHold: every pause is followed by a resume", () => {
  void it("the agent's pause and resume go out in order; a second pause while paused sends nothing", async () => {
    const { ops, calls } = recorder();
    const { hold, clock } = holdWith(ops);
    await hold.control.pause();
    await hold.control.pause();
    await hold.control.resume();
    await hold.control.resume();
    assert.deepEqual(calls, ["pause", "resume"]);
    assert.equal(clock.pending, 0, "the bound's timer ended with the resume");
  });

  void it("a stop while held: release() resumes, and no later pause goes out", async () => {
    const { ops, calls } = recorder();
    const { hold, clock } = holdWith(ops);
    await hold.control.pause();
    await hold.release();
    assert.deepEqual(calls, ["pause", "resume"]);
    await hold.control.pause(); // the judge gate's hold arriving after the stop
    await hold.control.resume();
    await hold.release();
    assert.deepEqual(calls, ["pause", "resume"], "nothing after the release");
    assert.equal(clock.pending, 0);
  });

  void it("once a stop began, the agent's resume waits for the runtime's release (after its stop signal)", async () => {
    const { ops, calls } = recorder();
    const { hold } = holdWith(ops);
    await hold.control.pause();
    hold.refuse(); // the runtime's stop begins; its SIGTERM is on its way
    await hold.control.resume(); // the judge gate's resume, on the same stop
    assert.deepEqual(calls, ["pause"], "still paused: the SIGTERM is handled first thing when it runs");
    await hold.release(); // the SIGTERM went out
    assert.deepEqual(calls, ["pause", "resume"]);
  });

  void it("a hold nobody ends resumes at its bound, with a note in the log", async () => {
    const { ops, calls } = recorder();
    const { hold, clock, notes } = holdWith(ops);
    await hold.control.pause();
    clock.advance(BOUND_MS - 1);
    await settle();
    assert.deepEqual(calls, ["pause"], "still held just before the bound");
    clock.advance(1);
    await settle();
    assert.deepEqual(calls, ["pause", "resume"]);
    assert.match(notes.join("\n"), /held 10000 ms with no resume/);
    await hold.control.resume(); // the agent's own resume, late: already running
    assert.deepEqual(calls, ["pause", "resume"]);
  });

  void it("a pause call that fails is answered by a resume (it may have paused all the same)", async () => {
    const { ops, calls } = recorder({ fail: ["pause#1"] });
    const { hold, clock, notes } = holdWith(ops);
    await hold.control.pause();
    assert.deepEqual(calls, ["pause", "resume"]);
    assert.match(notes.join("\n"), /could not pause the payload \(daemon said no to pause #1\)/);
    assert.equal(clock.pending, 0);
    await hold.release();
    assert.deepEqual(calls, ["pause", "resume"], "resumed already: nothing more to send");
  });

  void it("a resume call that fails is tried again, by the bound and by release()", async () => {
    const { ops, calls } = recorder({ fail: ["resume#1", "resume#2"] });
    const { hold, clock, notes } = holdWith(ops);
    await hold.control.pause();
    await hold.control.resume();
    assert.deepEqual(calls, ["pause", "resume"]);
    assert.match(notes.join("\n"), /could not resume the payload/);
    clock.advance(BOUND_MS);
    await settle();
    assert.deepEqual(calls, ["pause", "resume", "resume"], "the bound tried again");
    await hold.release();
    assert.deepEqual(calls, ["pause", "resume", "resume", "resume"], "the stop tried again");
    await hold.release();
    assert.equal(calls.length, 4, "once resumed, nothing more");
  });

  void it("a release while a pause is in flight resumes after it, never before", async () => {
    let pauseDone!: () => void;
    const { ops, calls } = recorder({ slowPause: new Promise<void>((r) => (pauseDone = r)) });
    const { hold } = holdWith(ops);
    const pausing = hold.control.pause();
    await settle();
    const releasing = hold.release();
    await settle();
    assert.deepEqual(calls, ["pause"], "the resume waits for the pause call to end");
    pauseDone();
    await Promise.all([pausing, releasing]);
    assert.deepEqual(calls, ["pause", "resume"]);
  });

  void it("a release with no pause sends nothing", async () => {
    const { ops, calls } = recorder();
    const { hold } = holdWith(ops);
    await hold.release();
    await hold.control.pause();
    assert.deepEqual(calls, []);
  });
});
