// Which trainingDS files a segment selects (files by name, datasets by folder), and the check at
// submission that refuses missing training data with the segment and the fix named.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTaskSpec } from "../../protocol/taskConfig.ts";
import { checkTrainingData, segmentFiles } from "../../steering/core/trainingData.ts";
import { specInput, throwsCode } from "./fixtures/engineKit.ts";

const LISTING = [
  "top.txt",
  "user.me.ds_A/a1.txt",
  "user.me.ds_A/a2.txt",
  "user.me.ds_AB/x.txt",
  "user.me.ds_B/b1.txt",
];

const withSegments = (segments: unknown[]) =>
  parseTaskSpec(specInput({ trainingDS: "user.me.cont", segments: segments as never }));

void describe("training data of a segment", () => {
  void it("selects files by name and datasets by folder, not by name prefix", () => {
    assert.deepEqual(segmentFiles({ name: "A", files: [], datasets: ["user.me.ds_A"] }, LISTING), [
      "user.me.ds_A/a1.txt",
      "user.me.ds_A/a2.txt",
    ]);
    assert.deepEqual(segmentFiles({ name: "B", files: ["top.txt"], datasets: ["user.me.ds_B"] }, LISTING), [
      "top.txt",
      "user.me.ds_B/b1.txt",
    ]);
    assert.deepEqual(segmentFiles(undefined, LISTING), LISTING, "unsegmented: every file");
  });

  void it("refuses, at submission, an empty trainingDS, a missing file and a dataset with no files", () => {
    checkTrainingData(
      withSegments([
        { name: "A", datasets: ["user.me.ds_A"] },
        { name: "B", files: ["top.txt"] },
      ]),
      LISTING,
    );
    throwsCode(
      () => checkTrainingData(withSegments([{ name: "A", files: ["top.txt"] }]), []),
      "INVALID_CONFIG",
      "trainingDS user.me.cont has no files (S3 datasets/user.me.cont/); upload the training data first",
    );
    throwsCode(
      () => checkTrainingData(withSegments([{ name: "A", files: ["top.txt", "nope.txt"] }]), LISTING),
      "INVALID_CONFIG",
      'segment "A": files not in trainingDS: "nope.txt"',
    );
    throwsCode(
      () =>
        checkTrainingData(withSegments([{ name: "B", datasets: ["user.me.ds_C", "user.me.ds_B"] }]), LISTING),
      "INVALID_CONFIG",
      'segment "B": datasets with no files: "user.me.ds_C"',
    );
    // without trainingDS there is nothing to check
    checkTrainingData(parseTaskSpec(specInput({})), []);
  });
});
