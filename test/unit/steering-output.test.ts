// A steering iteration's output is kept within a cap (steering/program/runner.ts, CappedOutput):
// a program printing without end cannot fill steering's memory or S3, and both the start and the
// end of its output stay, with the gap named.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CappedOutput, STEERING_LOG_CAP } from "../../steering/program/runner.ts";

void describe("steering output cap", () => {
  void it("keeps everything under the cap", () => {
    const o = new CappedOutput(100);
    o.push(Buffer.from("hello "));
    o.push(Buffer.from("world"));
    assert.equal(o.bytes().toString(), "hello world");
  });

  void it("keeps the first and last halves of a flood, naming what it dropped", () => {
    const o = new CappedOutput(20);
    o.push(Buffer.from("0123456789ABCDEFGHIJ"));
    for (let i = 0; i < 1000; i++) o.push(Buffer.from("x"));
    o.push(Buffer.from("the-end"));
    const text = o.bytes().toString();
    assert.ok(text.startsWith("0123456789"), text);
    assert.ok(text.endsWith("xxxthe-end"), text);
    assert.match(text, /\[\.\.\. 1007 bytes of output not kept \.\.\.\]/);
    assert.equal(text.replace(/\n\[.*\]\n/, "").length, 20);
  });

  void it("bounds a real flood by STEERING_LOG_CAP", () => {
    const o = new CappedOutput();
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 64; i++) o.push(chunk); // 4 MiB
    assert.ok(o.bytes().length <= STEERING_LOG_CAP + 100);
  });
});
