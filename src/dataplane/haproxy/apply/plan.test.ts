import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { IR } from "../../../ir/types.ts";
import { render, type BackendSection, type RenderedConfig } from "../render/index.ts";
import { GOLDEN_OPTIONS } from "../render/testutil.ts";
import {
  compactionReason,
  mapSteps,
  parseMapFile,
  planApply,
  tcpListenAddresses,
  type RuntimeStep,
} from "./plan.ts";

const base = parse(
  readFileSync(new URL("../../../../testdata/render/http-basic.ir.yaml", import.meta.url), "utf8"),
) as IR;

function variant(change: (ir: IR) => void): IR {
  const ir = structuredClone(base);
  change(ir);
  return ir;
}

const rendered = (ir: IR) => render(ir, GOLDEN_OPTIONS);

test("the first configuration always starts HAProxy through a reload", () => {
  assert.deepEqual(planApply(undefined, rendered(base)), { kind: "reload", reason: "first configuration" });
});

test("the same IR is a no-op", () => {
  assert.deepEqual(planApply(rendered(base), rendered(base)), { kind: "noop" });
});

test("endpoint changes within the server slots go through the runtime API", () => {
  const backend = base.backends[0];
  assert.ok(backend !== undefined && backend.endpoints.length >= 1);
  const moved = variant((ir) => {
    const b = ir.backends[0];
    if (b !== undefined) b.endpoints = [{ address: "127.0.0.9", port: 9999 }];
  });
  const plan = planApply(rendered(base), rendered(moved));
  assert.equal(plan.kind, "runtime");
  if (plan.kind !== "runtime") return;
  assert.deepEqual(plan.maps, []);
  // Slots that get an endpoint first, slots that lose theirs last.
  assert.deepEqual(
    plan.steps.map((s) => (s.kind === "server" ? s.update.state : s.kind)),
    plan.servers.map((s) => s.state),
  );
  assert.deepEqual(plan.servers[0], {
    backend: plan.servers[0]?.backend,
    server: "s1",
    address: "127.0.0.9",
    port: 9999,
    state: "ready",
  });
  // Endpoints that went away leave rotation.
  assert.ok(plan.servers.slice(1).every((s) => s.state === "maint"));
  // ... and back: the same slots are re-enabled.
  const back = planApply(rendered(moved), rendered(base));
  assert.equal(back.kind, "runtime");
});

test("more endpoints than slots changes the structure and reloads", () => {
  const many = variant((ir) => {
    const b = ir.backends[0];
    if (b !== undefined)
      b.endpoints = Array.from({ length: 40 }, (_, i) => ({ address: `10.1.0.${i + 1}`, port: 80 }));
  });
  const plan = planApply(rendered(base), rendered(many));
  assert.deepEqual(plan, { kind: "reload", reason: "the configuration structure changed" });
});

test("a new prefix rule on an existing virtual host is a map update", () => {
  const added = variant((ir) => {
    const vh = ir.gateways[0]?.listeners[0]?.virtualHosts?.[0];
    const rule = vh?.rules[0];
    if (vh === undefined || rule === undefined) return;
    vh.rules.unshift({
      ...structuredClone(rule),
      id: "httproute/default/extra/rule/0/match/0",
      route: { kind: "HTTPRoute", namespace: "default", name: "extra" },
      match: { path: { type: "PathPrefix", value: "/extra-prefix" }, headers: [], queryParams: [] },
    });
  });
  const plan = planApply(rendered(base), rendered(added));
  assert.equal(plan.kind, "runtime", JSON.stringify(plan));
  if (plan.kind === "runtime")
    assert.ok(plan.maps.some((m) => m.entries.some(([k]) => k.endsWith("#/extra-prefix/"))));
});

test("parseMapFile splits at the first blank and keeps values whole", () => {
  assert.deepEqual(parseMapFile("a#/x r1\n# comment\n\nb#/y value with spaces\nlonely\n"), [
    ["a#/x", "r1"],
    ["b#/y", "value with spaces"],
    ["lonely", ""],
  ]);
});

test("tcpListenAddresses lists TCP binds, not unix sockets", () => {
  const config = [
    "frontend a",
    "  bind 192.0.2.1:8080",
    "  bind :443 ssl crt-list /x/y.crtlist",
    "  bind [2001:db8::1]:8443",
    "  bind unix@/var/lib/gatehouse/sock/fe.sock accept-proxy",
    "  bind 192.0.2.1:8080",
  ].join("\n");
  assert.deepEqual(tcpListenAddresses(config), [
    { host: "192.0.2.1", port: 8080 },
    { host: "0.0.0.0", port: 443 },
    { host: "2001:db8::1", port: 8443 },
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Spares and the order of runtime steps

const SPARES = { ...GOLDEN_OPTIONS, serverSlots: 2, spareBackends: 2 };

/** base plus a route to a new Service `fresh` (one endpoint) on a new path of the same host. */
function withNewService(ir: IR): IR {
  const next = structuredClone(ir);
  const vh = next.gateways[0]?.listeners[0]?.virtualHosts?.[0];
  const rule = vh?.rules[0];
  const template = next.backends[0];
  assert.ok(vh !== undefined && rule !== undefined && template !== undefined);
  next.backends.push({
    ...structuredClone(template),
    id: "service/default/fresh/80",
    source: { kind: "Service", namespace: "default", name: "fresh" },
    endpoints: [{ address: "10.9.0.1", port: 8080 }],
  });
  vh.rules.unshift({
    ...structuredClone(rule),
    id: "httproute/default/fresh/rule/0/match/0",
    route: { kind: "HTTPRoute", namespace: "default", name: "fresh" },
    match: { path: { type: "PathPrefix", value: "/fresh" }, headers: [], queryParams: [] },
    backends: [{ backend: "service/default/fresh/80", weight: 1, filters: [] }],
  });
  return next;
}

function describeSteps(steps: readonly RuntimeStep[]): string[] {
  return steps.map((s) =>
    s.kind === "server"
      ? `server ${s.update.backend}/${s.update.server} ${s.update.state}`
      : s.kind === "certificate"
        ? `certificate ${s.file}`
        : `${s.kind} ${s.file}`,
  );
}

test("a new Service on a free spare is a runtime update: servers first, then maps in lookup order", () => {
  const running = render(base, SPARES);
  const next = render(withNewService(base), SPARES, running.layout);
  const plan = planApply(running, next);
  assert.equal(plan.kind, "runtime", JSON.stringify(plan));
  if (plan.kind !== "runtime") return;
  assert.deepEqual(plan.spares, { gh_spare_1: "service/default/fresh/80" });
  const steps = describeSteps(plan.steps);
  assert.equal(steps[0], "server gh_spare_1/s1 ready");
  assert.ok(
    steps.slice(1).every((s) => s.startsWith("map-")),
    steps.join("\n"),
  );
  assert.ok(plan.maps.some((m) => m.entries.some(([, v]) => v === "gh_spare_1")));
  // Maps the frontends look up last go first.
  const rank = (file: string): number => next.lookups.findIndex((l) => l.file === file);
  const ranks = plan.steps.flatMap((s) => (s.kind.startsWith("map-") && "file" in s ? [rank(s.file)] : []));
  assert.deepEqual(
    ranks,
    [...ranks].sort((a, b) => b - a),
  );
  // New keys only: added to the live maps, no transaction needed.
  assert.ok(
    plan.steps.every((s) => s.kind !== "map-replace" && s.kind !== "map-delete"),
    steps.join("\n"),
  );

  // And back: maps first (first looked up first), the spare's servers last.
  const after = render(base, SPARES, next.layout);
  const back = planApply(next, after);
  assert.equal(back.kind, "runtime");
  if (back.kind !== "runtime") return;
  assert.deepEqual(back.spares, { gh_spare_1: null });
  assert.equal(describeSteps(back.steps).at(-1), "server gh_spare_1/s1 maint");
  const undo = back.steps.flatMap((s) => (s.kind.startsWith("map-") && "file" in s ? [rank(s.file)] : []));
  assert.deepEqual(
    undo,
    [...undo].sort((a, b) => a - b),
  );
  assert.equal(after.config, running.config);
});

test("runtime steps: additions from the last-looked-up map to the first, removals the other way", () => {
  const section = (backend?: string): BackendSection => ({
    name: "gh_spare_1",
    slots: 2,
    endpoints: backend === undefined ? [] : [{ address: "10.0.0.7", port: 80 }],
    spare: true,
    ...(backend === undefined ? {} : { backend }),
  });
  const config = (route: boolean, backend?: string): RenderedConfig => {
    const maps: Record<string, Array<[string, string]>> = {
      "maps/routes.map": route ? [["host#/x/", "r1"]] : [],
      "maps/choices.map": route ? [["r1", "gh_spare_1"]] : [],
      "maps/weights.map": route
        ? [
            ["r1", "1"],
            ["r1/0", "1"],
          ]
        : [],
    };
    return {
      config: "",
      structure: "same",
      files: Object.fromEntries(
        Object.entries(maps).map(([f, e]) => [f, e.map(([k, v]) => `${k} ${v}\n`).join("")]),
      ),
      maps,
      lookups: [
        { file: "maps/routes.map", index: "tree" },
        { file: "maps/weights.map", index: "tree" },
        { file: "maps/choices.map", index: "tree" },
      ],
      backends: [],
      layout: { spareSlots: 2, sections: [section(backend)] },
    };
  };
  const without = config(false);
  const withRoute = config(true, "service/default/x/80");
  const add = planApply(without, withRoute);
  assert.equal(add.kind, "runtime");
  if (add.kind === "runtime")
    assert.deepEqual(describeSteps(add.steps), [
      "server gh_spare_1/s1 ready",
      "map-add maps/choices.map",
      "map-add maps/weights.map",
      "map-add maps/routes.map",
    ]);
  const remove = planApply(withRoute, without);
  assert.equal(remove.kind, "runtime");
  if (remove.kind === "runtime")
    assert.deepEqual(describeSteps(remove.steps), [
      "map-delete maps/routes.map",
      "map-delete maps/weights.map",
      "map-delete maps/choices.map",
      "server gh_spare_1/s1 maint",
    ]);
  // A map HAProxy does not load (no frontend looks it up) changes on disk only.
  const unloaded = { ...withRoute, lookups: [] };
  const filesOnly = planApply(without, unloaded);
  assert.equal(filesOnly.kind, "runtime");
  if (filesOnly.kind === "runtime")
    assert.deepEqual(describeSteps(filesOnly.steps), ["server gh_spare_1/s1 ready"]);
});

test("without a free spare a new Service reloads", () => {
  const running = render(base, { ...SPARES, spareBackends: 0 });
  const next = render(withNewService(base), { ...SPARES, spareBackends: 0 }, running.layout);
  assert.deepEqual(planApply(running, next), {
    kind: "reload",
    reason: "the configuration structure changed",
  });
});

test("map steps: tree maps are added to and deleted from; changes and order-sensitive maps are replaced", () => {
  const a = ["a", "1"] as const;
  const b = ["b", "2"] as const;
  const c = ["c", "3"] as const;
  // Tree (order-free): additions and removals are separate steps.
  assert.deepEqual(mapSteps("m", [a, b], [a, b, c], "tree"), {
    file: "m",
    add: [{ kind: "map-add", file: "m", entries: [c] }],
    remove: [],
  });
  assert.deepEqual(mapSteps("m", [a, b], [a], "tree"), {
    file: "m",
    add: [],
    remove: [{ kind: "map-delete", file: "m", keys: ["b"] }],
  });
  // A changed value: one transaction, keeping removed keys until the removal phase.
  assert.deepEqual(mapSteps("m", [a, b], [["a", "9"], c], "tree"), {
    file: "m",
    add: [{ kind: "map-replace", file: "m", entries: [["a", "9"], c, b] }],
    remove: [{ kind: "map-delete", file: "m", keys: ["b"] }],
  });
  // Many removals: one replacement.
  const many = Array.from({ length: 40 }, (_, i) => [`k${i}`, "v"] as const);
  assert.deepEqual(mapSteps("m", many, [a], "tree").remove, [
    { kind: "map-replace", file: "m", entries: [a] },
  ]);
  // List (order matters): appending is an addition, anything else a replacement.
  assert.deepEqual(mapSteps("m", [a, b], [a, b, c], "list").add, [
    { kind: "map-add", file: "m", entries: [c] },
  ]);
  assert.deepEqual(mapSteps("m", [a, b], [c, a, b], "list"), {
    file: "m",
    add: [{ kind: "map-replace", file: "m", entries: [c, a, b] }],
    remove: [],
  });
  assert.deepEqual(mapSteps("m", [a, b], [b], "list"), {
    file: "m",
    add: [],
    remove: [{ kind: "map-replace", file: "m", entries: [b] }],
  });
});

test("backend sections of removed Services are compacted by a reload once they are many", () => {
  const withFresh = withNewService(base);
  const running = render(withFresh, { ...SPARES, spareBackends: 0 });
  // The route and Service `fresh` removed: its section stays (an orphan) in a runtime update.
  const next = render(base, { ...SPARES, spareBackends: 0 }, running.layout);
  const orphans = next.layout.sections.filter((s) => !s.spare && s.backend === undefined);
  assert.equal(orphans.length, 1);
  assert.equal(planApply(running, next).kind, "runtime");
  assert.equal(compactionReason(next), undefined);
  assert.equal(compactionReason(next, { min: 1, share: 0.25 }), undefined);
  assert.match(
    compactionReason(next, { min: 0, share: 0.1 }) ?? "",
    /^compacting: 1 of \d+ backend sections belong to removed Services$/,
  );
  // A fresh render (what the reload uses) has none.
  const fresh = render(base, { ...SPARES, spareBackends: 0 });
  assert.equal(compactionReason(fresh, { min: 0, share: 0 }), undefined);
});
