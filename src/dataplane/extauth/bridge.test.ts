import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import type { IR } from "../../ir/types.ts";
import { ExtAuthBridge, sanitize } from "./bridge.ts";
import { decodeVerdict, encodeRequest } from "./wire.ts";

const logger = pino({ level: "silent" });

function irWith(filters: IR["gateways"][number]["listeners"][number]["virtualHosts"]): IR {
  return {
    gateways: [
      {
        id: "ns/gw",
        namespace: "ns",
        name: "gw",
        gatewayClassName: "c",
        addresses: [],
        listeners: [
          { id: "ns/gw/http", name: "http", port: 80, protocol: "HTTP", virtualHosts: filters ?? [] },
        ],
      },
    ],
    backends: [
      {
        id: "service/ns/auth/80",
        source: { kind: "Service", namespace: "ns", name: "auth" },
        port: 80,
        protocol: "http",
        endpoints: [],
      },
    ],
  };
}

const withAuth = irWith([
  {
    hostname: "*",
    rules: [
      {
        id: "httproute/ns/r/rule/0/match/0",
        route: { kind: "HTTPRoute", namespace: "ns", name: "r" },
        ruleIndex: 0,
        matchIndex: 0,
        match: { path: { type: "PathPrefix", value: "/" }, headers: [], queryParams: [] },
        filters: [
          {
            type: "ExternalAuth",
            auth: {
              protocol: "HTTP",
              backend: "service/ns/auth/80",
              pathPrefix: "",
              allowedRequestHeaders: [],
              allowedResponseHeaders: [],
              forwardBodyMaxSize: 0,
            },
          },
        ],
        backends: [],
      },
    ],
  },
]);

test("sanitize drops header names that are not tokens and values with CR, LF or NUL", () => {
  const v = sanitize({
    allow: true,
    ops: [
      { op: "set", name: "x-ok", value: "fine value" },
      { op: "set", name: "x-bad", value: "a\r\nx-injected: 1" },
      { op: "add", name: "bad name", value: "v" },
      { op: "remove", name: "x-gone" },
    ],
  });
  assert.deepEqual(v, {
    allow: true,
    ops: [
      { op: "set", name: "x-ok", value: "fine value" },
      { op: "remove", name: "x-gone" },
    ],
  });
  const d = sanitize({
    allow: false,
    status: 401,
    headers: [
      ["x-a", "b\0"],
      ["x-b", "c"],
    ],
    body: "",
  });
  assert.deepEqual(d, { allow: false, status: 401, headers: [["x-b", "c"]], body: "" });
});

test("apply: nothing to do without ExternalAuth; sets the bridge on every filter otherwise", async () => {
  const bridge = new ExtAuthBridge({ logger });
  try {
    const plain = irWith([]);
    assert.equal(await bridge.apply(plain), plain);
    assert.equal(bridge.address, undefined);
    const out = await bridge.apply(withAuth);
    const f = out.gateways[0]?.listeners[0]?.virtualHosts?.[0]?.rules[0]?.filters[0];
    assert.ok(f?.type === "ExternalAuth");
    assert.equal(f.auth.bridge, bridge.address);
    assert.match(bridge.address ?? "", /^127\.0\.0\.1:\d+$/);
  } finally {
    await bridge.close();
  }
});

test("a check for unknown settings or a service without endpoints is refused (403), never allowed", async () => {
  const bridge = new ExtAuthBridge({ logger });
  try {
    await bridge.apply(withAuth);
    const { externalAuthKey } = await import("../haproxy/render/extauth.ts");
    const f = withAuth.gateways[0]?.listeners[0]?.virtualHosts?.[0]?.rules[0]?.filters[0];
    assert.ok(f?.type === "ExternalAuth");
    for (const key of ["unknown", externalAuthKey(f.auth)]) {
      const body = encodeRequest({
        key,
        method: "GET",
        path: "/",
        host: "h",
        scheme: "http",
        source: "127.0.0.1",
        version: "1.1",
        headers: [],
        body: Buffer.alloc(0),
      });
      const res = await fetch(`http://${bridge.address}/check`, { method: "POST", body });
      assert.equal(res.status, 200);
      const v = decodeVerdict(Buffer.from(await res.arrayBuffer()));
      assert.equal(v.allow, false, key);
      assert.equal(v.allow ? 0 : v.status, 403);
    }
    const bad = await fetch(`http://${bridge.address}/check`, { method: "POST", body: "garbage" });
    assert.equal(bad.status, 400);
  } finally {
    await bridge.close();
  }
});
