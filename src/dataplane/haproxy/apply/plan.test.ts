import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { IR } from "../../../ir/types.ts";
import { render } from "../render/index.ts";
import { GOLDEN_OPTIONS } from "../render/testutil.ts";
import { parseMapFile, planApply, serverSlots, structureOf, tcpListenAddresses } from "./plan.ts";

const base = parse(
  readFileSync(new URL("../../../../testdata/render/http-basic.ir.yaml", import.meta.url), "utf8"),
) as IR;

function variant(change: (ir: IR) => void): IR {
  const ir = structuredClone(base);
  change(ir);
  return ir;
}

const rendered = (ir: IR) => render(ir, GOLDEN_OPTIONS);

test("the first configuration always starts HAProxy through a reload", () => {
  assert.deepEqual(planApply(undefined, rendered(base)), { kind: "reload", reason: "first configuration" });
});

test("the same IR is a no-op", () => {
  assert.deepEqual(planApply(rendered(base), rendered(base)), { kind: "noop" });
});

test("endpoint changes within the server slots go through the runtime API", () => {
  const backend = base.backends[0];
  assert.ok(backend !== undefined && backend.endpoints.length >= 1);
  const moved = variant((ir) => {
    const b = ir.backends[0];
    if (b !== undefined) b.endpoints = [{ address: "127.0.0.9", port: 9999 }];
  });
  const plan = planApply(rendered(base), rendered(moved));
  assert.equal(plan.kind, "runtime");
  if (plan.kind !== "runtime") return;
  assert.deepEqual(plan.maps, []);
  assert.deepEqual(plan.servers[0], {
    backend: plan.servers[0]?.backend,
    server: "s1",
    address: "127.0.0.9",
    port: 9999,
    state: "ready",
  });
  // Endpoints that went away leave rotation.
  assert.ok(plan.servers.slice(1).every((s) => s.state === "maint"));
  // ... and back: the same slots are re-enabled.
  const back = planApply(rendered(moved), rendered(base));
  assert.equal(back.kind, "runtime");
});

test("more endpoints than slots changes the structure and reloads", () => {
  const many = variant((ir) => {
    const b = ir.backends[0];
    if (b !== undefined)
      b.endpoints = Array.from({ length: 40 }, (_, i) => ({ address: `10.1.0.${i + 1}`, port: 80 }));
  });
  const plan = planApply(rendered(base), rendered(many));
  assert.deepEqual(plan, { kind: "reload", reason: "the configuration structure changed" });
});

test("a new prefix rule on an existing virtual host is a map update", () => {
  const added = variant((ir) => {
    const vh = ir.gateways[0]?.listeners[0]?.virtualHosts?.[0];
    const rule = vh?.rules[0];
    if (vh === undefined || rule === undefined) return;
    vh.rules.unshift({
      ...structuredClone(rule),
      id: "httproute/default/extra/rule/0/match/0",
      route: { kind: "HTTPRoute", namespace: "default", name: "extra" },
      match: { path: { type: "PathPrefix", value: "/extra-prefix" }, headers: [], queryParams: [] },
    });
  });
  const plan = planApply(rendered(base), rendered(added));
  assert.equal(plan.kind, "runtime", JSON.stringify(plan));
  if (plan.kind === "runtime")
    assert.ok(plan.maps.some((m) => m.entries.some(([k]) => k.endsWith("#/extra-prefix/"))));
});

test("structureOf blanks exactly the server slot addresses and states", () => {
  const cfg =
    "backend b\n  server s1 10.0.0.1:80 cookie x\n  server s2 0.0.0.0:0 disabled cookie y\n  timeout server 5s\n";
  assert.equal(
    structureOf(cfg),
    "backend b\n  server s1 <slot> cookie x\n  server s2 <slot> cookie y\n  timeout server 5s\n",
  );
  assert.deepEqual(
    [...serverSlots(cfg)],
    [
      ["b/s1", { address: "10.0.0.1", port: 80, enabled: true }],
      ["b/s2", { address: "0.0.0.0", port: 0, enabled: false }],
    ],
  );
  assert.deepEqual(
    [...serverSlots("backend b\n  server s1 [fd00::1]:8080\n")],
    [["b/s1", { address: "fd00::1", port: 8080, enabled: true }]],
  );
});

test("parseMapFile splits at the first blank and keeps values whole", () => {
  assert.deepEqual(parseMapFile("a#/x r1\n# comment\n\nb#/y value with spaces\nlonely\n"), [
    ["a#/x", "r1"],
    ["b#/y", "value with spaces"],
    ["lonely", ""],
  ]);
});

test("tcpListenAddresses lists TCP binds, not unix sockets", () => {
  const config = [
    "frontend a",
    "  bind 192.0.2.1:8080",
    "  bind :443 ssl crt-list /x/y.crtlist",
    "  bind [2001:db8::1]:8443",
    "  bind unix@/var/lib/gatehouse/sock/fe.sock accept-proxy",
    "  bind 192.0.2.1:8080",
  ].join("\n");
  assert.deepEqual(tcpListenAddresses(config), [
    { host: "192.0.2.1", port: 8080 },
    { host: "0.0.0.0", port: 443 },
    { host: "2001:db8::1", port: 8443 },
  ]);
});
