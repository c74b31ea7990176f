import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { findPlaceholders, substitutePlaceholders } from "../../protocol/placeholders.ts";

const V = { IN: "idds_input.json", OUT: "output.json", NUM_POINTS: "2", MAX_POINTS: "10" };

void describe("substitutePlaceholders", () => {
  void it("replaces the PanDA example's placeholders", () => {
    const exec = `hpogrid generate --n_point=%NUM_POINTS --max_point=%MAX_POINTS --infile=$PWD/%IN  --outfile=$PWD/%OUT -l=nevergrad`;
    assert.equal(
      substitutePlaceholders(exec, V),
      "hpogrid generate --n_point=2 --max_point=10 --infile=$PWD/idds_input.json  --outfile=$PWD/output.json -l=nevergrad",
    );
  });

  void it("does not hit the front of a longer word", () => {
    assert.equal(substitutePlaceholders("--input=%INPUT", V), "--input=%INPUT");
    assert.equal(substitutePlaceholders("%IN_DIR/%IN", V), "%IN_DIR/idds_input.json");
    assert.equal(substitutePlaceholders("%OUTPUT %OUT2 %OUT", V), "%OUTPUT %OUT2 output.json");
  });

  void it("prefers the longest name when one name is the front of another", () => {
    assert.equal(substitutePlaceholders("%IN %INPUT", { IN: "a", INPUT: "b" }), "a b");
    assert.equal(substitutePlaceholders("%INPUT %IN", { INPUT: "b", IN: "a" }), "b a");
  });

  void it("replaces at the edges, back to back, next to punctuation, and repeatedly", () => {
    assert.equal(substitutePlaceholders("%IN", V), "idds_input.json");
    assert.equal(substitutePlaceholders("%IN%OUT", V), "idds_input.jsonoutput.json");
    assert.equal(
      substitutePlaceholders("/data/%IN.bak,%IN;", V),
      "/data/idds_input.json.bak,idds_input.json;",
    );
    assert.equal(
      substitutePlaceholders("%SEGMENT_NAME-%SEGMENT_NAME", { SEGMENT_NAME: "name_A" }),
      "name_A-name_A",
    );
  });

  void it("leaves unknown names, lone percent signs and lower-case look-alikes as written", () => {
    assert.equal(substitutePlaceholders("100% %FOO %in % %", V), "100% %FOO %in % %");
  });

  void it("does not re-scan substituted values", () => {
    assert.equal(substitutePlaceholders("%IN", { IN: "%OUT", OUT: "x" }), "%OUT");
    assert.equal(substitutePlaceholders("%IN", { IN: "$& $1 $$" }), "$& $1 $$"); // no replacement patterns
  });

  void it("accepts keys with a leading % and rejects names that are not words", () => {
    assert.equal(substitutePlaceholders("%OUT", { "%OUT": "o" }), "o");
    assert.throws(
      () => substitutePlaceholders("%A", { "A.B": "x" }),
      /placeholder name "A.B" must be letters, digits and underscores/,
    );
    assert.throws(() => substitutePlaceholders("%A", { "": "x" }), /placeholder name ""/);
    assert.equal(substitutePlaceholders("%IN", {}), "%IN");
  });

  void it("property: with a value free of % the result holds no known placeholder", () => {
    const word = fc.constantFrom(
      "%IN",
      "%OUT",
      "%NUM_POINTS",
      "%MAX_POINTS",
      "%INPUT",
      "x",
      " ",
      "/",
      "_",
      "%",
      "%%",
      "A",
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 20 }), (parts) => {
        const s = substitutePlaceholders(parts.join(""), V);
        assert.doesNotMatch(s, /%(IN|OUT|NUM_POINTS|MAX_POINTS)(?![A-Za-z0-9_])/);
      }),
    );
  });
});

void describe("findPlaceholders", () => {
  void it("lists the %NAME tokens in order", () => {
    assert.deepEqual(findPlaceholders("run %IN --x=%MAX_POINTS %INPUT 100%"), ["IN", "MAX_POINTS", "INPUT"]);
  });
});
