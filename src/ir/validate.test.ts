import { test } from "node:test";
import assert from "node:assert/strict";
import type { IR } from "./types.ts";
import { validateIR } from "./validate.ts";

const backend = {
  id: "service/default/web/80",
  source: { kind: "Service", namespace: "default", name: "web" },
  port: 80,
  protocol: "http" as const,
  endpoints: [{ address: "127.0.0.1", port: 8080 }],
};

function irWith(rules: IR["gateways"][number]["listeners"][number]["virtualHosts"]): IR {
  return {
    backends: [backend],
    gateways: [
      {
        id: "default/gw",
        namespace: "default",
        name: "gw",
        gatewayClassName: "gatehouse",
        addresses: [],
        listeners: [
          {
            id: "default/gw/http",
            name: "http",
            port: 80,
            protocol: "HTTP",
            ...(rules ? { virtualHosts: rules } : {}),
          },
        ],
      },
    ],
  };
}

const rule = {
  id: "httproute/default/r/rule/0/match/0",
  route: { kind: "HTTPRoute", namespace: "default", name: "r" },
  ruleIndex: 0,
  matchIndex: 0,
  match: { path: { type: "PathPrefix" as const, value: "/" }, headers: [], queryParams: [] },
  filters: [],
  backends: [{ backend: backend.id, weight: 1, filters: [] }],
};

test("a consistent IR has no problems", () => {
  assert.deepEqual(validateIR(irWith([{ hostname: "*", rules: [rule] }])), []);
});

test("dangling backend references are reported", () => {
  const bad = { ...rule, backends: [{ backend: "service/default/missing/80", weight: 1, filters: [] }] };
  assert.deepEqual(validateIR(irWith([{ hostname: "*", rules: [bad] }])), [
    `gateways[0].listeners[0].virtualHosts[0].rules[0].backends[0].backend: "service/default/missing/80" is not in backends`,
  ]);
});

test("negative weights, bad hostnames and missing virtualHosts are reported", () => {
  const bad = { ...rule, backends: [{ backend: backend.id, weight: -1, filters: [] }] };
  assert.equal(validateIR(irWith([{ hostname: "bad host", rules: [bad] }])).length, 2);
  assert.deepEqual(validateIR(irWith(undefined)), [
    "gateways[0].listeners[0]: virtualHosts must be present exactly for HTTP/HTTPS",
  ]);
});
