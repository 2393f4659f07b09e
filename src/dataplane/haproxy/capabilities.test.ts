// Robustness of the translator + renderer seam against hostile route values: random strings
// (control characters, quotes, `%[`, braces, `#`, backslashes, regex constructs, 8 KB values) in
// every string field of HTTPRoutes and GRPCRoutes, fed to the translator without schema validation
// (as if an API server had let them through). Whatever they hold:
// - the validators catch everything the renderer would refuse (checkRenderable finds nothing),
// - the configuration renders as a whole and `haproxy -c` accepts it without warnings,
// - every other route's IR rules are exactly what they are without the hostile route.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { IR, IRHTTPRule } from "../../ir/types.ts";
import type { KubeObject } from "../../resources/meta.ts";
import { buildSnapshot } from "../../resources/snapshot.ts";
import { translate } from "../../translate/index.ts";
import { haproxyRegexIssue, haproxyValidators } from "./capabilities.ts";
import { checkRenderable, render } from "./render/index.ts";
import { GOLDEN_OPTIONS, haproxyAvailable, haproxyCheck } from "./render/testutil.ts";

const SEED = Number(process.env["GATEHOUSE_FC_SEED"] ?? 20261203);
const GROUP = "gateway.networking.k8s.io/v1";

const PIECES = [
  "\n",
  "\r",
  "\0",
  "\t",
  "\u007f",
  "\u2028",
  "'",
  '"',
  "%[",
  "%{",
  "%%",
  "{",
  "}",
  "#",
  "\\",
  "$",
  "${HOME}",
  " ",
  "(",
  ")",
  "[",
  "]",
  "|",
  "*",
  "+",
  "?",
  "(?<=a+)",
  "(?=x)",
  "\\1",
  "(?x)",
  "\\Q",
  "(*UTF)",
  "(?#c)",
  "/",
  "a",
  "Z",
  "0",
  "-",
  ".",
  ":",
  ",",
  "@",
  "é",
  "http-request deny",
];

/** A hostile string: pieces glued together, raw random text, or a very long value. */
const hostile: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }).map((a) => a.join("")) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
  {
    weight: 2,
    arbitrary: fc.array(fc.constantFrom(...PIECES), { maxLength: 8 }).map((a) => `/${a.join("")}`),
  },
  { weight: 1, arbitrary: fc.constantFrom("x".repeat(8192), `/${"%[".repeat(4096)}`, "a".repeat(20_000)) },
);
const matchType = fc.constantFrom("Exact", "RegularExpression");

const httpRule = fc.record({
  matches: fc.array(
    fc.record({
      path: fc.record({ type: fc.constantFrom("Exact", "PathPrefix", "RegularExpression"), value: hostile }),
      headers: fc.array(fc.record({ type: matchType, name: hostile, value: hostile }), { maxLength: 2 }),
      queryParams: fc.array(fc.record({ type: matchType, name: hostile, value: hostile }), { maxLength: 1 }),
      method: fc.option(hostile, { nil: undefined }),
    }),
    { minLength: 1, maxLength: 2 },
  ),
  filters: fc.array(
    fc.oneof(
      fc.record({
        type: fc.constant("RequestHeaderModifier"),
        requestHeaderModifier: fc.record({
          set: fc.array(fc.record({ name: hostile, value: hostile }), { maxLength: 2 }),
          add: fc.array(fc.record({ name: hostile, value: hostile }), { maxLength: 1 }),
          remove: fc.array(hostile, { maxLength: 1 }),
        }),
      }),
      fc.record({
        type: fc.constant("ResponseHeaderModifier"),
        responseHeaderModifier: fc.record({ set: fc.array(fc.record({ name: hostile, value: hostile })) }),
      }),
      fc.record({
        type: fc.constant("RequestRedirect"),
        requestRedirect: fc.record({
          hostname: hostile,
          path: fc.record({ type: fc.constant("ReplaceFullPath"), replaceFullPath: hostile }),
        }),
      }),
      fc.record({
        type: fc.constant("URLRewrite"),
        urlRewrite: fc.record({
          hostname: hostile,
          path: fc.record({ type: fc.constant("ReplaceFullPath"), replaceFullPath: hostile }),
        }),
      }),
      fc.record({
        type: fc.constant("CORS"),
        cors: fc.record({
          allowOrigins: fc.array(hostile, { maxLength: 2 }),
          allowMethods: fc.array(hostile, { maxLength: 1 }),
          allowHeaders: fc.array(hostile, { maxLength: 1 }),
          exposeHeaders: fc.array(hostile, { maxLength: 1 }),
        }),
      }),
    ),
    { maxLength: 2 },
  ),
  sessionPersistence: fc.option(fc.record({ sessionName: hostile }), { nil: undefined }),
  backendRefs: fc.constant([{ name: "web", port: 8080 }]),
});

const grpcRule = fc.record({
  matches: fc.array(
    fc.record({
      method: fc.record({ type: matchType, service: hostile, method: hostile }),
      headers: fc.array(fc.record({ type: matchType, name: hostile, value: hostile }), { maxLength: 1 }),
    }),
    { minLength: 1, maxLength: 2 },
  ),
  backendRefs: fc.constant([{ name: "grpc", port: 9000 }]),
});

function object(kind: string, name: string, spec: unknown, apiVersion = GROUP): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: "default", generation: 1 }, spec };
}

function service(name: string, port: number, address: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default", annotations: { "gatehouse.dev/endpoints": address } },
    spec: { ports: [{ port }] },
  };
}

const BASE: KubeObject[] = [
  {
    apiVersion: GROUP,
    kind: "GatewayClass",
    metadata: { name: "gatehouse", generation: 1 },
    spec: { controllerName: "gatehouse.dev/gateway-controller" },
  },
  object("Gateway", "edge", {
    gatewayClassName: "gatehouse",
    listeners: [{ name: "http", port: 8080, protocol: "HTTP" }],
  }),
  object("HTTPRoute", "good", {
    parentRefs: [{ name: "edge" }],
    hostnames: ["good.example.com"],
    rules: [
      {
        matches: [{ path: { type: "PathPrefix", value: "/api" } }],
        backendRefs: [{ name: "web", port: 8080 }],
      },
      {
        matches: [
          {
            path: { type: "RegularExpression", value: "/items/[0-9]+" },
            headers: [{ name: "x-a", value: "1" }],
          },
        ],
        filters: [
          { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "x-b", value: "2" }] } },
        ],
        backendRefs: [{ name: "web", port: 8080 }],
      },
    ],
  }),
  service("web", 8080, "127.0.0.1:9001"),
  service("grpc", 9000, "127.0.0.1:9002"),
];

function translateAll(extra: KubeObject[]): IR {
  const objects = [...BASE, ...extra].map((o, index) => ({ object: o, source: { index } }));
  return translate(buildSnapshot(objects).snapshot, {
    controllerName: "gatehouse.dev/gateway-controller",
    now: "2026-01-01T00:00:00Z",
    validators: haproxyValidators,
  }).ir;
}

function goodRules(ir: IR): IRHTTPRule[] {
  return ir.gateways
    .flatMap((g) => g.listeners)
    .flatMap((l) => l.virtualHosts ?? [])
    .flatMap((vh) => vh.rules)
    .filter((r) => r.route.name === "good");
}

const hostileRoutes = fc.record({
  http: fc.array(httpRule, { minLength: 1, maxLength: 3 }),
  grpc: fc.array(grpcRule, { maxLength: 2 }),
  hostname: fc.oneof(fc.constant("bad.example.com"), hostile),
});

function hostileObjects(r: { http: unknown[]; grpc: unknown[]; hostname: string }): KubeObject[] {
  return [
    object("HTTPRoute", "hostile", {
      parentRefs: [{ name: "edge" }],
      hostnames: [r.hostname],
      rules: r.http,
    }),
    object("GRPCRoute", "hostile-grpc", {
      parentRefs: [{ name: "edge" }],
      hostnames: ["grpc.example.com"],
      rules: r.grpc,
    }),
  ];
}

const reference = goodRules(translateAll([]));

test("hostile values in every route field: caught by the validators, the rest renders unchanged", () => {
  fc.assert(
    fc.property(hostileRoutes, (r) => {
      const ir = translateAll(hostileObjects(r));
      assert.deepEqual(checkRenderable(ir, GOLDEN_OPTIONS), []);
      render(ir, GOLDEN_OPTIONS);
      assert.deepEqual(goodRules(ir), reference);
    }),
    { seed: SEED, numRuns: 300 },
  );
});

test("hostile values: haproxy -c accepts every rendered configuration without warnings", (t) => {
  if (!haproxyAvailable()) {
    t.skip("haproxy is not installed");
    return;
  }
  fc.assert(
    fc.property(hostileRoutes, (r) => {
      const check = haproxyCheck(translateAll(hostileObjects(r)));
      assert.ok(check.ok, check.output);
      assert.doesNotMatch(check.output, /WARNING|ALERT/, check.output);
    }),
    { seed: SEED + 1, numRuns: 40 },
  );
});

test("regular expressions: RE2 syntax that HAProxy's PCRE2 compiles; lookaround and backreferences refused", () => {
  for (const ok of ["/items/[0-9]+", "/(a|b)*c", "/x{2,5}", "/\\d+\\.json", "/[[:alpha:]]+", "/(?i)abc"])
    assert.equal(haproxyRegexIssue(ok), undefined, ok);
  for (const bad of ["/y(?<=a+)b", "/(?=x)", "/(a)\\1", "/a++", "/bad(", "/a)", "/x\n", "(?x)a#"])
    assert.notEqual(haproxyRegexIssue(bad), undefined, bad);
});
