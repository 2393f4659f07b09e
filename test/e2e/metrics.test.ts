// Per-route metrics through a real HAProxy: requests, responses by status class and bytes are counted
// by HAProxy (the gh_rule_stats stick table) and exposed on /metrics with Gateway API labels; the
// counts are exact, survive a reload (totals never go back), and rules of the general chain count
// like fast-routed ones. Durations come from the access log (on here).
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { useHarness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, prefix, ref, service } from "./resources.ts";

const sink = new PassThrough();
sink.resume();

const harness = useHarness({
  backends: { web: "http", api: "http" },
  accessLog: { format: { kind: "json" }, output: { kind: "stdout" }, stdout: sink },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.ports[0] ?? 0 }]),
      service("web", { endpoints: [h.backend("web").endpoint] }),
      service("api", { endpoints: [h.backend("api").endpoint] }),
    ),
    "routes.yaml": docs(
      httpRoute("shop", {
        hostnames: ["shop.test"],
        rules: [
          { name: "cart", matches: [prefix("/cart")], backendRefs: [ref("api")] },
          { matches: [prefix("/")], backendRefs: [ref("web")] },
        ],
      }),
    ),
  }),
});

const LABELS =
  'gateway_namespace="default",gateway="gw",listener="http",route_kind="HTTPRoute",route_namespace="default",route="shop"';
const cart = `${LABELS},rule="cart",backend="default/api:80"`;
const root = `${LABELS},rule="1",backend="default/web:80"`;

test("requests, status classes and bytes per rule, counted by HAProxy", async () => {
  const h = harness();
  const before = await h.metric(`gatehouse_route_requests_total{${cart}}`);
  for (let i = 0; i < 5; i++) assert.equal((await h.get("/cart/x", { host: "shop.test" })).status, 200);
  for (let i = 0; i < 3; i++)
    assert.equal(
      (await h.get("/cart/y", { host: "shop.test", headers: { "x-echo-status": "503" } })).status,
      503,
    );
  assert.equal((await h.get("/", { host: "shop.test", headers: { "x-echo-status": "404" } })).status, 404);
  assert.equal((await h.get("/", { host: "nobody.test" })).status, 404); // no rule: not counted

  assert.equal(await h.metric(`gatehouse_route_requests_total{${cart}}`), before + 8);
  assert.equal(await h.metric(`gatehouse_route_responses_total{${cart},code_class="2xx"}`), 5);
  assert.equal(await h.metric(`gatehouse_route_responses_total{${cart},code_class="5xx"}`), 3);
  assert.equal(await h.metric(`gatehouse_route_responses_total{${cart},code_class="4xx"}`), 0);
  assert.equal(await h.metric(`gatehouse_route_requests_total{${root}}`), 1);
  assert.equal(await h.metric(`gatehouse_route_responses_total{${root},code_class="4xx"}`), 1);
  assert.ok((await h.metric(`gatehouse_route_request_bytes_total{${cart}}`)) > 8 * 30);
  assert.ok((await h.metric(`gatehouse_route_response_bytes_total{${cart}}`)) > 8 * 100);
  // The histogram is fed by the access log, which arrives asynchronously (a datagram per request).
  await h
    .waitFor(
      "the access log of the 8 cart requests",
      async () => (await h.metric(`gatehouse_route_request_duration_seconds_count{${cart}}`)) === 8,
      10_000,
    )
    .catch(async (err: unknown) => {
      throw new Error(`count ${await h.metric(`gatehouse_route_request_duration_seconds_count{${cart}}`)}`, {
        cause: err,
      });
    });
});

test("totals survive a reload, and general-chain rules are counted too", async () => {
  const h = harness();
  const before = await h.metric(`gatehouse_route_requests_total{${cart}}`);
  assert.ok(before >= 8);
  // A header match turns the frontend into the general chain: a reload (new worker, empty table).
  const applied = await h.write({
    "routes.yaml": docs(
      httpRoute("shop", {
        hostnames: ["shop.test"],
        rules: [
          { name: "cart", matches: [prefix("/cart")], backendRefs: [ref("api")] },
          { matches: [prefix("/")], backendRefs: [ref("web")] },
        ],
      }),
      httpRoute("beta", {
        hostnames: ["shop.test"],
        rules: [
          {
            matches: [
              { path: { type: "PathPrefix", value: "/" }, headers: [{ name: "x-beta", value: "1" }] },
            ],
            backendRefs: [ref("api")],
          },
        ],
      }),
    ),
  });
  assert.equal(applied.method, "reload");
  for (let i = 0; i < 4; i++) assert.equal((await h.get("/cart", { host: "shop.test" })).status, 200);
  for (let i = 0; i < 2; i++)
    assert.equal((await h.get("/", { host: "shop.test", headers: { "x-beta": "1" } })).status, 200);
  assert.equal(await h.metric(`gatehouse_route_requests_total{${cart}}`), before + 4);
  assert.equal(
    await h.metric(
      `gatehouse_route_requests_total{${LABELS.replace('route="shop"', 'route="beta"')},rule="0",backend="default/api:80"}`,
    ),
    2,
  );
});
