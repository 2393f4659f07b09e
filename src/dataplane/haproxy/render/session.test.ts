import assert from "node:assert/strict";
import { test } from "node:test";
import type { IR, IRBackend } from "../../../ir/types.ts";
import { planApply } from "../apply/plan.ts";
import { render } from "./index.ts";
import type { RenderedConfig } from "./model.ts";
import { cookiePath, endpointKey, pinLines, sessionProfile } from "./session.ts";
import { gatewayIR, GOLDEN_OPTIONS } from "./testutil.ts";

const prefix = (value: string) => ({ type: "PathPrefix" as const, value });
const regex = (value: string) => ({ type: "RegularExpression" as const, value });

test("cookie Path: the rule's prefix or exact path, without a trailing slash", () => {
  assert.equal(cookiePath(prefix("/")), "/");
  assert.equal(cookiePath(prefix("/a")), "/a");
  assert.equal(cookiePath(prefix("/a/b/")), "/a/b");
  assert.equal(cookiePath({ type: "Exact", value: "/cart/checkout" }), "/cart/checkout");
});

test("cookie Path of a regular expression: its literal prefix up to a slash (GEP-1619 /p1/p2/*/p3 → /p1/p2)", () => {
  assert.equal(cookiePath(regex("/p1/p2/.*/p3")), "/p1/p2");
  assert.equal(cookiePath(regex("^/shop/v1\\.[0-9]+/items")), "/shop");
  assert.equal(cookiePath(regex("/api/v1\\.0/x")), "/api/v1.0");
  // A quantifier makes the character before it optional, the slash included.
  assert.equal(cookiePath(regex("/a/b?/c")), "/a");
  assert.equal(cookiePath(regex("/a/?b")), "/");
  assert.equal(cookiePath(regex("/a/\\d+")), "/a");
  // An alternation or a leading class: no common literal prefix.
  assert.equal(cookiePath(regex("/a/x|/b/y")), "/");
  assert.equal(cookiePath(regex("[/]a")), "/");
  assert.equal(cookiePath(regex("(?i)/a/b")), "/");
});

test("cookie Path stops before a segment a cookie attribute cannot carry", () => {
  assert.equal(cookiePath(prefix("/a/b;c/d")), "/a");
  assert.equal(cookiePath(prefix("/x;y")), "/");
});

test("profiles: Permanent cookies get Max-Age = absolute timeout, Session cookies none; zero-less seconds round up", () => {
  const match = { path: prefix("/cart"), headers: [], queryParams: [] };
  assert.deepEqual(
    sessionProfile({ type: "Cookie", name: "c", lifetime: "Permanent", absoluteTimeoutMs: 1500 }, match),
    { cookie: { name: "c", path: "/cart", maxLifeS: 2, maxAgeS: 2 } },
  );
  assert.deepEqual(
    sessionProfile({ type: "Cookie", name: "c", lifetime: "Session", absoluteTimeoutMs: 60_000 }, match),
    { cookie: { name: "c", path: "/cart", maxLifeS: 60 } },
  );
  assert.deepEqual(sessionProfile({ type: "Cookie", name: "c", lifetime: "Session" }, match), {
    cookie: { name: "c", path: "/cart" },
  });
  assert.deepEqual(
    sessionProfile({ type: "Header", name: "X-S", lifetime: "Session", absoluteTimeoutMs: 100 }, match),
    {
      header: { name: "X-S", maxLifeS: 1 },
    },
  );
});

test("pin lines check the session's expiry only when it has one", () => {
  assert.equal(pinLines("r1", { type: "Cookie", name: "c", lifetime: "Session" }).length, 1);
  const lines = pinLines("r1", { type: "Cookie", name: "c", lifetime: "Session", absoluteTimeoutMs: 5000 });
  assert.equal(lines.length, 2);
  assert.match(lines[1] ?? "", /req\.cook\(c\),field\(3,\.\),sub\(txn\.gh_now\) -m int gt 0/);
});

test("endpoint keys: hex of address:port (IPv6 bracketed), no token separator", () => {
  assert.equal(Buffer.from(endpointKey({ address: "10.0.0.1", port: 80 }), "hex").toString(), "10.0.0.1:80");
  assert.equal(Buffer.from(endpointKey({ address: "fd00::1", port: 80 }), "hex").toString(), "[fd00::1]:80");
  assert.doesNotMatch(endpointKey({ address: "10.0.0.1", port: 80 }), /\./);
});

/** One rule with cookie persistence over Service `web` with `endpoints` (10.0.0.<n>:8080). */
function stickyIR(endpoints: number[]): IR {
  const backend: IRBackend = {
    id: "service/default/web/80",
    source: { kind: "Service", namespace: "default", name: "web" },
    port: 80,
    protocol: "http",
    endpoints: endpoints.map((n) => ({ address: `10.0.0.${n}`, port: 8080 })),
  };
  return gatewayIR(
    [
      {
        hostname: "*",
        rules: [
          {
            id: "httproute/default/r/rule/0/match/0",
            route: { kind: "HTTPRoute", namespace: "default", name: "r" },
            ruleIndex: 0,
            matchIndex: 0,
            match: { path: { type: "PathPrefix", value: "/" }, headers: [], queryParams: [] },
            filters: [],
            backends: [{ backend: backend.id, weight: 1, filters: [] }],
            sessionPersistence: { type: "Cookie", name: "s", lifetime: "Session" },
          },
        ],
      },
    ],
    [backend],
  );
}

const sessions = (r: RenderedConfig): Map<string, string> =>
  new Map((r.maps["maps/sessions.map"] ?? []).map(([k, v]) => [k.slice(k.lastIndexOf(".") + 1), v]));
const key = (n: number): string => endpointKey({ address: `10.0.0.${n}`, port: 8080 });

test("endpoint changes: endpoints keep their slots, the maps follow, the runtime API carries it", () => {
  const first = render(stickyIR([1, 2, 3]), GOLDEN_OPTIONS);
  // 1 goes: 2 and 3 stay in s2 and s3 (with a fresh render they would move to s1 and s2).
  const second = render(stickyIR([2, 3]), GOLDEN_OPTIONS, first.layout);
  assert.deepEqual(
    [...sessions(second)],
    [
      [key(2), "s2"],
      [key(3), "s3"],
    ],
  );
  const plan = planApply(first, second);
  assert.equal(plan.kind, "runtime");
  assert.ok(plan.kind === "runtime");
  // Only slot 1 changes (to maint), in every section of the backend; no slot gets another endpoint.
  assert.ok(
    plan.servers.every((s) => s.server === "s1" && s.state === "maint"),
    JSON.stringify(plan.servers),
  );
  // 4 and 5 arrive: they fill the empty slots s1 (emptied by the earlier change) and s4.
  const third = render(stickyIR([2, 3, 4, 5]), GOLDEN_OPTIONS, second.layout);
  assert.deepEqual(
    [...sessions(third)].sort(),
    [
      [key(2), "s2"],
      [key(3), "s3"],
      [key(4), "s1"],
      [key(5), "s4"],
    ].sort(),
  );
  // 1 leaves while 4 arrives in the same change: 4 takes the never-used s4, not the s1 just freed
  // (the runtime API fills a slot before the maps stop naming its old endpoint).
  const swapped = render(stickyIR([2, 3, 4]), GOLDEN_OPTIONS, first.layout);
  assert.equal(sessions(swapped).get(key(4)), "s4");
  const again = planApply(second, third);
  assert.equal(again.kind, "runtime");
  // A fresh render (e.g. a restart) fills the slots in order again.
  assert.equal(sessions(render(stickyIR([2, 3]), GOLDEN_OPTIONS)).get(key(2)), "s1");
});

test("a backendRef of weight 0 keeps its pin and choice (never drawn: no bound)", () => {
  const ir = stickyIR([1, 2]);
  const rule = ir.gateways[0]?.listeners[0];
  assert.ok(rule !== undefined && "virtualHosts" in rule);
  const r = rule.virtualHosts[0]?.rules[0];
  assert.ok(r !== undefined);
  r.backends = [
    { backend: "service/default/web/80", weight: 0, filters: [] },
    { backend: "service/default/web/80", weight: 3, filters: [] },
  ];
  const out = render(ir, GOLDEN_OPTIONS);
  const map = (name: string): string[] => (out.maps[`maps/${name}.map`] ?? []).map(([k]) => k);
  assert.ok(
    map("choices").some((k) => k.endsWith("/0")),
    "weight-0 entry has a choice",
  );
  assert.ok(!map("weights").some((k) => k.endsWith("/0")), "weight-0 entry has no bound");
  // Without persistence a weight-0 entry has no choice at all.
  delete r.sessionPersistence;
  const plain = render(ir, GOLDEN_OPTIONS);
  assert.ok(!(plain.maps["maps/choices.map"] ?? []).some(([k]) => k.endsWith("/0")));
});
