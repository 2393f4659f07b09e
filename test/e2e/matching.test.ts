// Request matching through a real HAProxy: path types (segment-aware prefixes), headers, query
// parameters, methods, hostnames and listener isolation, precedence across routes, 404s. Every rule
// tags the request with `x-rule: <id>` (a RequestHeaderModifier) so the echo backend shows which
// rule served it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Response } from "./client.ts";
import { useHarness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service, type Obj } from "./resources.ts";

/** A rule tagging its requests with `x-rule: id`. */
function rule(id: string, matches: Obj[]): Obj {
  return {
    matches,
    filters: [
      { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "x-rule", value: id }] } },
    ],
    backendRefs: [ref("echo")],
  };
}
const path = (type: string, value: string): Obj => ({ path: { type, value } });
const at = (timestamp: string): Obj => ({ creationTimestamp: timestamp });

const harness = useHarness({
  backends: { echo: "http" },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [
        { name: "any", port: h.port },
        { name: "wild", port: h.port, hostname: "*.example.com" },
        { name: "wildfoo", port: h.port, hostname: "*.foo.example.com" },
        { name: "abc", port: h.port, hostname: "abc.foo.example.com" },
      ]),
      service("echo", { endpoints: [h.backend("echo").endpoint] }),
    ),
    "paths.yaml": docs(
      httpRoute("paths", {
        hostnames: ["paths.test"],
        rules: [
          rule("exact", [path("Exact", "/exact")]),
          rule("foo", [path("PathPrefix", "/foo")]),
          rule("foo-bar", [path("PathPrefix", "/foo/bar")]),
          rule("slash", [path("PathPrefix", "/slash/")]),
          rule("regex", [path("RegularExpression", "/re/[0-9]+/end")]),
          rule("root-exact", [path("Exact", "/")]),
          rule("odd", [path("Exact", "/odd/a;b=c,d@e:f!g$h&i'j(k)l*m+n~o")]),
        ],
      }),
    ),
    "conditions.yaml": docs(
      httpRoute("conditions", {
        hostnames: ["cond.test"],
        rules: [
          rule("hdr-exact", [{ headers: [{ name: "X-Env", value: "prod" }] }]),
          rule("hdr-regex", [
            { headers: [{ type: "RegularExpression", name: "x-ver", value: "^v[0-9]+$" }] },
          ]),
          rule("query", [{ queryParams: [{ name: "q", value: "1" }] }]),
          rule("query-regex", [{ queryParams: [{ type: "RegularExpression", name: "r", value: "^a+$" }] }]),
          rule("method", [{ method: "POST" }]),
          rule("one-header", [{ headers: [{ name: "x-a", value: "1" }] }]),
          rule("two-headers", [
            {
              headers: [
                { name: "x-a", value: "1" },
                { name: "x-b", value: "1" },
              ],
            },
          ]),
          rule("and", [
            {
              path: { type: "PathPrefix", value: "/and" },
              method: "PUT",
              queryParams: [{ name: "k", value: "v" }],
            },
          ]),
          rule("or", [path("Exact", "/or1"), path("Exact", "/or2")]),
        ],
      }),
    ),
    "precedence.yaml": docs(
      // Same prefix in two routes: the older one wins; equal age: alphabetical namespace/name.
      httpRoute(
        "p-new",
        { hostnames: ["prec.test"], rules: [rule("new", [path("PathPrefix", "/same")])] },
        at("2024-01-01T00:00:00Z"),
      ),
      httpRoute(
        "p-old",
        { hostnames: ["prec.test"], rules: [rule("old", [path("PathPrefix", "/same")])] },
        at("2020-01-01T00:00:00Z"),
      ),
      httpRoute(
        "p-tie-b",
        { hostnames: ["prec.test"], rules: [rule("tie-b", [path("PathPrefix", "/tie")])] },
        at("2021-01-01T00:00:00Z"),
      ),
      httpRoute(
        "p-tie-a",
        { hostnames: ["prec.test"], rules: [rule("tie-a", [path("PathPrefix", "/tie")])] },
        at("2021-01-01T00:00:00Z"),
      ),
      // An exact match in a newer route beats an older prefix; the longest prefix wins across routes.
      httpRoute(
        "p-prefix",
        { hostnames: ["prec.test"], rules: [rule("x-prefix", [path("PathPrefix", "/x")])] },
        at("2019-01-01T00:00:00Z"),
      ),
      httpRoute(
        "p-exact",
        {
          hostnames: ["prec.test"],
          rules: [rule("x-exact", [path("Exact", "/x/y")]), rule("x-long", [path("PathPrefix", "/x/z")])],
        },
        at("2025-01-01T00:00:00Z"),
      ),
      // Same path: a method match beats none; more header matches beat fewer.
      httpRoute(
        "p-m-plain",
        { hostnames: ["prec.test"], rules: [rule("m-plain", [path("PathPrefix", "/m")])] },
        at("2019-01-01T00:00:00Z"),
      ),
      httpRoute(
        "p-m-method",
        {
          hostnames: ["prec.test"],
          rules: [rule("m-get", [{ ...path("PathPrefix", "/m"), method: "GET" }])],
        },
        at("2025-01-01T00:00:00Z"),
      ),
      httpRoute(
        "p-h-one",
        {
          hostnames: ["prec.test"],
          rules: [rule("h-one", [{ ...path("PathPrefix", "/h"), headers: [{ name: "x-a", value: "1" }] }])],
        },
        at("2019-01-01T00:00:00Z"),
      ),
      httpRoute(
        "p-h-two",
        {
          hostnames: ["prec.test"],
          rules: [
            rule("h-two", [
              {
                ...path("PathPrefix", "/h"),
                headers: [
                  { name: "x-a", value: "1" },
                  { name: "x-b", value: "1" },
                ],
              },
            ]),
          ],
        },
        at("2025-01-01T00:00:00Z"),
      ),
    ),
    "hosts.yaml": docs(
      httpRoute("h-exact", { hostnames: ["a.wild.test"], rules: [rule("host-exact", [])] }),
      httpRoute("h-wild", { hostnames: ["*.wild.test"], rules: [rule("host-wild", [])] }),
      httpRoute("h-multi", { hostnames: ["one.test", "two.test"], rules: [rule("host-multi", [])] }),
      // Listener isolation (conformance GatewayHTTPListenerIsolation): each route is attached to one
      // listener and only gets the hostnames no more specific listener claims.
      httpRoute("iso-any", {
        parentRefs: [{ name: "gw", sectionName: "any" }],
        rules: [rule("iso-any", [path("PathPrefix", "/iso")])],
      }),
      httpRoute("iso-wild", {
        parentRefs: [{ name: "gw", sectionName: "wild" }],
        rules: [rule("iso-wild", [path("PathPrefix", "/iso")])],
      }),
      httpRoute("iso-wildfoo", {
        parentRefs: [{ name: "gw", sectionName: "wildfoo" }],
        rules: [rule("iso-wildfoo", [path("PathPrefix", "/iso")])],
      }),
      httpRoute("iso-abc", {
        parentRefs: [{ name: "gw", sectionName: "abc" }],
        rules: [rule("iso-abc", [path("PathPrefix", "/iso")])],
      }),
      // A route whose hostname only intersects the `wild` listener.
      httpRoute("h-intersect", {
        hostnames: ["*.bar.example.com"],
        rules: [rule("intersect", [path("PathPrefix", "/int")])],
      }),
    ),
  }),
});

/** The rule that served the request (404 → "404"). */
async function served(res: Response | Promise<Response>): Promise<string> {
  const r = await res;
  if (r.status === 404) return "404";
  assert.equal(r.status, 200, `unexpected status ${r.status}: ${r.body}`);
  const tag = r.echo?.headers["x-rule"];
  assert.ok(tag !== undefined, `no x-rule in ${r.body}`);
  return tag.join(",");
}

describe("matching", { concurrency: true }, () => {
  const get = (host: string, p: string, extra: Parameters<ReturnType<typeof harness>["get"]>[1] = {}) =>
    served(harness().get(p, { host, ...extra }));

  test("Exact paths match only themselves", async () => {
    assert.equal(await get("paths.test", "/exact"), "exact");
    assert.equal(await get("paths.test", "/exact?x=1"), "exact");
    assert.equal(await get("paths.test", "/exact/"), "404");
    assert.equal(await get("paths.test", "/exactly"), "404");
    assert.equal(await get("paths.test", "/"), "root-exact");
  });

  test("PathPrefix is segment-aware and the longest prefix wins", async () => {
    assert.equal(await get("paths.test", "/foo"), "foo");
    assert.equal(await get("paths.test", "/foo/"), "foo");
    assert.equal(await get("paths.test", "/foo/baz"), "foo");
    assert.equal(await get("paths.test", "/foo?a=b"), "foo");
    assert.equal(await get("paths.test", "/foobar"), "404");
    assert.equal(await get("paths.test", "/foo/bar"), "foo-bar");
    assert.equal(await get("paths.test", "/foo/bar/"), "foo-bar");
    assert.equal(await get("paths.test", "/foo/bar/x"), "foo-bar");
    assert.equal(await get("paths.test", "/foo/barista"), "foo");
  });

  test("a PathPrefix with a trailing slash ignores it", async () => {
    assert.equal(await get("paths.test", "/slash"), "slash");
    assert.equal(await get("paths.test", "/slash/"), "slash");
    assert.equal(await get("paths.test", "/slash/x"), "slash");
    assert.equal(await get("paths.test", "/slashes"), "404");
  });

  test("RegularExpression paths match the whole path", async () => {
    assert.equal(await get("paths.test", "/re/123/end"), "regex");
    assert.equal(await get("paths.test", "/re/123/end?q=1"), "regex");
    assert.equal(await get("paths.test", "/re/abc/end"), "404");
    assert.equal(await get("paths.test", "/re/123/end/more"), "404");
    assert.equal(await get("paths.test", "/x/re/123/end"), "404");
  });

  test("paths with sub-delimiters and other odd characters route correctly", async () => {
    const odd = "/odd/a;b=c,d@e:f!g$h&i'j(k)l*m+n~o";
    assert.equal(await get("paths.test", odd), "odd");
    const res = await harness().get(odd, { host: "paths.test" });
    assert.equal(res.echo?.path, odd);
    assert.equal(await get("paths.test", "/odd/a;b=c"), "404");
  });

  test("header matches: Exact (case-insensitive name) and RegularExpression", async () => {
    assert.equal(await get("cond.test", "/", { headers: { "x-env": "prod" } }), "hdr-exact");
    assert.equal(await get("cond.test", "/", { headers: { "X-ENV": "prod" } }), "hdr-exact");
    assert.equal(await get("cond.test", "/", { headers: { "x-env": "Prod" } }), "404");
    assert.equal(await get("cond.test", "/", { headers: { "x-ver": "v12" } }), "hdr-regex");
    assert.equal(await get("cond.test", "/", { headers: { "x-ver": "v12x" } }), "404");
  });

  test("query parameter matches", async () => {
    assert.equal(await get("cond.test", "/?q=1"), "query");
    assert.equal(await get("cond.test", "/anything?z=0&q=1"), "query");
    assert.equal(await get("cond.test", "/?q=12"), "404");
    assert.equal(await get("cond.test", "/?r=aaa"), "query-regex");
    assert.equal(await get("cond.test", "/?r=aab"), "404");
  });

  test("method matches", async () => {
    assert.equal(await get("cond.test", "/", { method: "POST", body: "x" }), "method");
    assert.equal(await get("cond.test", "/", { method: "GET" }), "404");
  });

  test("every condition of a match must hold; any match of a rule suffices", async () => {
    assert.equal(await get("cond.test", "/and/1?k=v", { method: "PUT" }), "and");
    assert.equal(await get("cond.test", "/and/1?k=w", { method: "PUT" }), "404");
    assert.equal(await get("cond.test", "/and/1?k=v", { method: "DELETE" }), "404");
    assert.equal(await get("cond.test", "/or1"), "or");
    assert.equal(await get("cond.test", "/or2"), "or");
  });

  test("within a route, more header matches win", async () => {
    assert.equal(await get("cond.test", "/", { headers: { "x-a": "1" } }), "one-header");
    assert.equal(await get("cond.test", "/", { headers: { "x-a": "1", "x-b": "1" } }), "two-headers");
  });

  test("precedence across routes: oldest, then alphabetical", async () => {
    assert.equal(await get("prec.test", "/same"), "old");
    assert.equal(await get("prec.test", "/tie/1"), "tie-a");
  });

  test("precedence across routes: exact beats prefix, longest prefix wins", async () => {
    assert.equal(await get("prec.test", "/x/y"), "x-exact");
    assert.equal(await get("prec.test", "/x/y/z"), "x-prefix");
    assert.equal(await get("prec.test", "/x/z/1"), "x-long");
    assert.equal(await get("prec.test", "/x"), "x-prefix");
  });

  test("precedence across routes: method and header counts", async () => {
    assert.equal(await get("prec.test", "/m"), "m-get");
    assert.equal(await get("prec.test", "/m", { method: "DELETE" }), "m-plain");
    assert.equal(await get("prec.test", "/h", { headers: { "x-a": "1", "x-b": "1" } }), "h-two");
    assert.equal(await get("prec.test", "/h", { headers: { "x-a": "1" } }), "h-one");
    assert.equal(await get("prec.test", "/h"), "404");
  });

  test("route hostnames: exact beats wildcard; a wildcard needs at least one label", async () => {
    assert.equal(await get("a.wild.test", "/"), "host-exact");
    assert.equal(await get("b.wild.test", "/"), "host-wild");
    assert.equal(await get("x.y.wild.test", "/"), "host-wild");
    assert.equal(await get("wild.test", "/"), "404");
    assert.equal(await get("A.Wild.Test", "/"), "host-exact");
    assert.equal(await get("a.wild.test:1234", "/"), "host-exact");
    assert.equal(await get("one.test", "/"), "host-multi");
    assert.equal(await get("two.test", "/"), "host-multi");
    assert.equal(await get("three.test", "/"), "404");
  });

  test("listener isolation: a request goes to the most specific listener only", async () => {
    assert.equal(await get("bar.com", "/iso"), "iso-any");
    assert.equal(await get("bar.example.com", "/iso"), "iso-wild");
    assert.equal(await get("bar.foo.example.com", "/iso"), "iso-wildfoo");
    assert.equal(await get("abc.foo.example.com", "/iso"), "iso-abc");
    // The route on `any` does not get hostnames a more specific listener claims, even when that
    // listener has no route for the path.
    assert.equal(await get("abc.foo.example.com", "/int"), "404");
    assert.equal(await get("x.bar.example.com", "/int"), "intersect");
  });

  test("404 when no route matches", async () => {
    const res = await harness().get("/nothing", { host: "unknown.test" });
    assert.equal(res.status, 404);
    assert.match(res.body, /no route matches/);
    assert.equal((await harness().get("/nothing", { host: "paths.test" })).status, 404);
  });
});
