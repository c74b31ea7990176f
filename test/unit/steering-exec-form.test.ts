// PanDA's docker-argument form of steeringExec is refused at submission with the exact rewrite
// (protocol/steeringExec.ts): the message's rewrite, fed back to parseTaskSpec, is accepted and
// runs the same command in the steering container; options outside the safe subset (a host
// mount, --privileged, --network) are refused without a rewrite.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { tokenizeExec } from "../../protocol/execString.ts";
import { rewriteDockerForm, quoteToken } from "../../protocol/steeringExec.ts";
import { parseTaskSpec } from "../../protocol/taskConfig.ts";

const base = {
  outDS: "user.test.form",
  evaluationContainer: "gridtune/python:1",
  evaluationExec: "python train.py",
  searchSpace: { x: { method: "uniform", dimension: { low: 0, high: 1 } } },
};

/** The INVALID_CONFIG message of parseTaskSpec for this steeringExec. */
function refusal(steeringExec: string): string {
  try {
    parseTaskSpec({ ...base, steeringExec });
  } catch (err) {
    assert.ok(err instanceof ValidationError, String(err));
    assert.equal(err.code, "INVALID_CONFIG");
    return err.message;
  }
  assert.fail(`accepted ${steeringExec}`);
}

void describe("steeringExec: PanDA's docker-argument form", () => {
  void it("is refused at submission with the rewrite, which parses and keeps the command", () => {
    // PanDA documentation's example, verbatim
    const panda =
      'run -v "$(pwd)":/HPOWorkDir gitlab-registry.cern.ch/zhangruihpc/steeringcontainer:0.0.1 ' +
      '/bin/bash -c "hpogrid generate --n_point=%NUM_POINTS --max_point=%MAX_POINTS --infile=/HPOWorkDir/%IN  --outfile=/HPOWorkDir/%OUT -l nevergrad"';
    const msg = refusal(panda);
    assert.match(msg, /docker-argument form/);
    const json = /"steeringContainer": ("[^"]*"), "steeringExec": (".*")$/m.exec(msg);
    assert.ok(json, msg);
    const rewrite = {
      steeringContainer: JSON.parse(json[1]!) as string,
      steeringExec: JSON.parse(json[2]!) as string,
    };
    assert.deepEqual(rewrite, {
      steeringContainer: "gitlab-registry.cern.ch/zhangruihpc/steeringcontainer:0.0.1",
      steeringExec:
        "/bin/bash -c 'hpogrid generate --n_point=%NUM_POINTS --max_point=%MAX_POINTS --infile=%IN  --outfile=%OUT -l nevergrad'",
    });
    // the command-line form in the message is the same rewrite
    assert.ok(
      msg.includes(
        `--steeringContainer ${rewrite.steeringContainer} --steeringExec ${quoteToken(rewrite.steeringExec)}`,
      ),
      msg,
    );
    const spec = parseTaskSpec({ ...base, ...rewrite });
    assert.deepEqual(tokenizeExec(spec.steeringExec!), [
      "/bin/bash",
      "-c",
      "hpogrid generate --n_point=%NUM_POINTS --max_point=%MAX_POINTS --infile=%IN  --outfile=%OUT -l nevergrad",
    ]);
  });

  void it("maps -w, -e and the mount directory; drops --rm and -it", () => {
    assert.deepEqual(
      rewriteDockerForm(
        tokenizeExec(
          "run --rm -it -v $PWD:/data:ro -w /data -e SEED=3 --env=MODE=fast img:1 python /data/opt.py --in=/data/%IN /data",
        ),
      ),
      {
        steeringContainer: "img:1",
        steeringExec: "env SEED=3 MODE=fast python opt.py --in=%IN .",
      },
    );
  });

  void it("refuses options outside the safe subset, without a rewrite", () => {
    for (const [exec, why] of [
      ["run -v /etc:/data img python opt.py", /volume "\/etc:\/data" is not/],
      ["run --privileged img python opt.py", /docker option --privileged/],
      ["run --network host img python opt.py", /docker option --network/],
      ["run -v $(pwd):/data -w /tmp img python opt.py", /-w \/tmp is not the mounted working directory/],
      ["run -v $(pwd):/data img", /no command after the image img/],
    ] as const) {
      const msg = refusal(exec);
      assert.match(msg, why);
      assert.match(msg, /cannot be rewritten/);
      assert.doesNotMatch(msg, /Use instead/);
    }
  });

  void it("leaves a program named run alone when steeringContainer is set", () => {
    const spec = parseTaskSpec({ ...base, steeringContainer: "img", steeringExec: "run --fast %IN" });
    assert.equal(spec.steeringExec, "run --fast %IN");
  });
});
