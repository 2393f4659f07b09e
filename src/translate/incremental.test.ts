// The incremental translator gives what the full translation gives: on every golden input built up
// and torn down object by object, and on random sequences of adds, updates and deletes.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";
import { parseDocuments } from "../resources/load.ts";
import type { KubeObject } from "../resources/meta.ts";
import { buildSnapshot, type Snapshot } from "../resources/snapshot.ts";
import { IncrementalTranslator } from "./incremental.ts";
import { translate, type TranslateOptions } from "./index.ts";
import {
  admitted,
  endpointSlice,
  gateway,
  grpcRoute,
  httpRoute,
  l4Route,
  referenceGrant,
  resourceSet,
  secret,
  service,
  slicedService,
  TLS_CRT,
  TLS_KEY,
} from "./testutil.ts";

const SEED = Number(process.env["GATEHOUSE_FC_SEED"] ?? 20261203);
const OPTIONS: TranslateOptions = {
  controllerName: "gatehouse.dev/gateway-controller",
  now: "2026-01-01T00:00:00Z",
  validators: haproxyValidators,
};

function snapshotOf(objects: readonly KubeObject[]): Snapshot {
  return buildSnapshot(objects.map((object, index) => ({ object, source: { index } }))).snapshot;
}

/** Translates `snapshot` both ways and asserts they agree; returns the incremental result's mode. */
function check(
  translator: IncrementalTranslator,
  snapshot: Snapshot,
  options: TranslateOptions,
  what: string,
) {
  const incremental = translator.update(snapshot, options);
  const full = translate(snapshot, options);
  assert.equal(
    JSON.stringify({ statuses: incremental.statuses, ir: incremental.ir }),
    JSON.stringify(full),
    `${what}: incremental (${incremental.mode}${incremental.reason !== undefined ? `: ${incremental.reason}` : ""}) differs from the full translation`,
  );
  return incremental;
}

const isGatewayLevel = (o: KubeObject): boolean =>
  o.kind === "GatewayClass" || o.kind === "Gateway" || o.kind === "ListenerSet" || o.kind === "Namespace";

test("every golden input, built up and torn down object by object, translates as in full", () => {
  const dir = join(import.meta.dirname, "..", "..", "testdata", "translate");
  const cases = readdirSync(dir).filter((f) => f.endsWith(".in.yaml"));
  let incremental = 0;
  for (const file of cases) {
    const options = file.startsWith("infra-kubernetes-")
      ? { ...OPTIONS, infrastructure: "kubernetes" as const }
      : OPTIONS;
    const objects = parseDocuments(readFileSync(join(dir, file), "utf8"), file).objects.map((o) => o.object);
    // Gateway-level objects first, then the rest one at a time; then the rest removed one at a time.
    const base = objects.filter(isGatewayLevel);
    const rest = objects.filter((o) => !isGatewayLevel(o));
    const translator = new IncrementalTranslator();
    check(translator, snapshotOf(base), options, `${file} (Gateways only)`);
    for (let i = 1; i <= rest.length; i++) {
      const r = check(translator, snapshotOf([...base, ...rest.slice(0, i)]), options, `${file} +${i}`);
      if (r.mode === "incremental") incremental++;
    }
    for (let i = rest.length - 1; i >= 0; i--) {
      const r = check(translator, snapshotOf([...base, ...rest.slice(0, i)]), options, `${file} -${i}`);
      if (r.mode === "incremental") incremental++;
    }
    // Every other object removed at once, then back.
    const half = [...base, ...rest.filter((_, i) => i % 2 === 0)];
    check(translator, snapshotOf(half), options, `${file} half`);
    check(translator, snapshotOf(objects), options, `${file} all`);
  }
  assert.ok(incremental > cases.length, `only ${incremental} updates were incremental`);
});

/** One change: an object added or replaced (same kind, namespace and name: an update), or one removed. */
const change = fc.oneof(
  { weight: 4, arbitrary: httpRoute.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 2, arbitrary: grpcRoute.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 3, arbitrary: service.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 1, arbitrary: slicedService.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 2, arbitrary: endpointSlice.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 2, arbitrary: referenceGrant.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 2, arbitrary: secret.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 1, arbitrary: l4Route.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 1, arbitrary: gateway.map((o) => ({ op: "put" as const, object: o })) },
  { weight: 4, arbitrary: fc.nat().map((pick) => ({ op: "delete" as const, pick })) },
);

const identity = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

test("random sequences of adds, updates and deletes translate incrementally as in full", () => {
  let incremental = 0;
  let full = 0;
  let recomputed = 0;
  fc.assert(
    fc.property(resourceSet, fc.array(change, { minLength: 1, maxLength: 12 }), (set, changes) => {
      let objects = admitted(set.flat());
      const translator = new IncrementalTranslator();
      check(translator, snapshotOf(objects), OPTIONS, "initial");
      for (const [step, c] of changes.entries()) {
        if (c.op === "delete") {
          if (objects.length === 0) continue;
          const gone = objects[c.pick % objects.length] as KubeObject;
          objects = objects.filter((o) => o !== gone);
        } else {
          const [object] = admitted([c.object]);
          if (object === undefined) continue;
          const at = objects.findIndex((o) => identity(o) === identity(object));
          objects = at < 0 ? [...objects, object] : objects.map((o, i) => (i === at ? object : o));
        }
        const r = check(translator, snapshotOf(objects), OPTIONS, `step ${step} (${JSON.stringify(c)})`);
        if (r.mode === "incremental") {
          incremental++;
          recomputed += r.recomputed;
        } else full++;
      }
    }),
    { numRuns: 200, seed: SEED },
  );
  console.log(`incremental updates: ${incremental} (${recomputed} routes recomputed); full: ${full}`);
  // Most changes must take the incremental path, or this test proves little.
  assert.ok(incremental > full, `incremental ${incremental}, full ${full}`);
});

test("an unchanged snapshot recomputes nothing; a new route recomputes that route only", () => {
  const objects = admitted([
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GatewayClass",
      metadata: { name: "gatehouse" },
      spec: { controllerName: OPTIONS.controllerName },
    },
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "g", namespace: "default" },
      spec: { gatewayClassName: "gatehouse", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
    },
    ...Array.from({ length: 20 }, (_, i) => ({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: `r${i}`, namespace: "default" },
      spec: {
        parentRefs: [{ name: "g" }],
        hostnames: [`r${i}.test`],
        rules: [{ backendRefs: [{ name: `s${i}`, port: 80 }] }],
      },
    })),
    ...Array.from({ length: 20 }, (_, i) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: `s${i}`,
        namespace: "default",
        annotations: { "gatehouse.dev/endpoints": "127.0.0.1:9" },
      },
      spec: { ports: [{ port: 80 }] },
    })),
  ]);
  const translator = new IncrementalTranslator();
  assert.equal(check(translator, snapshotOf(objects), OPTIONS, "first").mode, "full");
  const same = check(translator, snapshotOf(objects), OPTIONS, "again");
  assert.deepEqual([same.mode, same.recomputed], ["incremental", 0]);
  // A Service change recomputes the route using it.
  const changed = objects.map((o) =>
    o.kind === "Service" && o.metadata.name === "s3"
      ? { ...o, metadata: { ...o.metadata, annotations: { "gatehouse.dev/endpoints": "127.0.0.2:9" } } }
      : o,
  );
  const r = check(translator, snapshotOf(changed), OPTIONS, "service s3 changed");
  assert.deepEqual([r.mode, r.recomputed], ["incremental", 1]);
  // A Gateway change routes do not see (a label) keeps every route; one they see (a listener's
  // hostname) is translated in full, and says why.
  const labelled = changed.map((o) =>
    o.kind === "Gateway" ? { ...o, metadata: { ...o.metadata, labels: { a: "b" } } } : o,
  );
  const l = check(translator, snapshotOf(labelled), OPTIONS, "gateway labelled");
  assert.deepEqual([l.mode, l.recomputed], ["incremental", 0]);
  const gw = labelled.map((o) =>
    o.kind === "Gateway"
      ? {
          ...o,
          spec: {
            gatewayClassName: "gatehouse",
            listeners: [{ name: "http", port: 80, protocol: "HTTP", hostname: "*.test" }],
          },
        }
      : o,
  );
  const g = check(translator, snapshotOf(gw), OPTIONS, "gateway changed");
  assert.equal(g.mode, "full");
  assert.match(g.reason ?? "", /gateways/);
  // A later `now` stamps the recomputed objects with it; the result still equals the full translation.
  const later = { ...OPTIONS, now: "2026-01-02T00:00:00Z" };
  const removed = gw.filter((o) => !(o.kind === "HTTPRoute" && o.metadata.name === "r7"));
  const d = translator.update(snapshotOf(removed), later);
  assert.deepEqual([d.mode, d.recomputed], ["incremental", 0]);
  const strip = (v: unknown) => JSON.stringify(v).replace(/"lastTransitionTime":"[^"]*"/g, "");
  assert.equal(strip({ statuses: d.statuses, ir: d.ir }), strip(translate(snapshotOf(removed), later)));
});

test("a listener certificate's Secret changing keeps every route (the Gateway-level graph is resolved again)", () => {
  const secretOf = (extra: Record<string, string>) => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "cert", namespace: "default" },
    type: "kubernetes.io/tls",
    stringData: { "tls.crt": TLS_CRT, "tls.key": TLS_KEY, ...extra },
  });
  const base = [
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GatewayClass",
      metadata: { name: "gatehouse" },
      spec: { controllerName: OPTIONS.controllerName },
    },
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "g", namespace: "default" },
      spec: {
        gatewayClassName: "gatehouse",
        listeners: [
          {
            name: "https",
            port: 443,
            protocol: "HTTPS",
            tls: { mode: "Terminate", certificateRefs: [{ name: "cert" }] },
          },
        ],
      },
    },
    ...Array.from({ length: 10 }, (_, i) => ({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: `r${i}`, namespace: "default" },
      spec: {
        parentRefs: [{ name: "g" }],
        hostnames: [`r${i}.test`],
        rules: [{ backendRefs: [{ name: "s", port: 80 }] }],
      },
    })),
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: "s",
        namespace: "default",
        annotations: { "gatehouse.dev/endpoints": "127.0.0.1:9" },
      },
      spec: { ports: [{ port: 80 }] },
    },
  ];
  const translator = new IncrementalTranslator();
  const first = check(translator, snapshotOf(admitted([...base, secretOf({})])), OPTIONS, "first");
  assert.equal(first.ir.gateways[0]?.listeners.length, 1, "the HTTPS listener is programmed");
  const rotated = check(
    translator,
    snapshotOf(admitted([...base, secretOf({ "ca.crt": TLS_CRT })])),
    OPTIONS,
    "rotated",
  );
  assert.deepEqual([rotated.mode, rotated.recomputed], ["incremental", 0]);
  // A certificate that does not parse unprograms the listener: routes see that, so it is a full update.
  const broken = check(
    translator,
    snapshotOf(admitted([...base, { ...secretOf({}), stringData: { "tls.crt": "x", "tls.key": "y" } }])),
    OPTIONS,
    "broken",
  );
  assert.equal(broken.mode, "full");
});
