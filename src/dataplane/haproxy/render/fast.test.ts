// When a frontend routes fast (fast.ts) and when it must keep the general chain: every rule feature
// that needs per-request work beyond one lookup, every listener shape the key cannot express.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { IR, IRBackend, IRHTTPRule, IRVirtualHost } from "../../../ir/types.ts";
import { render } from "./index.ts";
import {
  gatewayIR,
  GOLDEN_OPTIONS,
  haproxyAvailable,
  haproxyCheck,
  type ListenerOverrides,
} from "./testutil.ts";

const BACKEND = "service/default/a/80";

function rule(path: string, extra: Partial<IRHTTPRule> = {}): IRHTTPRule {
  return {
    id: `httproute/default/r/rule/0/match/${path}`,
    route: { kind: "HTTPRoute", namespace: "default", name: "r" },
    ruleIndex: 0,
    matchIndex: 0,
    match: { path: { type: "PathPrefix", value: path }, headers: [], queryParams: [] },
    filters: [],
    backends: [{ backend: BACKEND, weight: 1, filters: [] }],
    ...extra,
  };
}

function ir(virtualHosts: IRVirtualHost[], listener: ListenerOverrides = {}): IR {
  const backend: IRBackend = {
    id: BACKEND,
    source: { kind: "Service", namespace: "default", name: "a" },
    port: 80,
    protocol: "http",
    endpoints: [{ address: "10.0.0.1", port: 8080 }],
  };
  return gatewayIR(virtualHosts, [backend], listener);
}

function isFast(input: IR): boolean {
  return render(input, GOLDEN_OPTIONS).config.includes("# fast routing");
}

test("plain PathPrefix rules on exact and catch-all hostnames route fast", () => {
  const input = ir([
    { hostname: "a.example.com", rules: [rule("/longer/path"), rule("/x"), rule("/")] },
    { hostname: "*", rules: [rule("/")] },
  ]);
  const out = render(input, GOLDEN_OPTIONS);
  assert.ok(out.config.includes("# fast routing"));
  assert.ok(out.config.includes("backend gh_404") && out.config.includes("backend gh_500"));
  // The general chain's maps are not looked up, so they are not written (nor updated at runtime).
  assert.deepEqual(
    Object.keys(out.files).filter((f) => f.startsWith("maps/")),
    ["maps/fast.map"],
  );
  if (haproxyAvailable()) {
    const check = haproxyCheck(input);
    assert.ok(check.ok, check.output);
  }
});

test("rules with all-invalid or zero-weight backends map to gh_500 and keep fast routing", () => {
  const invalid = rule("/bad", { backends: [{ weight: 1, filters: [], invalid: true }] });
  const none = rule("/none", { backends: [] });
  const zero = rule("/zero", { backends: [{ backend: BACKEND, weight: 0, filters: [] }] });
  const out = render(ir([{ hostname: "*", rules: [none, zero, invalid] }]), GOLDEN_OPTIONS);
  const map = out.files["maps/fast.map"] ?? "";
  for (const p of ["/bad/", "/none/", "/zero/"]) assert.match(map, new RegExp(`#${p} gh_500$`, "m"));
});

test("anything needing per-request work, or a key fast routing cannot express, keeps the general chain", () => {
  const header = { name: "x-a", type: "Exact" as const, value: "1" };
  const cases: Array<[string, IR]> = [
    [
      "an Exact path",
      ir([
        {
          hostname: "*",
          rules: [
            rule("/", { match: { path: { type: "Exact", value: "/" }, headers: [], queryParams: [] } }),
          ],
        },
      ]),
    ],
    [
      "a header match",
      ir([
        {
          hostname: "*",
          rules: [
            rule("/", {
              match: { path: { type: "PathPrefix", value: "/" }, headers: [header], queryParams: [] },
            }),
          ],
        },
      ]),
    ],
    [
      "a method match",
      ir([
        {
          hostname: "*",
          rules: [
            rule("/", {
              match: {
                path: { type: "PathPrefix", value: "/" },
                headers: [],
                queryParams: [],
                method: "GET",
              },
            }),
          ],
        },
      ]),
    ],
    ["a timeout", ir([{ hostname: "*", rules: [rule("/", { timeouts: { requestMs: 1000 } })] }])],
    [
      "session persistence",
      ir([
        {
          hostname: "*",
          rules: [rule("/", { sessionPersistence: { type: "Cookie", name: "s", lifetime: "Session" } })],
        },
      ]),
    ],
    [
      "two weighted backends",
      ir([
        {
          hostname: "*",
          rules: [
            rule("/", {
              backends: [
                { backend: BACKEND, weight: 1, filters: [] },
                { backend: BACKEND, weight: 2, filters: [] },
              ],
            }),
          ],
        },
      ]),
    ],
    [
      "a backendRef filter",
      ir([
        {
          hostname: "*",
          rules: [
            rule("/", {
              backends: [
                {
                  backend: BACKEND,
                  weight: 1,
                  filters: [
                    {
                      type: "RequestHeaderModifier",
                      headers: { set: [{ name: "x", value: "1" }], add: [], remove: [] },
                    },
                  ],
                },
              ],
            }),
          ],
        },
      ]),
    ],
    ["a wildcard hostname", ir([{ hostname: "*.example.com", rules: [rule("/")] }])],
    [
      "a listener hostname",
      ir([{ hostname: "a.example.com", rules: [rule("/")] }], { hostname: "a.example.com" }),
    ],
    ["a longer prefix after a shorter one", ir([{ hostname: "*", rules: [rule("/a"), rule("/abc/def")] }])],
  ];
  for (const [name, input] of cases) assert.equal(isFast(input), false, name);
  assert.equal(isFast(ir([{ hostname: "*", rules: [rule("/abc/def"), rule("/a")] }])), true);
  assert.equal(
    isFast(ir([{ hostname: "*", rules: [rule("/", { retry: { attempts: 2, codes: [503] } })] }])),
    true,
  );
});

test("rule-level filters keep fast routing: the rule is found in fast-rules.map by the same key", () => {
  const filter = {
    type: "RequestHeaderModifier" as const,
    headers: { set: [{ name: "x", value: "1" }], add: [], remove: [] },
  };
  const input = ir([
    { hostname: "a.example.com", rules: [rule("/f", { filters: [filter] }), rule("/")] },
    { hostname: "*", rules: [rule("/")] },
  ]);
  const out = render(input, GOLDEN_OPTIONS);
  assert.ok(out.config.includes("# fast routing"));
  const rules = out.files["maps/fast-rules.map"] ?? "";
  const fast = out.files["maps/fast.map"] ?? "";
  // The same keys in the same order; sentinels name no rule.
  assert.deepEqual(
    rules.split("\n").map((l) => l.split(" ")[0]),
    fast.split("\n").map((l) => l.split(" ")[0]),
  );
  assert.match(rules, /^a\.example\.com@l\w+# -$/m);
  const rid = /#\/f\/ (r\w+)$/m.exec(rules)?.[1];
  assert.ok(rid !== undefined);
  assert.ok(out.config.includes(`http-request set-header x 1 if { var(txn.gh_rule) -m str ${rid} }`));
  // Without filters there is no second lookup.
  const plain = render(ir([{ hostname: "*", rules: [rule("/")] }]), GOLDEN_OPTIONS);
  assert.equal(plain.files["maps/fast-rules.map"], undefined);
  assert.ok(!plain.config.includes("txn.gh_rule"));
  if (haproxyAvailable()) {
    const check = haproxyCheck(input);
    assert.ok(check.ok, check.output);
  }
});
