import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RE2JS } from "@bufbuild/re2";
import fc from "fast-check";
import { regexLiteral } from "./grpc.ts";

void describe("regexLiteral", () => {
  void it("escapes every ASCII punctuation character and nothing else", () => {
    assert.equal(regexLiteral("Get_v1"), "Get_v1");
    assert.equal(regexLiteral("a.b*c"), "a\\.b\\*c");
    assert.equal(regexLiteral("(x)|[y]{2}^$\\/"), "\\(x\\)\\|\\[y\\]\\{2\\}\\^\\$\\\\\\/");
  });

  void it("gives an RE2 expression that matches exactly the literal", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary-ascii" }), fc.string({ unit: "binary-ascii" }), (s, other) => {
        const re = RE2JS.compile(`^(?:${regexLiteral(s)})$`);
        assert.ok(re.matches(s));
        if (other !== s) assert.ok(!re.matches(other));
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});
