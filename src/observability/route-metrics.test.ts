import assert from "node:assert/strict";
import { test } from "node:test";
import { Registry } from "prom-client";
import { GOLDEN_OPTIONS, gatewayIR } from "../dataplane/haproxy/render/testutil.ts";
import { ruleCounterIdentities } from "../dataplane/haproxy/render/metrics.ts";
import { createRouteMetrics, parseRuleStats, RuleTotals, type RuleStatsRead } from "./route-metrics.ts";

const TABLE = `# table: gh_rule_stats, type: string, size:262144, used:2
0x5555dc92e9b8: key=rb541ecc2b3e0 use=0 exp=0 http_req_cnt=7 bytes_in_cnt=73 bytes_out_cnt=631 gpc0=0 gpc1=5 gpc2=0 gpc3=1 gpc4=1
0x5555dc92e9c0: key=- use=0 exp=0 http_req_cnt=2 bytes_in_cnt=1 bytes_out_cnt=2 gpc0=0 gpc1=0 gpc2=0 gpc3=2 gpc4=0
`;

test("show table output is parsed per key", () => {
  const rows = parseRuleStats(TABLE);
  assert.deepEqual(rows.get("rb541ecc2b3e0"), {
    requests: 7,
    bytesIn: 73,
    bytesOut: 631,
    classes: [0, 5, 0, 1, 1],
  });
  assert.equal(rows.size, 2);
});

const read = (pid: number, requests: number): RuleStatsRead => ({
  pid,
  rows: new Map([["r1", { requests, bytesIn: requests, bytesOut: 0, classes: [0, requests, 0, 0, 0] }]]),
});

test("totals only grow across a reload (a new worker starts from zero)", () => {
  const t = new RuleTotals();
  t.update(read(10, 5));
  t.update(read(10, 9));
  assert.equal(t.totals().get("r1")?.requests, 9);
  t.update(read(11, 2)); // reloaded: the old worker's 9 are kept
  assert.equal(t.totals().get("r1")?.requests, 11);
  t.update(read(11, 20)); // more in the new worker than in the old one: still a different pid epoch
  assert.equal(t.totals().get("r1")?.requests, 29);
  assert.deepEqual(t.totals().get("r1")?.classes, [0, 29, 0, 0, 0]);
});

test("the counters are exposed with Gateway API labels; unknown keys are left out", async () => {
  const ir = gatewayIR(
    [
      {
        hostname: "a.test",
        rules: [
          {
            id: "httproute/default/r/rule/0/match/0",
            route: { kind: "HTTPRoute", namespace: "default", name: "r" },
            ruleIndex: 0,
            matchIndex: 0,
            ruleName: "main",
            match: { path: { type: "PathPrefix", value: "/" }, headers: [], queryParams: [] },
            filters: [],
            backends: [{ backend: "service/default/web/80", weight: 1, filters: [] }],
          },
        ],
      },
    ],
    [
      {
        id: "service/default/web/80",
        source: { kind: "Service", namespace: "default", name: "web" },
        port: 80,
        protocol: "http",
        endpoints: [],
      },
    ],
  );
  const options = { ...GOLDEN_OPTIONS, ruleCounters: true };
  const [rid] = [...ruleCounterIdentities(ir, options).keys()];
  assert.ok(rid !== undefined);
  const registry = new Registry();
  const source = {
    read: () => Promise.resolve({ pid: 1, rows: parseRuleStats(TABLE.replace("rb541ecc2b3e0", rid)) }),
  };
  const m = createRouteMetrics(registry, source, options);
  m.setIR(ir);
  m.observeDuration(rid, 12);
  const text = await registry.metrics();
  const labels =
    'gateway_namespace="default",gateway="gw",listener="http",route_kind="HTTPRoute",route_namespace="default",route="r",rule="main",backend="default/web:80"';
  assert.match(text, new RegExp(`gatehouse_route_requests_total\\{${labels}\\} 7\\n`));
  assert.match(text, new RegExp(`gatehouse_route_responses_total\\{${labels},code_class="5xx"\\} 1\\n`));
  assert.match(text, new RegExp(`gatehouse_route_response_bytes_total\\{${labels}\\} 631\\n`));
  assert.match(text, new RegExp(`gatehouse_route_request_duration_seconds_count\\{${labels}\\} 1\\n`));
  assert.doesNotMatch(text, /route="-"|rule="-"/);
});
