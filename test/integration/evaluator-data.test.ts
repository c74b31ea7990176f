// The evaluator's data side on real servers (nats-server, s3rver, steering, agent processes with
// the process runtime): trainingDS files fetched from S3 into the working directory and listed in
// input_ds.json, segments (each job gets only its segment's files, %SEGMENT_NAME substituted as
// one argv token, results grouped per segment), checkPointToLoad (tarball placed as is, or
// extracted when unset) and checkPointLimitMB (over the limit: an error in the job's log, the
// previous checkpoint kept). The payload (fixtures/payloads/probe.py) writes what it saw to its
// evaluationMeta file, which the test reads back from S3.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { TaskSpecInput } from "../../protocol/taskConfig.ts";
import { compileSteeringConfig } from "../../steering/shell/config.ts";
import { keys, Storage } from "../../steering/shell/storage.ts";
import { FIXTURES, startTestStack, type StackClient, type TestStack } from "../harness/stack.ts";

const PROBE = join(FIXTURES, "payloads", "probe.py");

interface ProbeMeta {
  argv: string[];
  attempt: number;
  cwd_files: Record<string, number | "dir">;
  input_ds: string[] | null;
  present: Record<string, string | null>;
  load_is_file?: boolean;
  load_members?: string[] | null;
  restored_state: { step: number } | null;
}

function probeTask(over: Partial<TaskSpecInput>, point: Record<string, unknown>): TaskSpecInput {
  return {
    outDS: "user.test.probe/",
    evaluationContainer: "gridtune/python:1",
    evaluationExec: `/usr/bin/python3 ${PROBE}`,
    evaluationMeta: "meta.json",
    searchSpace: Object.fromEntries(
      Object.entries({ x: 0, ...point }).map(([k, v]) => [
        k,
        { method: "categorical", dimension: { categories: [v] } },
      ]),
    ) as never,
    maxPoints: 1,
    nParallelEvaluation: 1,
    nPointsPerIteration: 1,
    ...over,
  };
}

describe("evaluator data: trainingDS, segments and checkpoints", { timeout: 300_000 }, () => {
  let stack: TestStack;
  let storage: Storage;
  let api: StackClient;
  before(async () => {
    stack = await startTestStack({ agents: 1, slotsPerAgent: 2 });
    storage = new Storage(compileSteeringConfig({}, stack.steeringEnv).s3);
    api = await stack.connect();
  });
  after(async () => {
    storage?.close();
    await stack?.cleanup();
  });

  async function text(key: string): Promise<string> {
    const r = await storage.s3.send(new GetObjectCommand({ Bucket: storage.config.bucket, Key: key }));
    return r.Body!.transformToString();
  }

  /** The meta.json of every attempt of a point, by attempt number. */
  async function metas(taskId: string, pointId: number): Promise<Map<number, ProbeMeta>> {
    const out = new Map<number, ProbeMeta>();
    for (const o of await storage.list(`tasks/${taskId}/points/${pointId}/`)) {
      const m = /\/a([0-9]+)\/meta\.json$/.exec(o.key);
      if (m) out.set(Number(m[1]), JSON.parse(await text(o.key)) as ProbeMeta);
    }
    return out;
  }

  async function uploadDataset(name: string, files: Record<string, string>): Promise<void> {
    for (const [f, body] of Object.entries(files)) await storage.put(keys.dataset(name) + f, body);
  }

  it("trainingDS: the payload finds input_ds.json listing every file, and the files in its working dir", async () => {
    const files = { "train_1.txt": "one\n", "train_2.txt": "two\n", "train_3.txt": "three\n" };
    await uploadDataset("user.demo.ds_all", files);
    const taskId = await api.submit(probeTask({ trainingDS: "user.demo.ds_all" }, { mode: "data" }));
    const d = await api.waitFinished(taskId, 60_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done", p.error ?? "");
    assert.equal(p.loss, 3);
    const meta = (await metas(taskId, 0)).get(1)!;
    assert.deepEqual([...meta.input_ds!].sort(), Object.keys(files));
    assert.deepEqual(meta.present, files, "each listed file is in the working dir with its content");
    for (const f of Object.keys(files))
      assert.equal(meta.cwd_files[f], files[f as keyof typeof files].length);
  });

  it("a task without trainingDS gets an empty input_ds.json", async () => {
    const taskId = await api.submit(probeTask({}, { mode: "data" }));
    const d = await api.waitFinished(taskId, 60_000);
    assert.equal(d.points[0]!.state, "done");
    assert.deepEqual((await metas(taskId, 0)).get(1)!.input_ds, []);
  });

  it("segments: each job gets only its segment's files, %SEGMENT_NAME is one argv token, results grouped per segment", async () => {
    await uploadDataset("user.demo.ds_seg", {
      "file_1.txt": "f1",
      "file_2.txt": "f2",
      "file_3.txt": "f3",
      "other.txt": "not in any segment",
    });
    const segments = [
      { name: "seg_A-1", files: ["file_1.txt", "file_3.txt"] },
      { name: "segB", files: ["file_2.txt"] },
    ];
    const taskId = await api.submit(
      probeTask(
        {
          trainingDS: "user.demo.ds_seg",
          segments,
          // The placeholder inside a larger token and on its own; the exec string is tokenized
          // before substitution, so the name can never split or add a token.
          evaluationExec: `/usr/bin/python3 ${PROBE} --segment=%SEGMENT_NAME %SEGMENT_NAME`,
          maxPoints: 2,
          nParallelEvaluation: 2,
          nPointsPerIteration: 2,
          searchSpace: {
            x: { method: "categorical", dimension: { categories: [0, 1] } },
            mode: { method: "categorical", dimension: { categories: ["data"] } },
          } as never,
        },
        {},
      ),
    );
    const d = await api.waitFinished(taskId, 90_000);
    assert.equal(d.counts.points, 4, "2 points per segment");
    assert.equal(d.counts.done, 4);
    for (const p of d.points) {
      const seg = segments.find((s) => s.name === p.segment);
      assert.ok(seg, `point ${p.pointId} has segment ${p.segment}`);
      const meta = (await metas(taskId, p.pointId)).get(1)!;
      assert.deepEqual(meta.argv, [`--segment=${seg.name}`, seg.name]);
      assert.deepEqual([...meta.input_ds!].sort(), seg.files);
      assert.deepEqual(
        Object.keys(meta.cwd_files)
          .filter((f) => f.endsWith(".txt"))
          .sort(),
        seg.files,
        "no file of the other segment (or of none) is fetched",
      );
      assert.equal(p.loss, seg.files.length);
    }
    assert.deepEqual(
      d.segments.map((s) => [s.name, s.points, s.best]),
      [
        ["seg_A-1", 2, 2],
        ["segB", 2, 1],
      ],
    );
  });

  it("segments by constituent dataset: each job gets the files under <trainingDS>/<dataset>/, folders kept", async () => {
    await uploadDataset("user.demo.ds_cont", {
      "user.demo.ds_A/a1.txt": "a1",
      "user.demo.ds_A/a2.txt": "a2",
      "user.demo.ds_B/b1.txt": "b1",
      "top.txt": "top",
    });
    const segments = [
      { name: "A", datasets: ["user.demo.ds_A"] },
      { name: "B", datasets: ["user.demo.ds_B"], files: ["top.txt"] },
    ];
    const want: Record<string, string[]> = {
      A: ["user.demo.ds_A/a1.txt", "user.demo.ds_A/a2.txt"],
      B: ["top.txt", "user.demo.ds_B/b1.txt"],
    };
    const taskId = await api.submit(
      probeTask({ trainingDS: "user.demo.ds_cont", segments, maxPoints: 1, nParallelEvaluation: 2 }, {}),
    );
    const d = await api.waitFinished(taskId, 90_000);
    assert.equal(d.counts.done, 2, "one point per segment");
    for (const p of d.points) {
      const files = want[p.segment!]!;
      const meta = (await metas(taskId, p.pointId)).get(1)!;
      assert.deepEqual([...meta.input_ds!].sort(), files);
      for (const f of files) assert.equal(meta.present[f], f.split("/").at(-1)!.replace(".txt", ""));
      assert.equal(p.loss, files.length);
    }
  });

  it("training data that is not there is refused at submission, naming the segment", async () => {
    await uploadDataset("user.demo.ds_part", { "f1.txt": "1" });
    const submit = (over: Partial<TaskSpecInput>) => api.submit(probeTask(over, { mode: "data" }));
    await assert.rejects(
      submit({ trainingDS: "user.demo.ds_part", segments: [{ name: "A", files: ["f1.txt", "f9.txt"] }] }),
      /segment "A": files not in trainingDS: "f9.txt"/,
    );
    await assert.rejects(
      submit({ trainingDS: "user.demo.ds_part", segments: [{ name: "A", datasets: ["user.demo.ds_none"] }] }),
      /segment "A": datasets with no files: "user.demo.ds_none"/,
    );
    await assert.rejects(
      submit({ trainingDS: "user.demo.ds_never_uploaded" }),
      /has no files .*upload the training data first/,
    );
  });

  it("a segment name that could break out of its token is refused at submission", async () => {
    await assert.rejects(
      api.submit(
        probeTask(
          { segments: [{ name: "a b;touch /tmp/x", files: [] }], evaluationExec: "/bin/echo %SEGMENT_NAME" },
          { mode: "data" },
        ),
      ),
      /segment names use letters, digits/,
    );
  });

  it("checkPointToLoad set: the retry gets the checkpoint tarball under that name, not extracted", async () => {
    const taskId = await api.submit(
      probeTask(
        { checkPointToSave: ["ckpt"], checkPointToLoad: "restore.tgz", checkPointInterval: 0.01 },
        { mode: "ckpt", hold: 1.5, load: "restore.tgz" },
      ),
    );
    const d = await api.waitFinished(taskId, 90_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done", p.error ?? "");
    assert.equal(p.attempts, 2);
    const m = (await metas(taskId, 0)).get(2)!;
    assert.equal(m.load_is_file, true);
    assert.deepEqual(
      m.load_members!.filter((n) => n.includes("state.json")),
      ["ckpt/state.json"],
    );
    assert.equal(m.restored_state, null, "nothing extracted");
    assert.equal(m.cwd_files.ckpt, undefined);
  });

  it("checkPointToLoad unset: the checkpoint is extracted in the working dir under its own names", async () => {
    const taskId = await api.submit(
      probeTask(
        { checkPointToSave: ["ckpt"], checkPointInterval: 0.01 },
        { mode: "ckpt", hold: 1.5, load: "restore.tgz" },
      ),
    );
    const d = await api.waitFinished(taskId, 90_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done", p.error ?? "");
    assert.equal(p.attempts, 2);
    assert.equal(p.loss, 1, "resumed from step 1");
    const m = (await metas(taskId, 0)).get(2)!;
    assert.deepEqual(m.restored_state, { step: 1 });
    assert.equal(m.load_is_file, false);
  });

  it("checkPointLimitMB: a checkpoint over the limit is an error in the job's log and the previous one is kept", async () => {
    const taskId = await api.submit(
      probeTask(
        { checkPointToSave: ["ckpt"], checkPointInterval: 0.01, checkPointLimitMB: 1 },
        { mode: "ckpt_big", hold: 2, big: 3 },
      ),
    );
    const d = await api.waitFinished(taskId, 90_000);
    const p = d.points[0]!;
    assert.equal(p.state, "done", p.error ?? "");
    assert.equal(p.attempts, 2);
    const m = (await metas(taskId, 0)).get(2)!;
    assert.deepEqual(m.restored_state, { step: 1 }, "the small checkpoint was restored");
    assert.equal(m.cwd_files["ckpt/big.bin"], undefined, "the oversized one never replaced it");
    const firstLog = p.logKeys.find((k) => k.includes("/a1/"));
    assert.ok(firstLog, `no log of attempt 1 in ${p.logKeys.join(", ")}`);
    assert.match(
      await text(firstLog),
      /checkpoint of \d+ bytes exceeds the limit of 1048576; the previous checkpoint is kept/,
    );
  });
});
