import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ValidationError } from "../../protocol/errors.ts";
import { tokenizeExec } from "../../protocol/execString.ts";
import { throwsCode } from "./fixtures/engineKit.ts";

// PanDA's documented steeringExec, verbatim (note the two spaces before --outfile).
const PANDA_STEERING_EXEC =
  '/bin/bash -c "hpogrid generate --n_point=%NUM_POINTS --max_point=%MAX_POINTS --infile=$PWD/%IN  --outfile=$PWD/%OUT -l=nevergrad"';

void describe("tokenizeExec: words", () => {
  void it("splits on any run of whitespace and drops leading/trailing whitespace", () => {
    assert.deepEqual(tokenizeExec("python train.py"), ["python", "train.py"]);
    assert.deepEqual(tokenizeExec("  a \t b\n\nc  "), ["a", "b", "c"]);
    assert.deepEqual(tokenizeExec("single"), ["single"]);
  });
  void it("does not interpret shell syntax outside quotes: ; | $ > stay in their words", () => {
    assert.deepEqual(tokenizeExec("echo a;rm -rf / | cat > $HOME/x"), [
      "echo",
      "a;rm",
      "-rf",
      "/",
      "|",
      "cat",
      ">",
      "$HOME/x",
    ]);
  });
  void it("keeps placeholders intact for per-token substitution", () => {
    assert.deepEqual(tokenizeExec("run --seg=%SEGMENT_NAME %IN"), ["run", "--seg=%SEGMENT_NAME", "%IN"]);
  });
});

void describe("tokenizeExec: quoting", () => {
  void it("single quotes keep everything literally, including backslashes and double quotes", () => {
    assert.deepEqual(tokenizeExec(`echo 'a  b' 'c\\d' 'say "hi"'`), ["echo", "a  b", "c\\d", 'say "hi"']);
  });
  void it('double quotes keep spaces and single quotes; backslash escapes only " \\ $ and `', () => {
    assert.deepEqual(tokenizeExec(`echo "a  b" "it's"`), ["echo", "a  b", "it's"]);
    assert.deepEqual(tokenizeExec(`x "q\\"q" "b\\\\s" "d\\$x" "t\\\`" "n\\n"`), [
      "x",
      'q"q',
      "b\\s",
      "d$x",
      "t`",
      "n\\n",
    ]);
  });
  void it("a backslash outside quotes escapes the next character (space, quote, backslash)", () => {
    assert.deepEqual(tokenizeExec("a\\ b c"), ["a b", "c"]);
    assert.deepEqual(tokenizeExec(`say \\"hi\\"`), ["say", '"hi"']);
    assert.deepEqual(tokenizeExec(`it\\'s`), ["it's"]);
    assert.deepEqual(tokenizeExec("a\\\\b"), ["a\\b"]);
  });
  void it("adjacent quoted and unquoted parts join into one word", () => {
    assert.deepEqual(tokenizeExec('a"b c"d'), ["ab cd"]);
    assert.deepEqual(tokenizeExec(`--x='1 2'"3 4"5 next`), ["--x=1 23 45", "next"]);
  });
  void it("empty quoted strings are empty arguments, not dropped", () => {
    assert.deepEqual(tokenizeExec('cmd "" x'), ["cmd", "", "x"]);
    assert.deepEqual(tokenizeExec("cmd '' ''"), ["cmd", "", ""]);
    assert.deepEqual(tokenizeExec('""'), [""]);
  });
  void it("PanDA's real steeringExec gives exactly 3 tokens, the quoted script kept verbatim", () => {
    const t = tokenizeExec(PANDA_STEERING_EXEC, "steeringExec");
    assert.equal(t.length, 3);
    assert.deepEqual(t, [
      "/bin/bash",
      "-c",
      "hpogrid generate --n_point=%NUM_POINTS --max_point=%MAX_POINTS --infile=$PWD/%IN  --outfile=$PWD/%OUT -l=nevergrad",
    ]);
  });
  void it("PanDA's evaluationExec example", () => {
    assert.deepEqual(tokenizeExec("bash ./exec_in_container.sh"), ["bash", "./exec_in_container.sh"]);
  });
});

void describe("tokenizeExec: errors", () => {
  void it("an unbalanced double quote is a ValidationError naming the field and the 1-based position", () => {
    const e = throwsCode(
      () => tokenizeExec('python "train.py', "evaluationExec"),
      "INVALID_ARGUMENT",
      "evaluationExec:",
      "double quote",
      "character 8",
    );
    assert.ok(e instanceof ValidationError);
    assert.equal(e.retryable, false);
    assert.ok(e.message.includes(JSON.stringify('python "train.py')), e.message);
  });
  void it("an unbalanced single quote names the field and position", () => {
    throwsCode(
      () => tokenizeExec("a b 'c d", "steeringExec"),
      "INVALID_ARGUMENT",
      /^steeringExec: /,
      "single quote",
      "character 5",
    );
  });
  void it("the position is that of the quote left open, not of an earlier closed one", () => {
    throwsCode(
      () => tokenizeExec(`'ok' "x`, "evaluationExec"),
      "INVALID_ARGUMENT",
      "double quote",
      "character 6",
    );
    // a quote inside the other kind does not count
    assert.deepEqual(tokenizeExec(`"it's" 'say "x'`), ["it's", 'say "x']);
  });
  void it("an escaped quote is not an opening quote", () => {
    assert.deepEqual(tokenizeExec('a \\"b'), ["a", '"b']);
  });
  void it("the default field name is evaluationExec", () => {
    throwsCode(() => tokenizeExec('"'), "INVALID_ARGUMENT", "evaluationExec:");
  });
  void it("an empty or blank string is refused, naming the field", () => {
    throwsCode(
      () => tokenizeExec("", "steeringExec"),
      "INVALID_ARGUMENT",
      "steeringExec: the exec string is empty",
    );
    throwsCode(() => tokenizeExec("   \t\n"), "INVALID_ARGUMENT", "evaluationExec:", "empty");
  });
});
