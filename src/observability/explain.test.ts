import assert from "node:assert/strict";
import { test } from "node:test";
import type { IRBackend, IRHTTPRule } from "../ir/types.ts";
import { gatewayIR } from "../dataplane/haproxy/render/testutil.ts";
import type { StatusEntry } from "../status/types.ts";
import { explainRequest, explainRoute, routeProblems } from "./explain.ts";

const web: IRBackend = {
  id: "service/default/web/80",
  source: { kind: "Service", namespace: "default", name: "web" },
  port: 80,
  protocol: "http",
  endpoints: [],
};

function rule(route: string, i: number, match: Partial<IRHTTPRule["match"]>): IRHTTPRule {
  return {
    id: `httproute/default/${route}/rule/${i}/match/0`,
    route: { kind: "HTTPRoute", namespace: "default", name: route },
    ruleIndex: i,
    matchIndex: 0,
    match: { path: { type: "PathPrefix", value: "/" }, headers: [], queryParams: [], ...match },
    filters: [],
    backends: [{ backend: web.id, weight: 1, filters: [] }],
  };
}

const ir = gatewayIR(
  [
    {
      hostname: "shop.test",
      rules: [
        rule("beta", 0, { headers: [{ type: "Exact", name: "x-beta", value: "1" }] }),
        rule("shop", 0, { path: { type: "Exact", value: "/cart" } }),
        rule("shop", 1, { path: { type: "PathPrefix", value: "/api" }, method: "POST" }),
      ],
    },
    { hostname: "*.example.test", rules: [rule("wild", 0, {})] },
  ],
  [web],
  { hostname: "*.test" },
);

test("the first rule in IR order serves, headers and method included", () => {
  const beta = explainRequest(ir, [], { host: "shop.test", path: "/cart", headers: { "X-Beta": "1" } });
  assert.equal(beta.verdicts[0]?.route.name, "beta");
  const cart = explainRequest(ir, [], { host: "SHOP.test:8080", path: "/cart?x=1" });
  assert.deepEqual([cart.verdicts[0]?.route.name, cart.verdicts[0]?.rule], ["shop", "0"]);
  assert.equal(cart.verdicts[0]?.backends[0], "default/web:80 (weight 1)");
  const wild = explainRequest(ir, [], { host: "a.b.example.test", path: "/x" });
  assert.equal(wild.verdicts[0]?.virtualHost, "*.example.test");
});

test("why not: listener hostname, route hostnames, rules that need more", () => {
  const other = explainRequest(ir, [], { host: "shop.example.com", path: "/" });
  assert.equal(other.served, false);
  assert.match(
    other.reasons[0] ?? "",
    /no listener accepts host shop\.example\.com \(listener hostnames: http=\*\.test\)/,
  );
  const host = explainRequest(ir, [], { host: "nope.test", path: "/" });
  assert.match(host.reasons[0] ?? "", /no attached route has hostname nope\.test/);
  const get = explainRequest(ir, [], { host: "shop.test", path: "/api/x" });
  assert.equal(get.served, false);
  assert.match(get.reasons[0] ?? "", /rule 1: needs method POST/);
  assert.match(get.reasons[0] ?? "", /beta rule 0: needs header x-beta = 1/);
  assert.equal(explainRequest(ir, [], { host: "shop.test", path: "/api/x", method: "post" }).served, true);
  assert.equal(explainRequest(ir, [], { host: "shop.test", path: "/", port: 81 }).served, false);
});

const rejected: StatusEntry = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "HTTPRoute",
  metadata: { name: "lost", namespace: "default" },
  status: {
    parents: [
      {
        parentRef: { name: "gw", sectionName: "https" },
        conditions: [
          {
            type: "Accepted",
            status: "False",
            reason: "NoMatchingParent",
            message: "no listener named https",
            lastTransitionTime: "2025-01-01T00:00:00Z",
          },
          {
            type: "ResolvedRefs",
            status: "True",
            reason: "ResolvedRefs",
            message: "",
            lastTransitionTime: "2025-01-01T00:00:00Z",
          },
        ],
      },
    ],
  },
};

test("routes: conditions, where the rules are served, and why not", () => {
  const shop = explainRoute(ir, [], { kind: "HTTPRoute", namespace: "default", name: "shop" });
  assert.equal(shop.served.length, 2);
  assert.equal(shop.found, false); // no status given: reported
  const lost = explainRoute(ir, [rejected], { kind: "httproute", namespace: "default", name: "lost" });
  assert.deepEqual(
    lost.conditions[0],
    "default/gw section https: Accepted=False (NoMatchingParent) no listener named https",
  );
  assert.equal(lost.served.length, 0);
  assert.match(lost.reasons.join(" "), /none of its rules is in the configuration/);
  assert.deepEqual(routeProblems([rejected]), [
    "HTTPRoute default/lost on gw/https: Accepted=False (NoMatchingParent) no listener named https",
  ]);
  const miss = explainRequest(ir, [rejected], { host: "x.other", path: "/" });
  assert.match(miss.reasons.at(-1) ?? "", /routes with problems in their status: HTTPRoute default\/lost/);
});
