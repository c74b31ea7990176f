// The job's log (evaluator/runtime/logCapture.ts) is appended to by two writers: the run's output
// through LogCapture, and the agent's own notes (a checkpoint that left out a link or was too
// large) through another descriptor while the run goes on. Both must survive.
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LogCapture } from "../../evaluator/runtime/logCapture.ts";

const dir = await mkdtemp(join(tmpdir(), "gt-logcapture-"));
after(() => rm(dir, { recursive: true, force: true }));

/** Resolves once the file holds `bytes` bytes (the capture's stream writes asynchronously). */
async function sized(file: string, bytes: number): Promise<void> {
  while ((statSync(file, { throwIfNoEntry: false })?.size ?? 0) < bytes)
    await new Promise((r) => setTimeout(r, 5));
}

void describe("LogCapture", () => {
  void it("keeps a note appended from another descriptor while the run writes", async () => {
    const file = join(dir, "log.txt");
    const log = new LogCapture(file, 1024);
    log.write(Buffer.from("epoch 1\n"));
    await sized(file, "epoch 1\n".length);
    appendFileSync(file, "[gridtune] checkpoint: state is a symbolic link; left out\n");
    log.write(Buffer.from("epoch 2\n"));
    await log.close();
    assert.equal(
      readFileSync(file, "utf8"),
      "epoch 1\n[gridtune] checkpoint: state is a symbolic link; left out\nepoch 2\n",
    );
  });
});
