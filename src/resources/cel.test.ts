import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  appendFieldPath,
  checkExtensions,
  compileRule,
  escapeFieldName,
  evaluateRule,
  k8sIsIP,
  toCelValue,
} from "./cel.ts";
import type { StructuralSchema } from "./cel.ts";
import { allGatewayRules, celCoverage } from "./validate.ts";

const never = { skipRules: () => false };

describe("k8sIsIP", () => {
  it("accepts IPv4 and IPv6 addresses", () => {
    for (const ip of ["1.2.3.4", "255.255.255.255", "::1", "2001:db8::1", "::1.2.3.4", "fe80::"]) {
      assert.equal(k8sIsIP(ip), true, ip);
    }
  });
  it("rejects leading zeros, zones, IPv4-mapped IPv6 and non-addresses", () => {
    for (const ip of [
      "01.2.3.4",
      "1.2.3.256",
      "fe80::1%eth0",
      "::ffff:1.2.3.4",
      "::ffff:102:304",
      "a.com",
      "",
    ]) {
      assert.equal(k8sIsIP(ip), false, ip);
    }
  });
});

describe("escapeFieldName", () => {
  it("escapes like the API server", () => {
    assert.equal(escapeFieldName("namespace"), "__namespace__");
    assert.equal(escapeFieldName("foo"), "foo");
    assert.equal(escapeFieldName("a-b.c/d__e"), "a__dash__b__dot__c__slash__d__underscores__e");
    assert.equal(escapeFieldName("1abc"), undefined);
    assert.equal(escapeFieldName("a b"), undefined);
  });
});

describe("toCelValue", () => {
  const schema: StructuralSchema = {
    type: "object",
    properties: {
      port: { type: "integer" },
      ratio: { type: "number" },
      namespace: { type: "string" },
      labels: { type: "object", additionalProperties: { type: "string" } },
      list: { type: "array", items: { type: "integer" } },
    },
  };
  it("maps integers to CEL ints, escapes declared names, keeps map keys, prunes undeclared fields", () => {
    const v = toCelValue(
      { port: 80, ratio: 1, namespace: "ns", labels: { "a/b": "c" }, list: [1, 2], extra: true },
      schema,
    );
    assert.ok(v instanceof Map);
    assert.equal(v.get("port"), 80n);
    assert.equal(v.get("ratio"), 1);
    assert.equal(v.get("__namespace__"), "ns");
    assert.deepEqual(v.get("labels"), new Map([["a/b", "c"]]));
    assert.deepEqual(v.get("list"), [1n, 2n]);
    assert.equal(v.has("extra"), false);
  });
});

describe("appendFieldPath", () => {
  it("joins node paths and rule fieldPaths", () => {
    assert.equal(appendFieldPath("spec", ".ports"), "spec.ports");
    assert.equal(appendFieldPath("", ".data['tls.crt']"), "data[tls.crt]");
    assert.equal(appendFieldPath("spec.x", undefined), "spec.x");
    assert.equal(appendFieldPath("spec", "[0].a"), "spec[0].a");
  });
});

describe("compileRule", () => {
  it("skips transition rules, unknown functions and syntax errors without throwing", () => {
    const transition = compileRule("self == oldSelf");
    assert.equal(transition.ok, false);
    assert.match(!transition.ok ? transition.reason : "", /transition rule/);
    const unknown = compileRule("quantity(self).isGreaterThan(quantity('1'))");
    assert.match(!unknown.ok ? unknown.reason : "", /unsupported function\(s\): isGreaterThan, quantity/);
    const syntax = compileRule("self.a +");
    assert.match(!syntax.ok ? syntax.reason : "", /compile error/);
    assert.equal(compileRule("self.all(x, x > 0)").ok, true);
  });
});

describe("evaluateRule", () => {
  it("passes, fails with the rule message, or skips on evaluation errors", () => {
    const self = toCelValue({ a: 1 }, { type: "object", properties: { a: { type: "integer" } } });
    assert.deepEqual(evaluateRule({ rule: "self.a == 1" }, self), { kind: "pass" });
    assert.deepEqual(evaluateRule({ rule: "self.a == 2", message: "a must be 2" }, self), {
      kind: "fail",
      message: "a must be 2",
    });
    assert.deepEqual(evaluateRule({ rule: "self.a == 3" }, self), {
      kind: "fail",
      message: "failed rule: self.a == 3",
    });
    const skipped = evaluateRule({ rule: "self.missing == 1" }, self);
    assert.equal(skipped.kind, "skipped");
  });
  it("uses messageExpression when it evaluates to a non-empty string", () => {
    const self = toCelValue({ a: 5 }, { type: "object", properties: { a: { type: "integer" } } });
    const rule = { rule: "self.a < 3", message: "static", messageExpression: "'a is ' + string(self.a)" };
    assert.deepEqual(evaluateRule(rule, self), { kind: "fail", message: "a is 5" });
    const broken = { rule: "self.a < 3", message: "static", messageExpression: "self.nope" };
    assert.deepEqual(evaluateRule(broken, self), { kind: "fail", message: "static" });
  });
  it("supports RE2 syntax (inline flags) in matches()", () => {
    const rule = { rule: "self.matches(r'''^(?i)\\.?[a-z_][a-z_0-9]*$''')" };
    assert.deepEqual(evaluateRule(rule, "Foo_Bar"), { kind: "pass" });
    assert.equal(evaluateRule(rule, "9x").kind, "fail");
  });
  it("supports Kubernetes isIP(), duration(), the strings extension and exists_one()", () => {
    assert.equal(evaluateRule({ rule: "self.all(h, !isIP(h))" }, ["a.com", "10.0.0.1"]).kind, "fail");
    assert.equal(evaluateRule({ rule: "duration(self) > duration('1s')" }, "1m").kind, "pass");
    assert.equal(
      evaluateRule({ rule: "self.split('/')[0].size() < 3 && self.substring(1) == 'b/c'" }, "ab/c").kind,
      "pass",
    );
    assert.equal(evaluateRule({ rule: "self.all(x, self.exists_one(y, x == y))" }, ["a", "a"]).kind, "fail");
  });
});

describe("checkExtensions", () => {
  const schema: StructuralSchema = {
    type: "object",
    properties: {
      items: {
        type: "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name", "port"],
        items: { type: "object", properties: { name: { type: "string" }, port: { type: "integer" } } },
      },
      tags: { type: "array", "x-kubernetes-list-type": "set", items: { type: "string" } },
      n: { type: "integer", "x-kubernetes-validations": [{ rule: "self < 10", message: "n too big" }] },
    },
  };
  it("reports list-map and set duplicates and rule failures at their paths", () => {
    const errors = checkExtensions(
      schema,
      {
        items: [
          { name: "a", port: 1 },
          { name: "a", port: 2 },
          { name: "a", port: 1 },
        ],
        tags: ["x", "y", "x"],
        n: 11,
      },
      "spec",
      never,
    );
    assert.deepEqual(errors, [
      { path: "spec.items[2]", message: 'Duplicate value: {"name":"a","port":1}' },
      { path: "spec.tags[2]", message: 'Duplicate value: "x"' },
      { path: "spec.n", message: "n too big" },
    ]);
  });
  it("does not run rules on nodes the caller skips or whose type does not fit", () => {
    assert.deepEqual(checkExtensions(schema, { n: 11 }, "", { skipRules: (p) => p === "n" }), []);
    assert.deepEqual(checkExtensions(schema, { items: "nope" }, "", never), []);
  });
});

describe("Gateway API CRD rules", () => {
  it("compiles nearly every rule in schemas.json (only transition rules are skipped)", () => {
    const rules = allGatewayRules();
    const distinct = new Set(rules);
    const skipped = [...distinct].filter((r) => !compileRule(r).ok);
    const coverage = celCoverage();
    console.log(
      `CEL coverage: ${coverage.evaluated}/${coverage.total} distinct rules evaluated ` +
        `(${rules.length} occurrences), ${coverage.skipped} skipped:`,
    );
    for (const s of coverage.skippedRules) console.log(`  - ${s.rule}  [${s.reason}]`);
    assert.equal(coverage.total, distinct.size);
    assert.equal(coverage.skipped, skipped.length);
    assert.ok(coverage.evaluated / coverage.total >= 0.95, "at least 95% of the rules compile");
    for (const s of coverage.skippedRules) assert.match(s.reason, /transition rule/);
  });
});
