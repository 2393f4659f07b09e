// HTTPRoute filters through a real HAProxy: request/response header modifiers (the backend and the
// client see the exact values), redirects (scheme, hostname, port, paths, every status code, default
// port omission), URL rewrites (hostname, full path, prefix with the spec's slash rules), CORS and
// backendRef-level filters.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { useHarness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service, type Obj } from "./resources.ts";

const prefix = (value: string): Obj => ({ path: { type: "PathPrefix", value } });
const exact = (value: string): Obj => ({ path: { type: "Exact", value } });
const redirect = (match: Obj, requestRedirect: Obj): Obj => ({
  matches: [match],
  filters: [{ type: "RequestRedirect", requestRedirect }],
});
const rewrite = (match: Obj, urlRewrite: Obj): Obj => ({
  matches: [match],
  filters: [{ type: "URLRewrite", urlRewrite }],
  backendRefs: [ref("echo")],
});

/** ReplacePrefixMatch cases of the Gateway API spec: [prefix, replacement, request, expected]. */
const PREFIX_CASES: Array<[string, string, string, string]> = [
  ["/foo", "/xyz", "/foo/bar", "/xyz/bar"],
  ["/foo", "/xyz/", "/foo/bar", "/xyz/bar"],
  ["/foo/", "/xyz", "/foo/bar", "/xyz/bar"],
  ["/foo/", "/xyz/", "/foo/bar", "/xyz/bar"],
  ["/foo", "/xyz", "/foo", "/xyz"],
  ["/foo", "/xyz", "/foo/", "/xyz/"],
  ["/foo", "", "/foo/bar", "/bar"],
  ["/foo", "", "/foo/", "/"],
  ["/foo", "", "/foo", "/"],
  ["/foo", "/", "/foo/", "/"],
  ["/foo", "/", "/foo", "/"],
  ["/foo", "/", "/foo/bar", "/bar"],
];
/** Host of the route for the distinct (prefix, replacement) pairs. */
const prefixHost = (p: string, r: string, kind: string): string =>
  `${kind}-${[p, r].map((s) => s.replace(/\//g, "s") || "e").join("-")}.test`;
const prefixPairs = [...new Set(PREFIX_CASES.map(([p, r]) => `${p}|${r}`))].map(
  (s) => s.split("|") as [string, string],
);

const STATUS_CODES = [301, 302, 303, 307, 308];

const harness = useHarness({
  backends: { echo: "http", other: "http" },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("echo", { endpoints: [h.backend("echo").endpoint] }),
      service("other", { endpoints: [h.backend("other").endpoint] }),
    ),
    "headers.yaml": docs(
      httpRoute("headers", {
        hostnames: ["headers.test"],
        rules: [
          {
            matches: [prefix("/req")],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: {
                  set: [
                    { name: "x-set", value: "new" },
                    { name: "x-fresh", value: "fresh value, with comma" },
                  ],
                  add: [{ name: "x-add", value: "more" }],
                  remove: ["x-remove", "X-Remove-Too"],
                },
              },
            ],
            backendRefs: [ref("echo")],
          },
          {
            matches: [prefix("/resp")],
            filters: [
              {
                type: "ResponseHeaderModifier",
                responseHeaderModifier: {
                  set: [{ name: "x-echo-a", value: "A2" }],
                  add: [
                    { name: "x-echo-b", value: "b2" },
                    { name: "x-new", value: "n" },
                  ],
                  remove: ["x-echo-c"],
                },
              },
            ],
            backendRefs: [ref("echo")],
          },
        ],
      }),
    ),
    "redirects.yaml": docs(
      httpRoute("redirects", {
        hostnames: ["redirect.test"],
        rules: [
          redirect(prefix("/scheme"), { scheme: "https" }),
          redirect(prefix("/scheme-port"), { scheme: "https", port: 8443 }),
          redirect(prefix("/http-80"), { scheme: "http", port: 80 }),
          redirect(prefix("/https-443"), { scheme: "https", port: 443 }),
          redirect(prefix("/hostname"), { hostname: "elsewhere.test" }),
          redirect(prefix("/port"), { port: 9999 }),
          redirect(prefix("/full"), { path: { type: "ReplaceFullPath", replaceFullPath: "/replaced" } }),
          redirect(prefix("/pre/fix"), { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/new" } }),
          ...STATUS_CODES.map((code) => redirect(prefix(`/code/${code}`), { statusCode: code })),
          redirect(prefix("/all"), {
            scheme: "https",
            hostname: "all.test",
            port: 8443,
            statusCode: 308,
            path: { type: "ReplaceFullPath", replaceFullPath: "/everything" },
          }),
        ],
      }),
      ...prefixPairs.map(([p, r]) =>
        httpRoute(`redirect-prefix-${prefixPairs.findIndex(([a, b]) => a === p && b === r)}`, {
          hostnames: [prefixHost(p, r, "redir")],
          rules: [
            redirect(prefix(p), {
              path: { type: "ReplacePrefixMatch", replacePrefixMatch: r },
            }),
          ],
        }),
      ),
    ),
    "rewrites.yaml": docs(
      httpRoute("rewrites", {
        hostnames: ["rewrite.test"],
        rules: [
          rewrite(prefix("/host"), { hostname: "rewritten.test" }),
          rewrite(exact("/full/path"), {
            path: { type: "ReplaceFullPath", replaceFullPath: "/replaced/full" },
          }),
          rewrite(prefix("/both"), {
            hostname: "both.test",
            path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/b" },
          }),
        ],
      }),
      ...prefixPairs.map(([p, r]) =>
        httpRoute(`rewrite-prefix-${prefixPairs.findIndex(([a, b]) => a === p && b === r)}`, {
          hostnames: [prefixHost(p, r, "rw")],
          rules: [rewrite(prefix(p), { path: { type: "ReplacePrefixMatch", replacePrefixMatch: r } })],
        }),
      ),
    ),
    "cors.yaml": docs(
      httpRoute("cors", {
        hostnames: ["cors.test"],
        rules: [
          {
            matches: [prefix("/api")],
            filters: [
              {
                type: "CORS",
                cors: {
                  allowOrigins: ["https://www.example.com", "https://*.example.net"],
                  allowMethods: ["GET", "POST"],
                  allowHeaders: ["X-Request-Id", "Content-Type"],
                  exposeHeaders: ["X-Trace-Id"],
                  allowCredentials: true,
                  maxAge: 3600,
                },
              },
            ],
            backendRefs: [ref("echo")],
          },
        ],
      }),
    ),
    "backendref-filters.yaml": docs(
      httpRoute("per-backend", {
        hostnames: ["perbackend.test"],
        rules: [
          {
            matches: [prefix("/")],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "x-rule-level", value: "r" }] },
              },
            ],
            backendRefs: [
              ref("echo", {
                weight: 1,
                filters: [
                  {
                    type: "RequestHeaderModifier",
                    requestHeaderModifier: { set: [{ name: "x-picked", value: "echo" }] },
                  },
                  {
                    type: "ResponseHeaderModifier",
                    responseHeaderModifier: { add: [{ name: "x-resp-picked", value: "echo" }] },
                  },
                ],
              }),
              ref("other", {
                weight: 1,
                filters: [
                  {
                    type: "RequestHeaderModifier",
                    requestHeaderModifier: { set: [{ name: "x-picked", value: "other" }] },
                  },
                  {
                    type: "ResponseHeaderModifier",
                    responseHeaderModifier: { add: [{ name: "x-resp-picked", value: "other" }] },
                  },
                ],
              }),
            ],
          },
        ],
      }),
    ),
  }),
});

/** All values of a header the backend received, comma-joined (repeated lines or one list). */
const joined = (values: string[] | undefined): string | undefined => values?.join(",");

describe("filters", { concurrency: true }, () => {
  test("RequestHeaderModifier: the backend sees exactly the set/added values, removed headers gone", async () => {
    const res = await harness().get("/req", {
      host: "headers.test",
      headers: {
        "x-set": "old",
        "x-add": "orig",
        "x-remove": "bye",
        "x-remove-too": "bye",
        "x-keep": "kept",
      },
    });
    assert.equal(res.status, 200);
    const h = res.echo?.headers ?? {};
    assert.deepEqual(h["x-set"], ["new"]);
    assert.deepEqual(h["x-fresh"], ["fresh value, with comma"]);
    assert.equal(joined(h["x-add"])?.replace(/\s/g, ""), "orig,more");
    assert.equal(h["x-remove"], undefined);
    assert.equal(h["x-remove-too"], undefined);
    assert.deepEqual(h["x-keep"], ["kept"]);
  });

  test("RequestHeaderModifier set works when the client did not send the header", async () => {
    const res = await harness().get("/req", { host: "headers.test" });
    assert.deepEqual(res.echo?.headers["x-set"], ["new"]);
    assert.deepEqual(res.echo?.headers["x-add"], ["more"]);
  });

  test("ResponseHeaderModifier: set, add, remove on the backend's answer", async () => {
    const res = await harness().get("/resp", { host: "headers.test" });
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-echo-a"], "A2");
    assert.equal(String(res.headers["x-echo-b"]).replace(/\s/g, ""), "b,b2");
    assert.equal(res.headers["x-echo-c"], undefined);
    assert.equal(res.headers["x-new"], "n");
    // Only the matching rule's filters apply.
    const other = await harness().get("/req", { host: "headers.test" });
    assert.equal(other.headers["x-echo-a"], "a");
    assert.equal(other.headers["x-echo-c"], "c");
  });

  test("redirects: scheme, hostname, port; default ports are omitted", async () => {
    const h = harness();
    const location = async (p: string): Promise<[number, string | undefined]> => {
      const res = await h.get(p, { host: "redirect.test" });
      return [res.status, res.headers.location];
    };
    assert.deepEqual(await location("/scheme/a?q=1"), [302, "https://redirect.test/scheme/a?q=1"]);
    assert.deepEqual(await location("/scheme-port/a"), [302, "https://redirect.test:8443/scheme-port/a"]);
    assert.deepEqual(await location("/http-80/a"), [302, "http://redirect.test/http-80/a"]);
    assert.deepEqual(await location("/https-443/a"), [302, "https://redirect.test/https-443/a"]);
    // No scheme and no port: the listener's port (not 80 here) is kept.
    assert.deepEqual(await location("/hostname/a"), [302, `http://elsewhere.test:${h.port}/hostname/a`]);
    assert.deepEqual(await location("/port/a"), [302, "http://redirect.test:9999/port/a"]);
    assert.deepEqual(await location("/all/x?y=z"), [308, "https://all.test:8443/everything?y=z"]);
  });

  test("redirects: ReplaceFullPath and ReplacePrefixMatch", async () => {
    const h = harness();
    const res = await h.get("/full/deep/path?k=v", { host: "redirect.test" });
    assert.equal(res.headers.location, `http://redirect.test:${h.port}/replaced?k=v`);
    const pre = await h.get("/pre/fix/rest", { host: "redirect.test" });
    assert.equal(pre.headers.location, `http://redirect.test:${h.port}/new/rest`);
  });

  for (const [p, r, requestPath, expected] of PREFIX_CASES) {
    test(`redirect ReplacePrefixMatch ${JSON.stringify(p)} → ${JSON.stringify(r)}: ${requestPath} → ${expected}`, async () => {
      const h = harness();
      const host = prefixHost(p, r, "redir");
      const res = await h.get(requestPath, { host });
      assert.equal(res.status, 302, res.body);
      assert.equal(res.headers.location, `http://${host}:${h.port}${expected}`);
    });
    test(`rewrite ReplacePrefixMatch ${JSON.stringify(p)} → ${JSON.stringify(r)}: ${requestPath} → ${expected}`, async () => {
      const res = await harness().get(`${requestPath}?keep=1`, { host: prefixHost(p, r, "rw") });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.echo?.url, `${expected}?keep=1`);
    });
  }

  test("redirects: every status code", async () => {
    for (const code of STATUS_CODES) {
      const res = await harness().get(`/code/${code}/x`, { host: "redirect.test" });
      assert.equal(res.status, code);
      assert.equal(res.headers.location, `http://redirect.test:${harness().port}/code/${code}/x`);
    }
  });

  test("URLRewrite: hostname (the backend sees the new Host)", async () => {
    const res = await harness().get("/host/x?a=1", { host: "rewrite.test" });
    assert.equal(res.status, 200);
    assert.deepEqual(res.echo?.headers["host"], ["rewritten.test"]);
    assert.equal(res.echo?.url, "/host/x?a=1");
  });

  test("URLRewrite: full path keeps the query", async () => {
    const res = await harness().get("/full/path?a=1&b=2", { host: "rewrite.test" });
    assert.equal(res.echo?.url, "/replaced/full?a=1&b=2");
  });

  test("URLRewrite: hostname and prefix together", async () => {
    const res = await harness().get("/both/x", { host: "rewrite.test" });
    assert.deepEqual(res.echo?.headers["host"], ["both.test"]);
    assert.equal(res.echo?.url, "/b/x");
  });

  test("CORS: preflight from an allowed origin is answered by the gateway", async () => {
    const res = await harness().get("/api/x", {
      host: "cors.test",
      method: "OPTIONS",
      headers: {
        origin: "https://www.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "X-Request-Id",
      },
    });
    assert.ok(res.status === 200 || res.status === 204, `status ${res.status}`);
    assert.equal(res.echo, undefined, "the preflight must not reach the backend");
    assert.equal(res.headers["access-control-allow-origin"], "https://www.example.com");
    const methods = String(res.headers["access-control-allow-methods"]);
    assert.match(methods, /POST/);
    assert.match(String(res.headers["access-control-allow-headers"]).toLowerCase(), /x-request-id/);
    assert.equal(res.headers["access-control-allow-credentials"], "true");
    assert.equal(res.headers["access-control-max-age"], "3600");
  });

  test("CORS: wildcard origins, simple requests, disallowed origins", async () => {
    const h = harness();
    const wild = await h.get("/api/x", {
      host: "cors.test",
      method: "OPTIONS",
      headers: { origin: "https://a.example.net", "access-control-request-method": "GET" },
    });
    assert.equal(wild.headers["access-control-allow-origin"], "https://a.example.net");
    const simple = await h.get("/api/x", {
      host: "cors.test",
      headers: { origin: "https://www.example.com" },
    });
    assert.equal(simple.status, 200);
    assert.equal(simple.echo?.backend, "echo");
    assert.equal(simple.headers["access-control-allow-origin"], "https://www.example.com");
    assert.match(String(simple.headers["access-control-expose-headers"]).toLowerCase(), /x-trace-id/);
    const denied = await h.get("/api/x", {
      host: "cors.test",
      method: "OPTIONS",
      headers: { origin: "https://evil.test", "access-control-request-method": "GET" },
    });
    assert.equal(denied.status, 204);
    assert.equal(denied.echo, undefined, "a denied preflight must not reach the backend either");
    assert.equal(denied.headers["access-control-allow-origin"], undefined);
    assert.equal(denied.headers["access-control-allow-methods"], undefined);
    // The scheme's default port written out is the same origin; another port is not.
    const defaultPort = await h.get("/api/x", {
      host: "cors.test",
      method: "OPTIONS",
      headers: { origin: "https://www.example.com:443", "access-control-request-method": "GET" },
    });
    assert.equal(defaultPort.headers["access-control-allow-origin"], "https://www.example.com:443");
    const otherPort = await h.get("/api/x", {
      host: "cors.test",
      method: "OPTIONS",
      headers: { origin: "https://www.example.com:8443", "access-control-request-method": "GET" },
    });
    assert.equal(otherPort.status, 204);
    assert.equal(otherPort.headers["access-control-allow-origin"], undefined);
    // OPTIONS without Access-Control-Request-Method is not a preflight: the backend answers it.
    const plainOptions = await h.get("/api/x", {
      host: "cors.test",
      method: "OPTIONS",
      headers: { origin: "https://evil.test" },
    });
    assert.equal(plainOptions.echo?.backend, "echo");
    const deniedSimple = await h.get("/api/x", {
      host: "cors.test",
      headers: { origin: "https://evil.test" },
    });
    assert.equal(deniedSimple.echo?.backend, "echo");
    assert.equal(deniedSimple.headers["access-control-allow-origin"], undefined);
    assert.match(String(deniedSimple.headers["vary"]), /Origin/);
  });

  test("backendRef filters apply only when that backend is picked", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const res = await harness().get("/", { host: "perbackend.test" });
      assert.equal(res.status, 200);
      const backend = res.echo?.backend ?? "?";
      seen.add(backend);
      assert.deepEqual(res.echo?.headers["x-picked"], [backend]);
      assert.deepEqual(res.echo?.headers["x-rule-level"], ["r"]);
      assert.equal(res.headers["x-resp-picked"], backend);
    }
    assert.deepEqual([...seen].sort(), ["echo", "other"]);
  });
});
