import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { parseAllDocuments } from "yaml";
import { parseDocuments } from "./load.ts";
import type { ParsedFile } from "./load.ts";
import { fastDocuments } from "./yaml-fast.ts";

/** What the `yaml` library makes of a text (the reference the fast path must equal). */
function yamlValues(text: string): unknown[] {
  const docs = parseAllDocuments(text, { merge: true });
  if ("empty" in docs) return [];
  return docs.map((doc) => doc.toJS({ maxAliasCount: 1000 }) as unknown);
}

/** Everything a caller sees of a parse, as comparable data. */
function outcome(parsed: ParsedFile): unknown {
  return {
    objects: parsed.objects,
    errors: parsed.errors.map((error) => [error.message, error.location]),
    warnings: parsed.warnings,
    broken: parsed.broken,
    rejected: parsed.rejected.map(({ identity, position, errors }) => [
      identity,
      position,
      errors.map((error) => error.message),
    ]),
  };
}

const service = (extra: string) => `apiVersion: v1
kind: Service
metadata:
  name: svc
  namespace: default
  annotations:
${extra}
spec:
  ports:
    - port: 80
`;

describe("fastDocuments", () => {
  void test("reads YAML 1.2 core-schema scalars as the yaml library does (as Kubernetes' JSON would)", () => {
    const text = [
      "on: yes",
      "off: no",
      "bools: [true, True, TRUE, false, y, n, On, Off]",
      "octalish: 0755",
      "octal: 0o755",
      "hex: 0x1F",
      "underscore: 1_000",
      "date: 2001-12-14",
      "timestamp: 2001-12-14t21:59:43.10-05:00",
      "nulls: [~, null, Null, NULL, nULL]",
      "empty:",
      "floats: [1e3, .5, -.5, 1., +12, -0, .inf, -.Inf, .NaN, 1e400, -1e400]",
      "big: 12345678901234567890",
      "quoted: ['1', \"2\", 'it''s', \"\\u00e9\\t\"]",
      "block: |",
      "  x",
      "  y",
      "folded: >-",
      "  p",
      "  q",
      "plain: multi",
      "  line",
      "'1': numeric-looking key",
      "__proto__: kept as a key",
      "",
    ].join("\n");
    const fast = fastDocuments(text);
    assert.ok(fast !== undefined);
    assert.deepEqual(fast.values, yamlValues(text));
    const value = fast.values[0] as Record<string, unknown>;
    // YAML 1.1 booleans, octals and timestamps are plain strings / decimal numbers here.
    assert.equal(value["on"], "yes");
    assert.equal(value["off"], "no");
    assert.deepEqual(value["bools"], [true, true, true, false, "y", "n", "On", "Off"]);
    assert.equal(value["octalish"], 755);
    assert.equal(value["octal"], 0o755);
    assert.equal(value["date"], "2001-12-14");
    assert.equal(value["timestamp"], "2001-12-14t21:59:43.10-05:00");
    assert.equal(value["underscore"], "1_000");
    assert.ok(Object.hasOwn(value, "__proto__"));
  });

  void test("counts documents as the yaml library does (empty ones included) and gives where each starts", () => {
    const text = "---\n---\na: 1\n---\n...\n---\nb: 2\n--- {c: 3}\n";
    const fast = fastDocuments(text);
    assert.ok(fast !== undefined);
    assert.deepEqual(fast.values, yamlValues(text));
    assert.equal(fast.starts.length, fast.values.length);
    assert.equal(text.slice(fast.starts[1]).split("\n")[0], "a: 1");
    assert.equal(text.slice(fast.starts.at(-1)).split("\n")[0], "{c: 3}");
  });

  for (const [what, text] of [
    ["a syntax error", "a: [1, 2\nb: 3\n"],
    ["a duplicate key", "a: 1\na: 2\n"],
    ["a complex key", "? [a]\n: b\n"],
    ["a tag", "a: !!str 1\n"],
    ["a custom tag", "a: !foo 1\n"],
    ["an anchor and alias", "a: &x 1\nb: *x\n"],
    ["a merge key", "a: {b: 1}\nc:\n  <<: {b: 2}\n"],
    ["a directive", "%YAML 1.2\n---\na: 1\n"],
    ["a flow collection closing at a line start", "a: [\n  1,\n]\n"],
  ] as const) {
    void test(`leaves ${what} to the yaml library`, () => {
      assert.equal(fastDocuments(text), undefined);
    });
  }

  void test("leaves every input the yaml library rejects to it (errors keep their line and column)", () => {
    const rejected = [
      "a: b: c\n",
      "a:\n\tb: 1\n",
      "a: 'x\n",
      "- a\nb: 1\n",
      "a:\n  - b\n c: 1\n",
      'a: "\\q"\n',
      "key with\n  newline: 1\n",
      "a: 1\n  b: 2\n",
      "a: @b\n",
      "a: `b\n",
      "a: 'b'c\n",
      "{a: 1}}\n",
      "a:\n- b\n-c\n",
    ];
    for (const text of rejected) {
      const docs = parseAllDocuments(text);
      assert.ok(!("empty" in docs) && docs.some((doc) => doc.errors.length > 0), `yaml rejects ${text}`);
      assert.equal(fastDocuments(text), undefined, text);
    }
  });

  void test("equals the yaml library on generated JSON-like documents", () => {
    const key = fc.stringMatching(/^[a-z][a-zA-Z0-9./_-]{0,12}$/);
    const scalar = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.integer(),
      fc.double({ noNaN: true }),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom("yes", "no", "on", "off", "0755", "0o17", "0x1f", "1e400", "2024-01-01", "~", "1_0"),
    );
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof({ depthSize: "small" }, scalar, tie("list"), tie("map")),
      list: fc.array(tie("tree"), { maxLength: 4 }),
      map: fc.dictionary(key, tie("tree"), { maxKeys: 4 }),
    }));
    // Values written as YAML by hand would be: plain where the string reads back as itself.
    fc.assert(
      fc.property(
        fc.array(fc.dictionary(key, tree, { maxKeys: 5 }), { minLength: 1, maxLength: 3 }),
        (objects) => {
          const text = objects.map((o) => toYaml(o, 0)).join("---\n");
          const fast = fastDocuments(text);
          if (fast === undefined) return; // left to the yaml library: nothing to compare
          assert.deepEqual(fast.values, yamlValues(text));
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** A small block-style YAML writer: strings plain when safe-looking, else double-quoted (JSON). */
function toYaml(value: unknown, indent: number): string {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return `${pad}[]\n`;
    return value.map((item) => `${pad}-\n${toYaml(item, indent + 2)}`).join("");
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) return `${pad}{}\n`;
    return entries.map(([k, v]) => `${pad}${k}:\n${toYaml(v, indent + 2)}`).join("");
  }
  if (typeof value === "string") {
    return /^[a-zA-Z0-9._~/-][a-zA-Z0-9 ._~/-]*$/.test(value) && !value.endsWith(" ")
      ? `${pad}${value}\n`
      : `${pad}${JSON.stringify(value)}\n`;
  }
  if (typeof value === "number" && !Number.isFinite(value)) return `${pad}.nan\n`;
  return `${pad}${JSON.stringify(value)}\n`;
}

describe("parseDocuments: the fast path and the yaml path give the same result", () => {
  const cases: Array<[string, string]> = [
    [
      "valid objects",
      `${service('    a: "1"')}---\n${service('    b: "2"').replace("name: svc", "name: other")}`,
    ],
    [
      "a rejected object after others (field position from its document alone)",
      `${service('    a: "1"')}---\n# a comment\n\n${service("    b: 2").replace("name: svc", "name: bad")}---\n${service('    c: "3"').replace("name: svc", "name: third")}`,
    ],
    [
      "a rejected object in a flow document",
      `--- {apiVersion: v1, kind: Service, metadata: {name: s}, spec: {ports: [{port: 70000}]}}\n`,
    ],
    [
      "a rejected object with a missing field",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - name: x\n",
    ],
    [
      "an invalid List item",
      `apiVersion: v1\nkind: List\nitems:\n  - ${service("      a: b").split("\n").join("\n    ").replace("    annotations:", "  annotations:").trimEnd()}\n`,
    ],
    ["a document that is not a mapping", "a: 1\n---\n- x\n---\nplain\n"],
    ["a document without a name", "apiVersion: v1\nkind: Service\nmetadata: {}\n"],
    ["ignored kinds", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n"],
    ["CRLF line ends", service("    a: b\n    c: 3").replace(/\n/g, "\r\n")],
    ["a byte-order mark", `\ufeff${service("    a: 3")}`],
  ];
  for (const [what, text] of cases) {
    void test(what, () => {
      assert.ok(fastDocuments(text) !== undefined, "the fast path takes this input");
      const fast = parseDocuments(text, "f.yaml");
      const slow = parseDocuments(text, "f.yaml", { fast: false });
      assert.deepEqual(outcome(fast), outcome(slow));
    });
  }

  void test("a rejected object reports the line and column of its field in the file", () => {
    const good = service('    a: "1"');
    const bad = service("    b: 2").replace("name: svc", "name: bad");
    const text = `${good}---\n${bad}`;
    const result = parseDocuments(text, "f.yaml");
    const error = result.errors[0];
    assert.ok(error !== undefined);
    const line = text.split("\n").findIndex((l) => l === "    b: 2") + 1;
    assert.equal(error.location.line, line);
    assert.equal(error.location.column, 8);
    assert.match(error.message, new RegExp(`^f\\.yaml#1 Service default/bad: line ${line}, column 8: `));
  });

  void test("duplicate keys are still reported by the yaml library, with line and column", () => {
    const text = service('    a: "1"\n    a: "2"');
    const result = parseDocuments(text, "f.yaml");
    assert.equal(result.broken, true);
    assert.match(result.errors[0]?.message ?? "", /^f\.yaml#0: line 8, column 5: Map keys must be unique/);
  });
});
