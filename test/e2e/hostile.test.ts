// Hostile strings end to end: values that mean something to HAProxy's configuration language (quotes,
// `%[...]` sample expressions, `${VAR}` expansion, backslashes, `#` comments, braces, `;`) or that are
// large (4 KiB) must reach the backend, or the client, as exact literals; matches on such values
// must work; paths with odd characters must route and be rewritten literally.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { useHarness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service, type Obj } from "./resources.ts";

const HOSTILE: Record<string, string> = {
  "x-quotes": `say "hi" and 'bye' \\"escaped\\" '\\''`,
  "x-sample": "%[req.hdr(host)] %[src] %% %{+Q}o %T",
  "x-env": "${HOME} $HOME ${PATH:-x} $(id) `id`",
  "x-backslash": "a\\b\\\\c\\n\\t\\x41\\",
  "x-hash": "value # not a comment #",
  "x-braces": "{ } } { if } unless ] [ ) (",
  "x-semicolon": "a; set server be/s1 addr 1.2.3.4; b",
  "x-mixed": `'"%[$\\#}{;`,
  "x-big": "4KiB:" + "abcdefghij%[]${}'\"\\#".repeat(400).slice(0, 4091),
};
const HOSTILE_NAME = "x-h#$%&'*+.^_`|~";
const MATCH_VALUE = `%[src] \${HOME} "q" 'x' \\ # }`;
const ODD_PATH = "/odd/$1/%20/%25/~'!()*+,;=:@&";
const REWRITE_TO = "/new/$1/%20/'()*+,;=:@&$HOME";

const setHeaders = (entries: Record<string, string>): Obj[] =>
  Object.entries(entries).map(([name, value]) => ({ name, value }));

const harness = useHarness({
  backends: { echo: "http" },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("echo", { endpoints: [h.backend("echo").endpoint] }),
    ),
    "hostile.yaml": docs(
      httpRoute("hostile", {
        hostnames: ["hostile.test"],
        rules: [
          {
            matches: [{ path: { type: "PathPrefix", value: "/set" } }],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: {
                  set: setHeaders({ ...HOSTILE, [HOSTILE_NAME]: "odd name" }),
                  add: [{ name: "x-added", value: HOSTILE["x-mixed"] ?? "" }],
                },
              },
              {
                type: "ResponseHeaderModifier",
                responseHeaderModifier: { set: setHeaders(HOSTILE) },
              },
            ],
            backendRefs: [ref("echo")],
          },
          {
            matches: [{ headers: [{ name: "x-token", value: MATCH_VALUE }] }],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "x-rule", value: "exact" }] },
              },
            ],
            backendRefs: [ref("echo")],
          },
          {
            matches: [
              { headers: [{ type: "RegularExpression", name: "x-re", value: "^\\d+#\\$\\{x\\}%\\[y\\]$" }] },
            ],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "x-rule", value: "regex" }] },
              },
            ],
            backendRefs: [ref("echo")],
          },
          {
            matches: [{ path: { type: "Exact", value: ODD_PATH } }],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "x-rule", value: "odd" }] },
              },
            ],
            backendRefs: [ref("echo")],
          },
          {
            matches: [{ path: { type: "PathPrefix", value: "/rewrite$" } }],
            filters: [
              {
                type: "URLRewrite",
                urlRewrite: { path: { type: "ReplaceFullPath", replaceFullPath: REWRITE_TO } },
              },
            ],
            backendRefs: [ref("echo")],
          },
          {
            matches: [{ path: { type: "PathPrefix", value: "/redirect" } }],
            filters: [
              {
                type: "RequestRedirect",
                requestRedirect: { path: { type: "ReplaceFullPath", replaceFullPath: REWRITE_TO } },
              },
            ],
          },
        ],
      }),
    ),
  }),
});

describe("hostile strings", { concurrency: true }, () => {
  test("the configuration with hostile strings was applied without errors", async () => {
    const status = await harness().status();
    assert.deepEqual(status.errors, []);
    assert.equal(status.dataplane.lastApply?.result, "success");
    const route = status.objects.find((o) => o.metadata.name === "hostile");
    assert.doesNotMatch(JSON.stringify(route?.status), /PartiallyInvalid|UnsupportedValue/);
  });

  test("request headers set to hostile values reach the backend literally", async () => {
    const res = await harness().get("/set", { host: "hostile.test" });
    assert.equal(res.status, 200, res.body);
    const seen = res.echo?.headers ?? {};
    for (const [name, value] of Object.entries(HOSTILE)) {
      assert.deepEqual(seen[name], [value], `${name} as the backend saw it`);
    }
    assert.deepEqual(seen[HOSTILE_NAME], ["odd name"]);
    assert.deepEqual(seen["x-added"], [HOSTILE["x-mixed"]]);
  });

  test("response headers set to hostile values reach the client literally", async () => {
    const res = await harness().get("/set", { host: "hostile.test" });
    for (const [name, value] of Object.entries(HOSTILE)) {
      assert.equal(res.headers[name], value, `${name} as the client saw it`);
    }
  });

  test("hostile request header values sent by the client pass through untouched", async () => {
    const res = await harness().get("/set/passthrough", {
      host: "hostile.test",
      headers: { "x-client": MATCH_VALUE },
    });
    assert.deepEqual(res.echo?.headers["x-client"], [MATCH_VALUE]);
  });

  test("header matches on hostile values (Exact and RegularExpression)", async () => {
    const h = harness();
    const exact = await h.get("/", { host: "hostile.test", headers: { "x-token": MATCH_VALUE } });
    assert.deepEqual(exact.echo?.headers["x-rule"], ["exact"]);
    const near = await h.get("/", { host: "hostile.test", headers: { "x-token": MATCH_VALUE + " " + "x" } });
    assert.equal(near.status, 404);
    const regex = await h.get("/", { host: "hostile.test", headers: { "x-re": "123#${x}%[y]" } });
    assert.deepEqual(regex.echo?.headers["x-rule"], ["regex"]);
    const regexMiss = await h.get("/", { host: "hostile.test", headers: { "x-re": "123#$HOME%[y]" } });
    assert.equal(regexMiss.status, 404);
  });

  test("paths with odd characters route and are rewritten literally", async () => {
    const h = harness();
    const odd = await h.get(ODD_PATH, { host: "hostile.test" });
    assert.deepEqual(odd.echo?.headers["x-rule"], ["odd"]);
    assert.equal(odd.echo?.path, ODD_PATH);
    assert.equal((await h.get(ODD_PATH.replace("%25", "%26"), { host: "hostile.test" })).status, 404);
    const rewritten = await h.get("/rewrite$/x?q=%[src]", { host: "hostile.test" });
    assert.equal(rewritten.echo?.url, `${REWRITE_TO}?q=%[src]`);
    const redirected = await h.get("/redirect?a='b'", { host: "hostile.test" });
    assert.equal(redirected.headers.location, `http://hostile.test:${h.port}${REWRITE_TO}?a='b'`);
  });
});
