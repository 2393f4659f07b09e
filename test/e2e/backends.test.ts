// Backends through a real HAProxy: weighted splits, invalid and missing backends (500), endpoints
// from EndpointSlices and from the `gatehouse.dev/endpoints` annotation, h2c backends, WebSocket
// upgrades, request timeouts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { keepAliveAgent } from "./client.ts";
import { many, useHarness } from "./harness.ts";
import {
  docs,
  endpointSlice,
  gateway,
  gatewayClass,
  httpRoute,
  ref,
  service,
  type Obj,
} from "./resources.ts";
import { openWebSocket } from "./ws.ts";

const route = (name: string, host: string, rule: Obj): Obj =>
  httpRoute(name, { hostnames: [host], rules: [rule] });

const harness = useHarness({
  backends: {
    a: "http",
    b: "http",
    c: "http",
    s1: "http",
    s2: "http",
    s3: "http",
    h2: "h2c",
    mirror: "http",
  },
  files: (h) => {
    const ep = (name: string): string[] => [h.backend(name).endpoint];
    const port = (name: string): number => h.backend(name).port;
    return {
      "gateway.yaml": docs(
        gatewayClass(),
        gateway("gw", h.ip, [{ name: "http", port: h.port }]),
        service("a", { endpoints: ep("a") }),
        service("b", { endpoints: ep("b") }),
        service("c", { endpoints: ep("c") }),
        service("h2", { endpoints: ep("h2"), appProtocol: "kubernetes.io/h2c" }),
        service("ws", { endpoints: ep("a"), appProtocol: "kubernetes.io/ws" }),
        service("annotated", { endpoints: [...ep("a"), ...ep("b")] }),
        // No annotation: endpoints come from EndpointSlices (port name must match the Service's).
        service("sliced", { portName: "web" }),
        endpointSlice("sliced-1", "sliced", port("s1"), [{ address: "127.0.0.1" }], "web"),
        endpointSlice("sliced-2", "sliced", port("s2"), [{ address: "127.0.0.1", ready: false }], "web"),
        endpointSlice("sliced-3", "sliced", port("s3"), [{ address: "127.0.0.1", ready: true }], "web"),
        endpointSlice("sliced-other-port", "sliced", port("c"), [{ address: "127.0.0.1" }], "not-web"),
        service("empty", { endpoints: [] }),
        service("mirror", { endpoints: ep("mirror") }),
      ),
      "routes.yaml": docs(
        route("weights", "weights.test", {
          backendRefs: [ref("a", { weight: 3 }), ref("b", { weight: 1 }), ref("c", { weight: 0 })],
        }),
        route("invalid-share", "invalid.test", {
          backendRefs: [ref("a", { weight: 1 }), ref("missing", { weight: 1 })],
        }),
        route("only-invalid", "only-invalid.test", { backendRefs: [ref("missing")] }),
        route("no-backends", "none.test", { matches: [{ path: { type: "PathPrefix", value: "/" } }] }),
        route("zero-weights", "zero.test", {
          backendRefs: [ref("a", { weight: 0 }), ref("b", { weight: 0 })],
        }),
        route("annotated", "annotated.test", { backendRefs: [ref("annotated")] }),
        route("sliced", "sliced.test", { backendRefs: [ref("sliced")] }),
        route("no-endpoints", "empty.test", { backendRefs: [ref("empty")] }),
        route("h2c", "h2c.test", { backendRefs: [ref("h2")] }),
        route("websocket", "ws.test", { backendRefs: [ref("a")] }),
        route("websocket-app-protocol", "ws-app.test", { backendRefs: [ref("ws")] }),
        route("mirrored", "mirror.test", {
          filters: [{ type: "RequestMirror", requestMirror: { backendRef: ref("mirror") } }],
          backendRefs: [ref("a")],
        }),
        route("timeout", "timeout.test", { timeouts: { request: "400ms" }, backendRefs: [ref("a")] }),
        route("backend-timeout", "backend-timeout.test", {
          timeouts: { request: "5s", backendRequest: "300ms" },
          backendRefs: [ref("a")],
        }),
      ),
    };
  },
});

/** Backend name (or status) → count over `n` requests on keep-alive connections. */
async function distribution(host: string, n: number): Promise<Map<string, number>> {
  const agents = Array.from({ length: 4 }, () => keepAliveAgent());
  try {
    const results = await many(n, 4, (i) => harness().get("/", { host, agent: agents[i % 4] ?? false }));
    const counts = new Map<string, number>();
    for (const r of results) {
      const key = r.status === 200 ? (r.echo?.backend ?? "?") : String(r.status);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  } finally {
    for (const a of agents) a.destroy();
  }
}

describe("backends", { concurrency: true }, () => {
  test("weights 3:1 over 400 requests; weight 0 is never chosen", async () => {
    const counts = await distribution("weights.test", 400);
    const a = counts.get("a") ?? 0;
    const b = counts.get("b") ?? 0;
    assert.equal(a + b, 400, JSON.stringify([...counts]));
    // Binomial(400, 0.75): sd ≈ 8.7; ±45 is more than 5 sd.
    assert.ok(a >= 255 && a <= 345, `a got ${a} of 400`);
    assert.equal(counts.get("c"), undefined);
  });

  test("an invalid backendRef's share answers 500, the rest is served", async () => {
    const counts = await distribution("invalid.test", 200);
    const ok = counts.get("a") ?? 0;
    const errors = counts.get("500") ?? 0;
    assert.equal(ok + errors, 200, JSON.stringify([...counts]));
    assert.ok(ok >= 60 && ok <= 140, `a got ${ok} of 200`);
  });

  test("no usable backend answers 500", async () => {
    for (const host of ["only-invalid.test", "none.test", "zero.test"]) {
      const res = await harness().get("/", { host });
      assert.equal(res.status, 500, `${host}: ${res.status}`);
      assert.equal(res.echo, undefined);
    }
  });

  test("a Service without endpoints answers 503", async () => {
    const res = await harness().get("/", { host: "empty.test" });
    assert.equal(res.status, 503);
  });

  test("endpoints from the gatehouse.dev/endpoints annotation are all used", async () => {
    const counts = await distribution("annotated.test", 40);
    assert.deepEqual([...counts.keys()].sort(), ["a", "b"]);
  });

  test("endpoints from EndpointSlices: ready ones only, matching port name only", async () => {
    const counts = await distribution("sliced.test", 60);
    assert.deepEqual([...counts.keys()].sort(), ["s1", "s3"], JSON.stringify([...counts]));
  });

  test("h2c backends get HTTP/2 in clear text", async () => {
    const res = await harness().get("/h2/path?x=1", { host: "h2c.test", headers: { "x-test": "v" } });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.echo?.backend, "h2");
    assert.equal(res.echo?.httpVersion, "2.0");
    assert.equal(res.echo?.url, "/h2/path?x=1");
    assert.deepEqual(res.echo?.headers["x-test"], ["v"]);
  });

  for (const host of ["ws.test", "ws-app.test"]) {
    test(`WebSocket upgrade through the gateway (${host})`, async () => {
      const h = harness();
      const ws = await openWebSocket({ address: h.ip, port: h.port, host, path: "/chat" });
      try {
        assert.match(ws.response, /^HTTP\/1\.1 101 /);
        assert.equal(await ws.roundTrip("hello"), "a:hello");
        assert.equal(await ws.roundTrip("x".repeat(3000)), `a:${"x".repeat(3000)}`);
      } finally {
        ws.close();
      }
    });
  }

  test("RequestMirror: the backend answers, the mirror gets a copy", async () => {
    const h = harness();
    const mirror = h.backend("mirror");
    const before = mirror.requests;
    const res = await h.get("/mirrored/path?x=1", { host: "mirror.test" });
    assert.equal(res.status, 200);
    assert.equal(res.echo?.backend, "a");
    const copy = await h.waitFor(
      "the mirrored copy",
      () => mirror.received.find((r) => r.url === "/mirrored/path?x=1"),
      3000,
    );
    assert.equal(copy.method, "GET");
    assert.deepEqual(copy.headers["host"], ["mirror.test"]);
    assert.ok(mirror.requests > before);
  });

  test("request timeout: a slow backend gives 504, a fast one 200", async () => {
    const h = harness();
    const started = performance.now();
    const slow = await h.get("/", { host: "timeout.test", headers: { "x-echo-delay-ms": "2000" } });
    const elapsed = performance.now() - started;
    assert.equal(slow.status, 504);
    assert.ok(elapsed >= 350 && elapsed < 1500, `answered after ${Math.round(elapsed)} ms`);
    const fast = await h.get("/", { host: "timeout.test", headers: { "x-echo-delay-ms": "50" } });
    assert.equal(fast.status, 200);
  });

  test("backendRequest timeout: a slow backend gives 504", async () => {
    const started = performance.now();
    const slow = await harness().get("/", {
      host: "backend-timeout.test",
      headers: { "x-echo-delay-ms": "2000" },
    });
    assert.equal(slow.status, 504);
    assert.ok(performance.now() - started < 1500);
  });
});
