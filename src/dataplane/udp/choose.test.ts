import assert from "node:assert/strict";
import { test } from "node:test";
import { chooseTarget } from "./choose.ts";
import type { UdpRoutePlan, UdpShare } from "./plan.ts";

const route = (...shares: UdpShare[]): UdpRoutePlan => ({
  route: { kind: "UDPRoute", namespace: "ns", name: "r" },
  shares,
});
const share = (name: string, weight: number, endpoints = 1): UdpShare => ({
  weight,
  backend: {
    id: name,
    endpoints: Array.from({ length: endpoints }, (_, i) => ({ address: `10.0.0.${i + 1}`, port: 53 })),
  },
});

/** A deterministic sequence standing for Math.random. */
function sequence(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
}

test("no route, no weight, invalid share, no endpoint: each says why", () => {
  assert.deepEqual(chooseTarget(undefined, Math.random), { ok: false, reason: "no_route" });
  assert.deepEqual(chooseTarget(route(), Math.random), { ok: false, reason: "no_backend" });
  assert.deepEqual(chooseTarget(route(share("a", 0)), Math.random), { ok: false, reason: "no_backend" });
  assert.deepEqual(chooseTarget(route({ weight: 1 }), Math.random), { ok: false, reason: "invalid_backend" });
  assert.deepEqual(chooseTarget(route(share("a", 1, 0)), Math.random), { ok: false, reason: "no_endpoint" });
});

test("shares are picked in proportion to their weights; weight 0 never", () => {
  const r = route(share("v1", 70), share("v3", 0), share("v2", 30));
  const counts = new Map<string, number>();
  const n = 1000;
  for (let i = 0; i < n; i++) {
    // Evenly spread points over [0, 1): the split is exact.
    const c = chooseTarget(r, sequence([i / n, 0]));
    assert.ok(c.ok);
    counts.set(c.target.backendId, (counts.get(c.target.backendId) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { v1: 700, v2: 300 });
});

test("the share of an invalid backendRef is dropped, the rest forwarded", () => {
  const r = route(share("ok", 1), { weight: 1 });
  assert.equal(chooseTarget(r, sequence([0.25, 0])).ok, true);
  assert.deepEqual(chooseTarget(r, sequence([0.75, 0])), { ok: false, reason: "invalid_backend" });
});

test("endpoints of the chosen backend are picked uniformly", () => {
  const r = route(share("a", 1, 4));
  const picked = [0, 0.25, 0.5, 0.75, 0.999].map((x) => {
    const c = chooseTarget(r, sequence([0, x]));
    return c.ok ? c.target.address : "";
  });
  assert.deepEqual(picked, ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.4"]);
});
