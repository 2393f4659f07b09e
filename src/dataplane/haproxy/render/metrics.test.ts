import assert from "node:assert/strict";
import { test } from "node:test";
import type { IRBackend, IRHTTPRule } from "../../../ir/types.ts";
import { render } from "./index.ts";
import { accessLogFormat } from "./logging.ts";
import { ruleCounterIdentities } from "./metrics.ts";
import { GOLDEN_OPTIONS, gatewayIR, haproxyAvailable, haproxyCheck } from "./testutil.ts";

const backend = (name: string): IRBackend => ({
  id: `service/default/${name}/80`,
  source: { kind: "Service", namespace: "default", name },
  port: 80,
  protocol: "http",
  endpoints: [{ address: "127.0.0.1", port: 9000 }],
});

function rule(i: number, path: string, backends: string[], extra: Partial<IRHTTPRule> = {}): IRHTTPRule {
  return {
    id: `httproute/default/shop/rule/${i}/match/0`,
    route: { kind: "HTTPRoute", namespace: "default", name: "shop" },
    ruleIndex: i,
    matchIndex: 0,
    match: { path: { type: "PathPrefix", value: path }, headers: [], queryParams: [] },
    filters: [],
    backends: backends.map((b) => ({ backend: `service/default/${b}/80`, weight: 1, filters: [] })),
    ...extra,
  };
}

const fastIR = gatewayIR(
  [
    {
      hostname: "shop.test",
      rules: [rule(0, "/cart", ["api"], { ruleName: "cart" }), rule(1, "/", ["web"])],
    },
  ],
  [backend("api"), backend("web")],
);
const chainIR = gatewayIR(
  [{ hostname: "*.shop.test", rules: [rule(0, "/", ["api", "web"])] }],
  [backend("api"), backend("web")],
);
const ON = {
  ...GOLDEN_OPTIONS,
  ruleCounters: true,
  accessLog: { address: "127.0.0.1:5140", token: "t0ken" },
};

test("rule counters and access logs are off unless asked for", () => {
  const config = render(fastIR, GOLDEN_OPTIONS).config;
  for (const word of ["track-sc0", "gh_rule_stats", "log-format", "capture request"])
    assert.ok(!config.includes(word), word);
});

test("every counted rule id maps back to its Gateway API identity", () => {
  for (const ir of [fastIR, chainIR]) {
    const out = render(ir, ON);
    assert.match(out.config, /http-request track-sc0 var\(txn\.gh_rule\) table gh_rule_stats/);
    const ids = ruleCounterIdentities(ir, ON);
    // The ids the configuration and maps can set txn.gh_rule to are exactly the identities' keys.
    const text = out.config + Object.values(out.files).join("\n");
    const rendered = new Set(text.match(/\br[0-9a-f]{12}\b/g));
    assert.ok(ids.size > 0);
    assert.deepEqual([...rendered].sort(), [...ids.keys()].sort());
  }
  const ids = [...ruleCounterIdentities(fastIR, ON).values()];
  assert.deepEqual(
    ids.map((i) => [i.gateway, i.listener, i.routeKind, i.routeNamespace, i.routeName, i.rule, i.backends]),
    [
      ["default/gw", "http", "HTTPRoute", "default", "shop", "cart", ["default/api:80"]],
      ["default/gw", "http", "HTTPRoute", "default", "shop", "1", ["default/web:80"]],
    ],
  );
  const weighted = [...ruleCounterIdentities(chainIR, ON).values()][0];
  assert.deepEqual(weighted?.backends, ["default/api:80", "default/web:80"]);
});

test("the access log format is a JSON object with a placeholder per field", () => {
  const sample = accessLogFormat("t0ken").replace(/%\{[^}]*\}[A-Za-z]+|%\[[^\]]*\]|%[A-Za-z]+/g, "0");
  const parsed = JSON.parse(sample) as Record<string, unknown>;
  assert.ok(
    ["rid", "status", "Ta", "TR", "Tr", "host", "xrid", "path", "ci", "sip"].every((k) => k in parsed),
  );
});

test(
  "configurations with counters and access logs pass haproxy -c without warnings",
  { skip: !haproxyAvailable() },
  () => {
    for (const ir of [fastIR, chainIR]) {
      const r = haproxyCheck(ir, {
        ruleCounters: true,
        accessLog: { address: "127.0.0.1:5140", token: "t0ken" },
        metricsAddress: "127.0.0.1:9902",
      });
      assert.ok(r.ok, r.output);
      assert.doesNotMatch(r.output, /WARNING|\[WARNING\]/, r.output);
    }
  },
);

test("fast routing: the counters track the rule lookup itself unless the rule id is needed in txn.gh_rule", () => {
  const fe = (config: string): string[] =>
    config
      .split("\n")
      .filter((l) => /set-var\(txn\.gh_rule\)|track-sc0|after-response .*sc_inc_gpc/.test(l))
      .map((l) => l.trim().replace(/\/\S+\/maps\//g, "maps/"));
  // Counters alone: no variable, one lookup in the track line, one status-class rule.
  assert.deepEqual(fe(render(fastIR, { ...GOLDEN_OPTIONS, ruleCounters: true }).config), [
    "http-request track-sc0 var(txn.gh_k),map_beg(maps/fast-rules.map) table gh_rule_stats",
    "http-after-response unset-var(txn.gh_n) if { status 200:299 } { sc_inc_gpc(1,0) -m found } || " +
      "{ status 300:399 } { sc_inc_gpc(2,0) -m found } || { status 400:499 } { sc_inc_gpc(3,0) -m found } || " +
      "{ status 500:599 } { sc_inc_gpc(4,0) -m found } || { status 100:199 } { sc_inc_gpc(0,0) -m found }",
  ]);
  // With the access log the id is logged: the variable is set and tracked.
  assert.deepEqual(fe(render(fastIR, ON).config).slice(0, 2), [
    "http-request set-var(txn.gh_rule) var(txn.gh_k),map_beg(maps/fast-rules.map)",
    "http-request track-sc0 var(txn.gh_rule) table gh_rule_stats",
  ]);
  // The access log without counters still names the rule (the id was never set before).
  const logOnly = { ...GOLDEN_OPTIONS, accessLog: ON.accessLog };
  assert.deepEqual(fe(render(fastIR, logOnly).config), [
    "http-request set-var(txn.gh_rule) var(txn.gh_k),map_beg(maps/fast-rules.map)",
  ]);
});
