// Spare backends and rendering against the previous layout (render's `previous`).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import type { IR, IRBackend, IRHTTPRule } from "../../../ir/types.ts";
import { parse } from "yaml";
import { render, RenderError, type RenderedConfig, type RenderOptions } from "./index.ts";
import { gatewayIR, GOLDEN_OPTIONS, haproxyAvailable, tokenize } from "./testutil.ts";

const DIR = mkdtempSync(join(tmpdir(), "gh-spares-"));
after(() => rmSync(DIR, { recursive: true, force: true }));
const OPTIONS: RenderOptions = {
  ...GOLDEN_OPTIONS,
  stateDir: DIR,
  runtimeSocket: join(DIR, "admin.sock"),
  serverSlots: 2,
  spareBackends: 2,
};

/** `haproxy -c` on a rendered configuration (rendered with OPTIONS), when HAProxy is installed. */
function assertValid(r: RenderedConfig, what = ""): void {
  if (!haproxyAvailable()) return;
  rmSync(join(DIR, "maps"), { recursive: true, force: true });
  rmSync(join(DIR, "tls"), { recursive: true, force: true });
  for (const [rel, content] of Object.entries(r.files)) {
    mkdirSync(dirname(join(DIR, rel)), { recursive: true });
    writeFileSync(join(DIR, rel), content);
  }
  mkdirSync(join(DIR, "sock"), { recursive: true });
  writeFileSync(join(DIR, "haproxy.cfg"), r.config);
  const result = spawnSync("haproxy", ["-c", "-f", join(DIR, "haproxy.cfg")], { encoding: "utf8" });
  assert.equal(result.status, 0, `${what}: ${result.stdout}${result.stderr}`);
  assert.doesNotMatch(`${result.stdout}${result.stderr}`, /\[WARNING\]/, what);
}

function backend(name: string, endpoints: number, extra: Partial<IRBackend> = {}): IRBackend {
  return {
    id: `service/default/${name}/80`,
    source: { kind: "Service", namespace: "default", name },
    port: 80,
    protocol: "http",
    endpoints: Array.from({ length: endpoints }, (_, i) => ({
      address: `10.0.${name.length}.${i + 1}`,
      port: 8080,
    })),
    ...extra,
  };
}

function rule(name: string, backendName: string, extra: Partial<IRHTTPRule> = {}): IRHTTPRule {
  return {
    id: `httproute/default/${name}/rule/0/match/0`,
    route: { kind: "HTTPRoute", namespace: "default", name },
    ruleIndex: 0,
    matchIndex: 0,
    match: { path: { type: "PathPrefix", value: `/${name}` }, headers: [], queryParams: [] },
    filters: [],
    backends: [{ backend: `service/default/${backendName}/80`, weight: 1, filters: [] }],
    ...extra,
  };
}

/** One HTTP listener, one virtual host; `routes` maps a route name to its backend name. */
function ir(routes: Record<string, string>, backends: IRBackend[], rules: IRHTTPRule[] = []): IR {
  const routed = Object.entries(routes).map(([r, b]) => rule(r, b));
  return gatewayIR([{ hostname: "*", rules: [...routed, ...rules] }], backends);
}

/** Every map value of a render, as `file key value` lines. */
function mapValues(r: RenderedConfig): string[] {
  return Object.entries(r.maps).flatMap(([file, entries]) => entries.map(([k, v]) => `${file} ${k} ${v}`));
}

/** The `server` directives of one backend section, as words after `server`. */
function servers(r: RenderedConfig, name: string): string[][] {
  return tokenize(r.config)
    .directives.filter((d) => d.section === `backend ${name}` && d.words[0] === "server")
    .map((d) => d.words.slice(1));
}

/** A real CA certificate (the renderer checks PEM blocks), from the upstream-tls golden case. */
const CA =
  (
    parse(
      readFileSync(new URL("../../../../testdata/render/upstream-tls.ir.yaml", import.meta.url), "utf8"),
    ) as IR
  ).backends.flatMap((b) => b.tls?.caCertificates ?? [])[0] ?? "";

const A = backend("a", 1);
const B = backend("bb", 2);
const base = ir({ a: "a" }, [A]);
const fresh = render(base, OPTIONS);

test("a fresh render has free spares (plain HTTP, no servers) only when there is an HTTP listener", () => {
  assert.deepEqual(
    fresh.layout.sections.map((s) => [s.name, s.spare, s.backend ?? null]),
    [
      ["service:default:a:80", false, A.id],
      ["gh_spare_1", true, null],
      ["gh_spare_2", true, null],
    ],
  );
  assert.deepEqual(servers(fresh, "gh_spare_1"), [
    ["s1", "0.0.0.0:0", "disabled"],
    ["s2", "0.0.0.0:0", "disabled"],
  ]);
  const spare = fresh.config.slice(fresh.config.indexOf("backend gh_spare_1"));
  assert.doesNotMatch(spare.slice(0, spare.indexOf("\n\n")), /service|retries|cookie|proto|ssl/);
  const tcpOnly: IR = { gateways: [], backends: [] };
  assert.doesNotMatch(render(tcpOnly, OPTIONS).config, /gh_spare/);
  assert.doesNotMatch(render(base, { ...OPTIONS, spareBackends: 0 }).config, /gh_spare/);
  assertValid(fresh, "fresh");
});

test("spareBackends is validated", () => {
  for (const spareBackends of [-1, 1.5, 5000]) {
    assert.throws(
      () => render(base, { ...OPTIONS, spareBackends }),
      (e: unknown) => e instanceof RenderError && e.issues.some((i) => i.path === "options.spareBackends"),
    );
  }
});

test("a new plain-HTTP Service takes a free spare: same structure, maps name the spare", () => {
  const next = ir({ a: "a", b: "bb" }, [A, B]);
  const reused = render(next, OPTIONS, fresh.layout);
  assert.equal(reused.structure, fresh.structure);
  assert.ok(
    mapValues(reused).some((l) => / gh_spare_1$/.test(l)),
    mapValues(reused).join("\n"),
  );
  assert.ok(!mapValues(reused).some((l) => / service:default:bb:80$/.test(l)));
  assert.doesNotMatch(reused.config, /backend service:default:bb:80/);
  assert.deepEqual(servers(reused, "gh_spare_1"), [
    ["s1", "10.0.2.1:8080"],
    ["s2", "10.0.2.2:8080"],
  ]);
  assert.deepEqual(
    reused.layout.sections.map((s) => [s.name, s.backend ?? null]),
    [
      ["service:default:a:80", A.id],
      ["gh_spare_1", B.id],
      ["gh_spare_2", null],
    ],
  );
  assert.deepEqual(reused.backends.find((b) => b.id === B.id)?.proxies, ["gh_spare_1"]);
  // Deterministic, and stable when rendered against its own layout.
  assert.equal(render(next, OPTIONS, fresh.layout).config, reused.config);
  const again = render(next, OPTIONS, reused.layout);
  assert.equal(again.config, reused.config);
  assert.deepEqual(again.files, reused.files);
  // A fresh render of the same IR gives the Service its own section again, spares all free.
  const compact = render(next, OPTIONS);
  assert.notEqual(compact.structure, fresh.structure);
  assert.match(compact.config, /^backend service:default:bb:80$/m);
  assert.ok(compact.layout.sections.every((s) => !s.spare || s.backend === undefined));
  assertValid(reused, "spare assigned");
});

test("a spare whose Service is gone is freed, and not reused by the same render", () => {
  const withB = render(ir({ a: "a", b: "bb" }, [A, B]), OPTIONS, fresh.layout);
  const freed = render(base, OPTIONS, withB.layout);
  assert.equal(freed.structure, fresh.structure);
  assert.equal(freed.config, fresh.config);
  assert.equal(freed.layout.sections[1]?.backend, undefined);
  // B gone and C new in one change: C takes the other spare, so requests still routed to gh_spare_1
  // by the old maps never reach C.
  const C = backend("ccc", 1);
  const swapped = render(ir({ a: "a", c: "ccc" }, [A, C]), OPTIONS, withB.layout);
  assert.equal(swapped.structure, fresh.structure);
  assert.deepEqual(
    swapped.layout.sections.map((s) => s.backend ?? null),
    [A.id, null, C.id],
  );
  // Next time, the freed spare is available again.
  const D = backend("dddd", 1);
  const later = render(ir({ a: "a", c: "ccc", d: "dddd" }, [A, C, D]), OPTIONS, swapped.layout);
  assert.equal(later.structure, fresh.structure);
  assert.equal(later.layout.sections[1]?.backend, D.id);
});

test("a removed Service keeps its section, text unchanged, servers disabled", () => {
  const two = render(ir({ a: "a", b: "bb" }, [A, B]), OPTIONS);
  const one = render(base, OPTIONS, two.layout);
  assert.equal(one.structure, two.structure);
  assert.match(
    one.config,
    /^backend service:default:bb:80\n {2}# service\/default\/bb\/80 \(Service default\/bb, http\)$/m,
  );
  assert.deepEqual(servers(one, "service:default:bb:80"), [
    ["s1", "0.0.0.0:0", "disabled"],
    ["s2", "0.0.0.0:0", "disabled"],
  ]);
  assert.ok(!mapValues(one).some((l) => l.endsWith(" service:default:bb:80")));
  assertValid(one, "orphan section");
  // Back again: the same section carries it.
  const back = render(ir({ a: "a", b: "bb" }, [A, B]), OPTIONS, one.layout);
  assert.equal(back.config, two.config);
});

test("a removed Service with upstream TLS keeps its CA file", () => {
  const tls = backend("tls", 1, { tls: { sni: "tls.example", caCertificates: [CA], subjectAltNames: [] } });
  const two = render(ir({ a: "a", t: "tls" }, [A, tls]), OPTIONS);
  const one = render(base, OPTIONS, two.layout);
  assert.equal(one.structure, two.structure);
  assert.deepEqual(Object.keys(one.files), Object.keys(two.files));
  assert.ok(Object.keys(one.files).some((f) => f.startsWith("tls/backend-ca/")));
});

test("what a spare cannot carry adds a section (a different structure)", () => {
  const cases: Array<[string, IR]> = [
    ["h2c", ir({ a: "a", b: "bb" }, [A, backend("bb", 1, { protocol: "h2c" })])],
    [
      "upstream TLS",
      ir({ a: "a", b: "bb" }, [
        A,
        backend("bb", 1, { tls: { sni: "b.example", caCertificates: [CA], subjectAltNames: [] } }),
      ]),
    ],
    ["more endpoints than a spare's slots", ir({ a: "a", b: "bb" }, [A, backend("bb", 3)])],
    [
      "no free spare",
      ir({ a: "a", b: "bb", c: "ccc", d: "dddd" }, [A, B, backend("ccc", 1), backend("dddd", 1)]),
    ],
    ["retries", ir({ a: "a" }, [A, B], [rule("b", "bb", { retry: { attempts: 2, codes: [503] } })])],
    ["a known Service outgrowing its slots", ir({ a: "a" }, [backend("a", 3)])],
  ];
  for (const [what, next] of cases) {
    const r = render(next, OPTIONS, fresh.layout);
    assert.notEqual(r.structure, fresh.structure, what);
    // Still a valid configuration, and deterministic.
    assert.equal(render(next, OPTIONS, fresh.layout).config, r.config, what);
    assertValid(r, what);
  }
  // The h2c Service got its own section, named as in a fresh render.
  const h2c = render(cases[0]?.[1] ?? base, OPTIONS, fresh.layout);
  assert.match(h2c.config, /^backend service:default:bb:80$/m);
});

test("a known Service changing protocol or CA: a valid configuration with another structure", () => {
  const two = render(ir({ a: "a", b: "bb" }, [A, B]), OPTIONS);
  const h2c = ir({ a: "a", b: "bb" }, [A, backend("bb", 1, { protocol: "h2c" })]);
  const switched = render(h2c, OPTIONS, two.layout);
  assert.notEqual(switched.structure, two.structure);
  const names = switched.layout.sections.map((s) => s.name);
  assert.deepEqual(names, [...new Set(names)]);
  assertValid(switched, "http → h2c");

  // A CA change while a variant of the same Service is left unused: one CA file, the current one.
  const tls = { sni: "b.example", caCertificates: [CA], subjectAltNames: [] };
  const retry = { retry: { attempts: 2, codes: [503] } };
  const withRetry = render(
    ir({ a: "a" }, [A, backend("bb", 1, { tls })], [rule("b", "bb", retry), rule("c", "bb")]),
    OPTIONS,
  );
  const otherCA = { ...tls, caCertificates: [CA, CA] };
  const next = render(
    ir({ a: "a", c: "bb" }, [A, backend("bb", 1, { tls: otherCA })]),
    OPTIONS,
    withRetry.layout,
  );
  // The CA file changed (a reload for the applier), and holds the current certificates.
  const caFiles = Object.keys(next.files).filter((f) => f.startsWith("tls/backend-ca/"));
  assert.equal(caFiles.length, 1);
  assert.equal(next.files[caFiles[0] ?? ""]?.split("BEGIN CERTIFICATE").length, 3);
  assertValid(next, "CA change with an unused variant");
});

test("the structure digest ignores exactly the server slot addresses and states", () => {
  const moved = render(ir({ a: "a" }, [backend("a", 2)]), OPTIONS);
  assert.notEqual(moved.config, fresh.config);
  assert.equal(moved.structure, fresh.structure);
  const renamed = render(ir({ a: "a" }, [{ ...A, source: { ...A.source, name: "other" } }]), OPTIONS);
  assert.notEqual(renamed.structure, fresh.structure);
});
