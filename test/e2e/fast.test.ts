// Fast routing through a real HAProxy (src/dataplane/haproxy/render/fast.ts): a catch-all HTTP
// listener whose rules are PathPrefix-only with one backend each routes with one map lookup. Checks
// the semantics it must keep (segment-aware prefixes, exclusive hostnames, Host normalisation, 500
// for invalid backends), that a client-chosen Host cannot reach another listener's routes, that new
// routes are map updates, and that a rule needing the general chain switches the frontend over (and
// back) without changing any answer.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { connect } from "node:http2";
import { join } from "node:path";
import { describe, test } from "node:test";
import { useHarness, type Harness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, prefix, ref, service } from "./resources.ts";

const harness = useHarness({
  backends: { a: "http", b: "http", c: "http", d: "http" },
  ports: 2,
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [
        { name: "one", port: h.ports[0] ?? 0 },
        { name: "two", port: h.ports[1] ?? 0 },
      ]),
      service("a", { endpoints: [h.backend("a").endpoint] }),
      service("b", { endpoints: [h.backend("b").endpoint] }),
      service("c", { endpoints: [h.backend("c").endpoint] }),
      service("d", { endpoints: [h.backend("d").endpoint] }),
    ),
    "routes.yaml": docs(
      httpRoute("shop", {
        parentRefs: [{ name: "gw", sectionName: "one" }],
        hostnames: ["shop.test"],
        rules: [
          { matches: [prefix("/cart")], backendRefs: [ref("a")] },
          { matches: [prefix("/broken")], backendRefs: [ref("missing")] },
        ],
      }),
      httpRoute("any", {
        parentRefs: [{ name: "gw", sectionName: "one" }],
        rules: [{ matches: [prefix("/")], backendRefs: [ref("c")] }],
      }),
      httpRoute("secret", {
        parentRefs: [{ name: "gw", sectionName: "two" }],
        hostnames: ["shop.test"],
        rules: [{ matches: [prefix("/secret")], backendRefs: [ref("b")] }],
      }),
    ),
  }),
});

/** The rendered frontends that route fast, with their listener ids (by listener name). */
async function fastListeners(h: Harness): Promise<Map<string, string>> {
  const config = await readFile(join(h.stateDir, "haproxy.cfg"), "utf8");
  const out = new Map<string, string>();
  for (const section of config.split("\n\n")) {
    const listener = /# listener default\/gw\/(\w+) \(HTTP \*\) = (\w+)/.exec(section);
    if (listener !== null && section.includes("# fast routing"))
      out.set(listener[1] ?? "", listener[2] ?? "");
  }
  return out;
}

async function backendOf(h: Harness, path: string, host: string, port = h.ports[0]): Promise<string> {
  const r = await h.get(path, { host, port: port ?? 0 });
  return r.echo?.backend ?? String(r.status);
}

/** The answers fast routing must give (and the general chain gives too). */
async function checkSemantics(h: Harness): Promise<void> {
  const one = h.ports[0] ?? 0;
  assert.equal(await backendOf(h, "/cart", "shop.test"), "a");
  assert.equal(await backendOf(h, "/cart/item?x=1", `shop.test:${one}`), "a");
  assert.equal(await backendOf(h, "/cart", "SHOP.Test"), "a");
  // Segment-aware prefix, and an exact hostname never falls through to the catch-all route.
  assert.equal(await backendOf(h, "/cartx", "shop.test"), "404");
  assert.equal(await backendOf(h, "/", "shop.test"), "404");
  assert.equal(await backendOf(h, "/broken/x", "shop.test"), "500");
  assert.equal(await backendOf(h, "/anything", "other.test"), "c");
  assert.equal(await backendOf(h, "/cart", `other.test:${one}`), "c");
  assert.equal(await backendOf(h, "/secret", "shop.test", h.ports[1]), "b");
  assert.equal(await backendOf(h, "/cart", "shop.test", h.ports[1]), "404");
  assert.equal(await backendOf(h, "/secret", "shop.test"), "404");
}

describe("fast routing", () => {
  test("plain PathPrefix routes use fast routing with the Gateway API semantics", async () => {
    const h = harness();
    const fast = await fastListeners(h);
    assert.deepEqual([...fast.keys()].sort(), ["one", "two"]);
    await checkSemantics(h);
  });

  test("a Host naming another listener's key does not reach that listener's routes", async () => {
    const h = harness();
    const two = (await fastListeners(h)).get("two");
    assert.ok(two !== undefined);
    for (const host of [`shop.test@${two}#/secret`, `shop.test@${two}`, `@${two}#/secret`, `x@shop.test`]) {
      const got = await backendOf(h, "/secret/x", host);
      assert.notEqual(got, "b", `Host ${host} on listener one reached listener two's route`);
    }
    // Cut at '@': a Host with userinfo-like junk still means its hostname part.
    assert.equal(await backendOf(h, "/cart", "shop.test@junk"), "a");
  });

  test("a new plain route is a runtime map update; filters stay fast; a header match switches to the chain and back", async () => {
    const h = harness();
    const newRoute = (rule: Record<string, unknown>): string =>
      docs(
        httpRoute("new", {
          parentRefs: [{ name: "gw", sectionName: "one" }],
          hostnames: ["new.test"],
          rules: [{ matches: [prefix("/")], backendRefs: [ref("d")], ...rule }],
        }),
      );
    const added = await h.write({ "new.yaml": newRoute({}) });
    assert.equal(added.method, "runtime");
    assert.equal(await backendOf(h, "/x", "new.test"), "d");

    // A rule-level filter keeps fast routing (the rule is found in fast-rules.map by the same key).
    const setHeader = {
      type: "RequestHeaderModifier",
      requestHeaderModifier: { set: [{ name: "x-new", value: "1" }] },
    };
    // Also on a catch-all (`*`) virtual host, found by the second lookup (listener two).
    const catchAll = docs(
      httpRoute("any-two", {
        parentRefs: [{ name: "gw", sectionName: "two" }],
        rules: [
          {
            matches: [prefix("/")],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "x-any", value: "2" }] },
              },
            ],
            backendRefs: [ref("d")],
          },
        ],
      }),
    );
    const filtered = await h.write({
      "new.yaml": newRoute({ filters: [setHeader] }),
      "any-two.yaml": catchAll,
    });
    assert.equal(filtered.method, "reload");
    assert.deepEqual([...(await fastListeners(h)).keys()].sort(), ["one", "two"]);
    const r = await h.get("/x", { host: "new.test" });
    assert.equal(r.echo?.backend, "d");
    assert.deepEqual(r.echo.headers["x-new"], ["1"]);
    const two = await h.get("/x", { host: "other.test", port: h.ports[1] ?? 0 });
    assert.equal(two.echo?.backend, "d");
    assert.deepEqual(two.echo.headers["x-any"], ["2"]);
    // Other routes of the listener do not get the filter.
    const other = await h.get("/cart", { host: "shop.test" });
    assert.equal(other.echo?.backend, "a");
    assert.equal(other.echo.headers["x-new"], undefined);
    await checkSemantics(h);

    // A header match needs the general chain.
    const matched = await h.write({
      "new.yaml": newRoute({ matches: [{ headers: [{ name: "x-env", value: "prod" }] }] }),
    });
    assert.equal(matched.method, "reload");
    assert.deepEqual([...(await fastListeners(h)).keys()], ["two"]);
    assert.equal(await backendOf(h, "/x", "new.test"), "404");
    const prod = await h.get("/x", { host: "new.test", headers: { "x-env": "prod" } });
    assert.equal(prod.echo?.backend, "d");
    await checkSemantics(h);

    const removed = await h.write({ "new.yaml": null, "any-two.yaml": null });
    assert.equal(removed.method, "reload");
    assert.deepEqual([...(await fastListeners(h)).keys()].sort(), ["one", "two"]);
    assert.equal(await backendOf(h, "/x", "new.test"), "c");
    await checkSemantics(h);
  });

  test("a gRPC rule without a valid backend answers UNAVAILABLE, on fast routing and on the chain", async () => {
    const h = harness();
    const grpcRoute = (matches: unknown[]): string =>
      docs({
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "GRPCRoute",
        metadata: { name: "grpc", namespace: "default" },
        spec: {
          // Listener two: on one, the catch-all HTTPRoute's hostname intersects (HostnameConflict).
          parentRefs: [{ name: "gw", sectionName: "two" }],
          hostnames: ["grpc.test"],
          rules: [{ matches, backendRefs: [ref("missing")] }],
        },
      });
    const call = (): Promise<{ status: number; grpcStatus: string | undefined }> =>
      new Promise((resolve, reject) => {
        const client = connect(`http://${h.ip}:${h.ports[1] ?? 0}`);
        client.on("error", reject);
        const req = client.request({
          ":method": "POST",
          ":path": "/pkg.Svc/Method",
          ":authority": "grpc.test",
          "content-type": "application/grpc",
          te: "trailers",
        });
        req.on("response", (headers) => {
          const status = Number(headers[":status"]);
          const grpcStatus = headers["grpc-status"];
          req.resume();
          req.on("end", () => {
            client.close();
            resolve({ status, grpcStatus: typeof grpcStatus === "string" ? grpcStatus : undefined });
          });
        });
        req.on("error", reject);
        req.end(Buffer.alloc(5));
      });
    for (const [mode, matches] of [
      ["fast", []],
      // An exact method match is an Exact path: the general chain.
      ["chain", [{ method: { service: "pkg.Svc", method: "Method" } }]],
    ] as const) {
      await h.write({ "grpc.yaml": grpcRoute([...matches]) });
      assert.equal((await fastListeners(h)).has("two"), mode === "fast", mode);
      const r = await call();
      assert.deepEqual(r, { status: 503, grpcStatus: "14" }, mode);
    }
    await h.write({ "grpc.yaml": null });
  });
});
