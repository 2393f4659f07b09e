import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import { isCelError } from "@bufbuild/cel";
import type { CelInput } from "@bufbuild/cel";
import { compileRule, k8sIsIP, useCompiledRules } from "./cel.ts";
import { compileFast, FALLBACK } from "./cel-compile.ts";
import { parseDocuments } from "./load.ts";
import { allGatewayRules, validateObject } from "./validate.ts";
import type { KubeObject } from "./meta.ts";

/** The interpreter's answer: a value, or "error". */
function interpreted(rule: string, self: CelInput): unknown {
  const program = compileRule(rule);
  assert.ok(program.ok, `${rule} compiles`);
  try {
    const value = program.run(self);
    return isCelError(value) ? "error" : value;
  } catch {
    return "error";
  }
}

/** The closures' answer: a value, or "fallback". */
function compiled(rule: string, self: CelInput): unknown {
  const program = compileFast(rule, { isIP: k8sIsIP });
  assert.ok(program !== undefined, `${rule} compiles to closures`);
  try {
    return program(self);
  } catch (error) {
    if (error === FALLBACK) return "fallback";
    throw error;
  }
}

/** A decided value of the closures equals the interpreter's; an interpreter error means fallback. */
function agree(rule: string, self: CelInput): void {
  const reference = interpreted(rule, self);
  const fast = compiled(rule, self);
  if (reference === "error") assert.equal(fast, "fallback", `${rule} on ${show(self)}`);
  else if (fast !== "fallback") assert.deepEqual(fast, reference, `${rule} on ${show(self)}`);
}

function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown): unknown =>
    typeof v === "bigint" ? `${v}n` : v instanceof Map ? Object.fromEntries(v) : v,
  );
}

const m = (entries: Record<string, CelInput>): CelInput => new Map(Object.entries(entries));

describe("compileFast", () => {
  void test("compiles nearly all Gateway API rules", () => {
    const rules = [...new Set(allGatewayRules())];
    const fast = rules.filter((rule) => compileFast(rule, { isIP: k8sIsIP }) !== undefined);
    // Left to the interpreter: oldSelf, duration(), split(), substring(), a bare isIP macro body.
    assert.ok(fast.length >= rules.length - 6, `${fast.length} of ${rules.length}`);
  });

  void test("leaves functions it does not know to the interpreter", () => {
    for (const rule of [
      "self.split('/')[0] == 'a'",
      "duration(self) > duration('1s')",
      "{'a': 1}.a == 1",
      "1u == 1u",
    ])
      assert.equal(compileFast(rule), undefined, rule);
  });

  const selves: CelInput[] = [
    m({}),
    m({ a: 1n, b: "x", c: true, l: [1n, 2n, 3n], s: "hello/world" }),
    m({ a: -5n, b: "", c: false, l: [], s: "", d: 1.5 }),
    m({ a: 9223372036854775807n, b: "é", l: ["x", "y"], s: "%2F/../#" }),
    m({ l: [m({ name: "a" }), m({ name: "b" }), m({ name: "a" })], b: "zz" }),
    m({ l: [m({ name: "a", port: 80n }), m({})], b: 3n }),
  ];
  const rules = [
    "self.a + 1 == 2",
    "self.a + 1 > 0",
    "self.a * 2 < 10",
    "self.a - 1 <= self.a",
    "-self.a >= 0",
    "self.a == 1.0",
    "self.d > 1",
    "self.b == 'x' && self.c",
    "self.b == 'x' || self.missing == 1",
    "self.missing == 1 || self.b == 'x'",
    "self.missing == 1 && false",
    "false && self.missing == 1",
    "self.missing == 1 && true",
    "has(self.a) ? self.a > 0 : true",
    "!has(self.l) || self.l.all(x, x != 'q')",
    "self.l.exists(x, x == 2)",
    "self.l.exists_one(x, x == 'x')",
    "self.l.all(x, self.l.exists_one(y, has(x.name) && has(y.name) && x.name == y.name))",
    "self.l.map(x, has(x.name) ? x.name : 'none') == ['a', 'b', 'a']",
    "self.l.filter(x, has(x.port)).size() == 1",
    "size(self.l) > 0 ? self.l[0] == self.l[size(self.l) - 1] : true",
    "self.l[5] == 1",
    "self.b in ['x', 'zz']",
    "'a' in self",
    "self.b < 'y'",
    "self.s.startsWith('hello') && self.s.endsWith('world') && self.s.contains('/')",
    "self.s.matches('^[a-z]+/[a-z]+$')",
    "self.s.matches('(')",
    "self.b.size() == 1",
    "size(self) >= 1",
    "self.l + self.l == self.l",
    "type(self.a) == int ? self.a >= 1 : self.b.size() <= 15",
    "type(self.b) == string",
    "isIP(self.b)",
    "self.all(k, k != 'zz')",
    "self.c == self.b",
    "self.l == self.l",
    "self == self",
  ];
  for (const rule of rules) {
    void test(`agrees with the interpreter: ${rule}`, () => {
      for (const self of selves) agree(rule, self);
    });
  }

  void test("agrees with the interpreter on generated values for every Gateway rule it compiles", () => {
    const rules = [...new Set(allGatewayRules())].filter(
      (r) => compileFast(r, { isIP: k8sIsIP }) !== undefined,
    );
    const name = fc.constantFrom("a", "b", "name", "type", "value", "group", "kind", "port", "namespace");
    const scalar = fc.oneof(
      fc.constantFrom(
        "",
        "/",
        "/a",
        "//x",
        "/a/../b",
        "%2F",
        "Exact",
        "PathPrefix",
        "RegularExpression",
        "Service",
        "*.a.com",
        "1.2.3.4",
        "a#b",
      ),
      fc.bigInt({ min: -3n, max: 70000n }),
      fc.boolean(),
    );
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: "small" }, scalar, tie("list"), tie("map")),
      list: fc.array(tie("value"), { maxLength: 3 }),
      map: fc.dictionary(name, tie("value"), { maxKeys: 4 }).map((o) => new Map(Object.entries(o))),
    }));
    fc.assert(
      fc.property(fc.constantFrom(...rules), value, (rule, self) => agree(rule, self as CelInput)),
      { numRuns: 3000 },
    );
  });
});

describe("validateObject with compiled rules", () => {
  after(() => useCompiledRules(true));

  /** Every object of the YAML files under the repository's testdata and examples. */
  function objects(): KubeObject[] {
    const out: KubeObject[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (/\.ya?ml$/.test(name)) {
          const text = readFileSync(path, "utf8");
          for (const doc of parseDocuments(text, path).objects) out.push(doc.object);
        }
      }
    };
    const root = new URL("../../", import.meta.url).pathname;
    for (const dir of ["testdata", "examples"]) walk(join(root, dir));
    return out;
  }

  void test("gives the same results as the interpreter on the repository's inputs and on mutated ones", () => {
    const inputs = objects();
    assert.ok(inputs.length > 100, `${inputs.length} objects`);
    const mutate = (value: unknown, i: number): unknown => {
      const text = JSON.stringify(value)
        .replaceAll('"PathPrefix"', i % 2 === 0 ? '"Exact"' : '"RegularExpression"')
        .replaceAll('"/', i % 3 === 0 ? '"/a/../' : '"%2F')
        .replaceAll('"Service"', i % 5 === 0 ? '"Other"' : '"Service"');
      return JSON.parse(text) as unknown;
    };
    const all = [...inputs, ...inputs.map((o, i) => mutate(o, i) as KubeObject)];
    for (const object of all) {
      useCompiledRules(false);
      const reference = validateObject(object);
      useCompiledRules(true);
      const fast = validateObject(object);
      assert.deepEqual(fast, reference, `${object.kind} ${object.metadata.name}`);
    }
  });
});
