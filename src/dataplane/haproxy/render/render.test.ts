import assert from "node:assert/strict";
import { test } from "node:test";
import type { IR, IRBackend, IRHTTPRule } from "../../../ir/types.ts";
import { checkRenderable, render, RenderError } from "./index.ts";
import { gatewayIR, GOLDEN_OPTIONS, haproxyAvailable, haproxyCheck, tokenize } from "./testutil.ts";

function backend(id: string, endpoints: number, extra: Partial<IRBackend> = {}): IRBackend {
  return {
    id,
    source: { kind: "Service", namespace: "default", name: id },
    port: 80,
    protocol: "http",
    endpoints: Array.from({ length: endpoints }, (_, i) => ({ address: `10.0.0.${i + 1}`, port: 8080 })),
    ...extra,
  };
}

function rule(id: string, path: string, backends: string[], extra: Partial<IRHTTPRule> = {}): IRHTTPRule {
  return {
    id,
    route: { kind: "HTTPRoute", namespace: "default", name: id },
    ruleIndex: 0,
    matchIndex: 0,
    match: { path: { type: "PathPrefix", value: path }, headers: [], queryParams: [] },
    filters: [],
    backends: backends.map((b) => ({ backend: b, weight: 1, filters: [] })),
    ...extra,
  };
}

function simpleIR(rules: IRHTTPRule[], backends: IRBackend[], addresses: string[] = []): IR {
  return gatewayIR([{ hostname: "*", rules }], backends, {}, addresses);
}

test("an empty IR renders a valid configuration", () => {
  const empty: IR = { gateways: [], backends: [] };
  const rendered = render(empty, GOLDEN_OPTIONS);
  assert.match(rendered.config, /^global$/m);
  assert.deepEqual(rendered.backends, []);
  if (haproxyAvailable()) {
    const check = haproxyCheck(empty);
    assert.ok(check.ok, check.output);
  }
});

test("options are validated", () => {
  const ir: IR = { gateways: [], backends: [] };
  const bad = [
    { stateDir: "relative/dir" },
    { stateDir: "/with space" },
    { stateDir: `/${"d".repeat(80)}` },
    { runtimeSocket: "/run/$HOME.sock" },
    { serverSlots: 0 },
    { serverSlots: 2.5 },
    { hardStopAfter: "30 s" },
  ];
  for (const o of bad) {
    assert.throws(
      () => render(ir, { ...GOLDEN_OPTIONS, ...o }),
      (e: unknown) =>
        e instanceof RenderError &&
        e.issues.every((i) => i.subject === "options" && i.path.startsWith("options.")),
      JSON.stringify(o),
    );
  }
  assert.deepEqual(checkRenderable(ir, GOLDEN_OPTIONS), []);
});

test("server slots grow in powers of two; the runtime index names every proxy", () => {
  const ir = simpleIR(
    [
      rule("r0", "/", ["service/default/a/80"], { retry: { attempts: 2, codes: [503] } }),
      rule("r1", "/b", ["service/default/b/80"]),
    ],
    [backend("service/default/a/80", 9), backend("service/default/b/80", 0)],
  );
  const rendered = render(ir, GOLDEN_OPTIONS);
  assert.deepEqual(rendered.backends, [
    {
      id: "service/default/a/80",
      proxies: ["service:default:a:80", rendered.backends[0]?.proxies[1] ?? ""],
      slots: 16,
    },
    { id: "service/default/b/80", proxies: ["service:default:b:80"], slots: 4 },
  ]);
  assert.match(rendered.backends[0]?.proxies[1] ?? "", /^service:default:a:80:retry-[0-9a-f]{8}$/);
  const { directives } = tokenize(rendered.config);
  for (const be of rendered.backends) {
    for (const proxy of be.proxies) {
      const servers = directives.filter((d) => d.section === `backend ${proxy}` && d.words[0] === "server");
      assert.equal(servers.length, be.slots, proxy);
      assert.deepEqual(
        servers.map((d) => d.words[1]),
        Array.from({ length: be.slots }, (_, i) => `s${i + 1}`),
      );
    }
  }
  const a = directives.filter((d) => d.section === "backend service:default:a:80" && d.words[0] === "server");
  assert.deepEqual(a[8]?.words, ["server", "s9", "10.0.0.9:8080"]);
  assert.deepEqual(a[9]?.words, ["server", "s10", "0.0.0.0:0", "disabled"]);
});

test("UDP backends are not rendered; backend ids are sanitized into unique proxy names", () => {
  const ir = simpleIR(
    [rule("r0", "/", ["static/default/a b/80"]), rule("r1", "/x", ["static/default/a_b/80"])],
    [
      backend("static/default/a b/80", 1),
      backend("static/default/a_b/80", 1),
      backend("service/default/dns/53", 1, { protocol: "udp" }),
    ],
  );
  const rendered = render(ir, GOLDEN_OPTIONS);
  const names = rendered.backends.map((b) => b.proxies[0]);
  assert.equal(names.length, 2);
  assert.equal(names[0], "static:default:a_b:80");
  assert.match(names[1] ?? "", /^static:default:a_b:80:[0-9a-f]{8}$/);
});

test("a gateway with two addresses gets two frontends sharing the same routing data", () => {
  const ir = simpleIR(
    [rule("r0", "/", ["service/default/a/80"])],
    [backend("service/default/a/80", 1)],
    ["192.0.2.1", "2001:db8::1"],
  );
  const rendered = render(ir, GOLDEN_OPTIONS);
  const { directives } = tokenize(rendered.config);
  const binds = directives
    .filter((d) => d.words[0] === "bind")
    .map((d) => `${d.section} ${d.words[1] ?? ""}`);
  assert.deepEqual(binds, [
    "frontend fe_192.0.2.1_80 192.0.2.1:80",
    "frontend fe_2001-db8--1_80 [2001:db8::1]:80",
  ]);
  // Fast routing (one plain PathPrefix rule): one entry, not one per frontend.
  assert.equal(rendered.files["maps/fast.map"]?.trim().split("\n").length, 1);
});

test("rule ids are stable when other rules are added", () => {
  // Timeouts keep the rules on the general chain (rule ids are not used by fast routing).
  const timeouts = { timeouts: { requestMs: 1000 } };
  const one = simpleIR(
    [rule("keep", "/keep", ["service/default/a/80"], timeouts)],
    [backend("service/default/a/80", 1)],
  );
  const two = simpleIR(
    [
      rule("new", "/new/longer", ["service/default/a/80"], timeouts),
      rule("keep", "/keep", ["service/default/a/80"], timeouts),
    ],
    [backend("service/default/a/80", 1)],
  );
  const id = (ir: IR): string | undefined =>
    /#\/keep\/ (r[0-9a-f]{12})/.exec(
      render(ir, GOLDEN_OPTIONS).files["maps/routes-00-prefix.map"] ?? "",
    )?.[1];
  assert.ok(id(one) !== undefined);
  assert.equal(id(one), id(two));
});

test("checkRenderable lists every issue without throwing", () => {
  const ir = simpleIR(
    [
      rule("mirror", "/", ["service/default/a/80"], {
        filters: [{ type: "RequestMirror", mirror: { backend: "service/default/a/80", percent: 150 } }],
        retry: { codes: [], backoffMs: 100 },
      }),
    ],
    [backend("service/default/a/80", 1)],
  );
  const issues = checkRenderable(ir);
  assert.deepEqual(
    issues.map((i) => [i.subject, i.path]),
    [
      ["mirror", "gateways[0].listeners[0].virtualHosts[0].rules[0].filters[0].mirror.percent"],
      ["mirror", "gateways[0].listeners[0].virtualHosts[0].rules[0].retry.backoffMs"],
    ],
  );
  assert.throws(
    () => render(ir, GOLDEN_OPTIONS),
    (e: unknown) =>
      e instanceof RenderError &&
      e.subject === "mirror" &&
      /outside 0\.\.100/.test(e.message) &&
      e.issues.length === 2,
  );
});
