import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { IR } from "../../ir/types.ts";
import { degrade } from "./degrade.ts";
import { checkRenderable } from "./render/index.ts";

const load = (name: string): IR =>
  parse(readFileSync(new URL(`../../../testdata/render/${name}.ir.yaml`, import.meta.url), "utf8")) as IR;

test("a rule the renderer refuses is left out, match included; everything else still renders", () => {
  const ir = load("http-basic");
  const vh = ir.gateways[0]?.listeners[0]?.virtualHosts?.[0];
  const rule = vh?.rules[0];
  assert.ok(rule !== undefined && ir.backends[0] !== undefined);
  // A retry backoff is something HAProxy 2.6 cannot do.
  rule.retry = { codes: [], backoffMs: 100 };
  rule.filters.push({
    type: "RequestHeaderModifier",
    headers: { set: [{ name: "x-a", value: "1" }], add: [], remove: [] },
  });
  const issues = checkRenderable(ir);
  assert.ok(issues.length > 0, "a retry backoff is expected to be refused by the renderer");
  const out = degrade(ir, issues);
  assert.deepEqual(out.fatal, []);
  assert.deepEqual(checkRenderable(out.ir), []);
  const rules = out.ir.gateways[0]?.listeners[0]?.virtualHosts?.[0]?.rules ?? [];
  assert.equal(rules.length, (vh?.rules.length ?? 0) - 1);
  assert.ok(rules.every((r) => r.id !== rule.id));
  assert.deepEqual(out.degradations[0]?.route, rule.route);
  // A match the renderer refuses goes with its rule (it must not stay behind in an error rule).
  rule.match.path = { type: "RegularExpression", value: "/x(a|b)\n  http-request deny" };
  const again = degrade(ir, checkRenderable(ir));
  assert.deepEqual(again.fatal, []);
  assert.deepEqual(checkRenderable(again.ir), []);
  // The input IR is untouched.
  assert.equal(rule.filters.length > 0, true);
});
