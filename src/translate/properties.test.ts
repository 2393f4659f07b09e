// Property tests for the translator: random resource sets (valid per schema, references that may or
// may not resolve) never make it throw, translation is deterministic whatever the input order, and
// the IR it produces is self-consistent.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { KubeObject } from "../resources/meta.ts";
import { buildSnapshot } from "../resources/snapshot.ts";
import { parseDocuments } from "../resources/load.ts";
import { stringify } from "yaml";
import { validateIR } from "../ir/validate.ts";
import type { IR } from "../ir/types.ts";
import { listenerHostnamesOverlap } from "./hostname.ts";
import { translate } from "./index.ts";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";

const GROUP = "gateway.networking.k8s.io/v1";
/**
 * A fixed seed keeps CI deterministic; set GATEHOUSE_FC_SEED to explore other inputs (a failure
 * prints the seed and the shrunk counterexample to reproduce it).
 */
const SEED = Number(process.env["GATEHOUSE_FC_SEED"] ?? 20261122);
const names = fc.constantFrom("a", "a", "b", "web");
const namespaces = fc.constantFrom("default", "default", "default", "default", "default", "infra", "apps");
const hostnames = fc.constantFrom(
  "example.com",
  "*.example.com",
  "foo.example.com",
  "*.foo.example.com",
  "bar.test",
);
const ports = fc.constantFrom(80, 443, 8080, 5000);
const protocols = fc.constantFrom("HTTP", "HTTP", "HTTP", "HTTPS", "TLS", "TCP", "UDP", "example.com/custom");
const meta = fc.record({ name: names, namespace: namespaces });
/** Gateways and parentRefs draw from a small pool so that many routes find their Gateway. */
const gatewayNames = fc.constantFrom("a", "b");

const allowedRoutes = fc.record(
  {
    namespaces: fc.oneof(
      fc.constant({ from: "Same" }),
      fc.constant({ from: "All" }),
      fc.record({
        from: fc.constant("Selector"),
        selector: fc.record({
          matchLabels: fc.dictionary(fc.constantFrom("team", "kubernetes.io/metadata.name"), namespaces, {
            maxKeys: 1,
          }),
        }),
      }),
    ),
    kinds: fc.oneof(
      { weight: 4, arbitrary: fc.constant([]) },
      fc.array(
        fc.record({
          kind: fc.constantFrom("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute", "Foo"),
        }),
        {
          maxLength: 2,
        },
      ),
    ),
  },
  { requiredKeys: [] },
);
const certificateRefs = fc.array(
  fc.record({ name: names, namespace: namespaces }, { requiredKeys: ["name"] }),
  {
    minLength: 1,
    maxLength: 2,
  },
);

/** Listeners shaped as the CRD's CEL rules demand: tls only for HTTPS/TLS, hostname not for TCP/UDP. */
const listener = protocols.chain((protocol) =>
  fc.record(
    {
      name: fc.constantFrom("l1", "l2", "l3", "http", "https"),
      port: ports,
      protocol: fc.constant(protocol),
      ...(protocol === "TCP" || protocol === "UDP" ? {} : { hostname: hostnames }),
      allowedRoutes,
      ...(protocol === "HTTPS"
        ? { tls: fc.record({ mode: fc.constant("Terminate"), certificateRefs }) }
        : protocol === "TLS"
          ? {
              tls: fc.oneof(
                fc.constant({ mode: "Passthrough" }),
                fc.record({ mode: fc.constant("Terminate"), certificateRefs }),
              ),
            }
          : {}),
    },
    { requiredKeys: ["name", "port", "protocol"] },
  ),
);

const gateway = fc.record({
  apiVersion: fc.constant(GROUP),
  kind: fc.constant("Gateway"),
  metadata: fc.record({ name: gatewayNames, namespace: namespaces }),
  spec: fc.record({
    gatewayClassName: fc.constantFrom("gatehouse", "gatehouse", "gatehouse", "other"),
    listeners: fc.uniqueArray(listener, { minLength: 1, maxLength: 4, selector: (l) => l.name }),
  }),
});

const backendRef = fc.record(
  {
    name: names,
    namespace: namespaces,
    port: ports,
    weight: fc.constantFrom(0, 1, 5),
    kind: fc.constantFrom("Service", "Service", "Foo"),
  },
  { requiredKeys: ["name", "port"] },
);

const httpFilter = fc.oneof(
  fc.constant({
    type: "RequestHeaderModifier",
    requestHeaderModifier: { set: [{ name: "x-a", value: "1" }], remove: ["x-b"] },
  }),
  fc.constant({
    type: "ResponseHeaderModifier",
    responseHeaderModifier: { add: [{ name: "x-c", value: "2" }] },
  }),
  fc.record({
    type: fc.constant("RequestRedirect"),
    requestRedirect: fc.record(
      {
        scheme: fc.constantFrom("http", "https"),
        port: ports,
        hostname: hostnames.filter((h) => !h.startsWith("*")),
      },
      { requiredKeys: [] },
    ),
  }),
  fc.constant({ type: "ExtensionRef", extensionRef: { group: "example.com", kind: "Foo", name: "x" } }),
);

const httpRoute = fc.record({
  apiVersion: fc.constant(GROUP),
  kind: fc.constant("HTTPRoute"),
  metadata: fc.record(
    {
      name: names,
      namespace: namespaces,
      creationTimestamp: fc.constantFrom("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
    },
    { requiredKeys: ["name", "namespace"] },
  ),
  spec: fc.record(
    {
      parentRefs: fc.array(
        fc.oneof(
          { weight: 3, arbitrary: fc.record({ name: gatewayNames }) },
          fc.record(
            {
              name: names,
              namespace: namespaces,
              sectionName: fc.constantFrom("l1", "l2", "http"),
              port: ports,
            },
            { requiredKeys: ["name"] },
          ),
        ),
        { maxLength: 2 },
      ),
      hostnames: fc.array(hostnames, { maxLength: 2 }),
      rules: fc.array(
        fc.record(
          {
            matches: fc.array(
              fc.record(
                {
                  path: fc.record({
                    type: fc.constantFrom("Exact", "PathPrefix", "RegularExpression"),
                    value: fc.constantFrom("/", "/a", "/a/b", "/v1"),
                  }),
                  method: fc.constantFrom("GET", "POST"),
                  headers: fc.array(
                    fc.record({ name: fc.constantFrom("x-h", "x-i"), value: fc.constantFrom("1", "2") }),
                    { maxLength: 1 },
                  ),
                },
                { requiredKeys: [] },
              ),
              { maxLength: 2 },
            ),
            filters: fc.array(httpFilter, { maxLength: 1 }),
            backendRefs: fc.array(backendRef, { maxLength: 2 }),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: [] },
  ),
});

const grpcFilter = fc.oneof(
  fc.constant({
    type: "RequestHeaderModifier",
    requestHeaderModifier: { set: [{ name: "x-a", value: "1" }], remove: ["x-b"] },
  }),
  fc.constant({
    type: "ResponseHeaderModifier",
    responseHeaderModifier: { add: [{ name: "x-c", value: "2" }] },
  }),
  fc.record({ type: fc.constant("RequestMirror"), requestMirror: fc.record({ backendRef }) }),
  fc.constant({ type: "ExtensionRef", extensionRef: { group: "example.com", kind: "Foo", name: "x" } }),
);

/** GRPCRoutes share names, parentRefs and hostnames with the HTTPRoutes, so that the two kinds collide. */
const grpcRoute = fc.record({
  apiVersion: fc.constant(GROUP),
  kind: fc.constant("GRPCRoute"),
  metadata: fc.record(
    {
      name: names,
      namespace: namespaces,
      creationTimestamp: fc.constantFrom("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
    },
    { requiredKeys: ["name", "namespace"] },
  ),
  spec: fc.record(
    {
      parentRefs: fc.array(
        fc.oneof(
          { weight: 3, arbitrary: fc.record({ name: gatewayNames }) },
          fc.record(
            { name: names, namespace: namespaces, sectionName: fc.constantFrom("l1", "l2", "http") },
            { requiredKeys: ["name"] },
          ),
        ),
        { maxLength: 2 },
      ),
      hostnames: fc.array(hostnames, { maxLength: 2 }),
      rules: fc.array(
        fc.record(
          {
            matches: fc.array(
              fc.record(
                {
                  method: fc.oneof(
                    fc.record(
                      {
                        type: fc.constant("Exact"),
                        service: fc.constantFrom("a.B", "foo.Bar"),
                        method: fc.constantFrom("Get", "List"),
                      },
                      { requiredKeys: [] },
                    ),
                    fc.record(
                      {
                        type: fc.constant("RegularExpression"),
                        service: fc.constantFrom("a\\..*", "", "(", "foo.Bar"),
                        method: fc.constantFrom("G.*", "", "Get"),
                      },
                      { requiredKeys: ["type"] },
                    ),
                  ),
                  headers: fc.array(
                    fc.record({
                      name: fc.constantFrom("x-h", "X-H", "x-i"),
                      value: fc.constantFrom("1", "2"),
                    }),
                    { maxLength: 2 },
                  ),
                },
                { requiredKeys: [] },
              ),
              { maxLength: 2 },
            ),
            filters: fc.array(grpcFilter, { maxLength: 1 }),
            backendRefs: fc.array(backendRef, { maxLength: 2 }),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: [] },
  ),
});

const l4Route = fc.record({
  apiVersion: fc.constant(GROUP),
  kind: fc.constantFrom("TCPRoute", "UDPRoute", "TLSRoute"),
  metadata: meta,
  spec: fc.record({
    parentRefs: fc.array(
      fc.record({ name: gatewayNames, namespace: namespaces }, { requiredKeys: ["name"] }),
      {
        maxLength: 2,
      },
    ),
    rules: fc.tuple(fc.record({ backendRefs: fc.array(backendRef, { minLength: 1, maxLength: 2 }) })),
  }),
});

const service = fc.record({
  apiVersion: fc.constant("v1"),
  kind: fc.constant("Service"),
  metadata: fc.record(
    {
      name: names,
      namespace: namespaces,
      annotations: fc.constant({ "gatehouse.dev/endpoints": "127.0.0.1:9000" }),
    },
    { requiredKeys: ["name", "namespace"] },
  ),
  spec: fc.record({
    ports: fc.array(
      fc.record(
        {
          port: ports,
          protocol: fc.constantFrom("TCP", "UDP"),
          appProtocol: fc.constantFrom("http", "kubernetes.io/h2c", "kubernetes.io/ws", "foo"),
        },
        { requiredKeys: ["port"] },
      ),
      { minLength: 1, maxLength: 2 },
    ),
  }),
});

const referenceGrant = fc.record({
  apiVersion: fc.constant("gateway.networking.k8s.io/v1beta1"),
  kind: fc.constant("ReferenceGrant"),
  metadata: meta,
  spec: fc.record({
    from: fc.array(
      fc.record({
        group: fc.constant("gateway.networking.k8s.io"),
        kind: fc.constantFrom("HTTPRoute", "GRPCRoute", "Gateway", "TCPRoute"),
        namespace: namespaces,
      }),
      { minLength: 1, maxLength: 2 },
    ),
    to: fc.array(fc.record({ group: fc.constant(""), kind: fc.constantFrom("Service", "Secret") }), {
      minLength: 1,
      maxLength: 2,
    }),
  }),
});

const gatewayClass = fc.constant({
  apiVersion: GROUP,
  kind: "GatewayClass",
  metadata: { name: "gatehouse" },
  spec: { controllerName: "gatehouse.dev/gateway-controller" },
});

const resourceSet = fc.tuple(
  gatewayClass,
  fc.array(gateway, { minLength: 1, maxLength: 3 }),
  fc.array(httpRoute, { minLength: 1, maxLength: 4 }),
  fc.array(grpcRoute, { maxLength: 3 }),
  fc.array(l4Route, { maxLength: 2 }),
  fc.array(service, { maxLength: 3 }),
  fc.array(referenceGrant, { maxLength: 2 }),
);

/**
 * Keeps the objects the API server would accept (schema + CEL, defaults applied), going through the
 * same loader as files do; later duplicates are dropped as the snapshot builder would.
 */
function admitted(objects: readonly unknown[]): KubeObject[] {
  const text = objects.map((o) => stringify(o)).join("---\n");
  const out: KubeObject[] = [];
  const seen = new Set<string>();
  for (const { object } of parseDocuments(text, "generated.yaml").objects) {
    const key = `${object.kind}/${object.metadata.namespace ?? ""}/${object.metadata.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(object);
  }
  return out;
}

function run(objects: readonly KubeObject[]): string {
  const { snapshot } = buildSnapshot(objects.map((object, index) => ({ object, source: { index } })));
  return JSON.stringify(
    translate(snapshot, {
      controllerName: "gatehouse.dev/gateway-controller",
      now: "2026-01-01T00:00:00Z",
      validators: haproxyValidators,
    }),
  );
}

test("random resource sets translate without throwing, into a valid IR, the same in any order", () => {
  let translatedRules = 0;
  let grpcRules = 0;
  let hostnameConflicts = 0;
  fc.assert(
    fc.property(resourceSet, fc.integer(), (set, seed) => {
      const objects = admitted(set.flat());
      const out = run(objects);
      const parsed = JSON.parse(out) as ReturnType<typeof translate>;
      assert.deepEqual(validateIR(parsed.ir), [], "IR invariants");
      assertKindsApart(parsed.ir);
      grpcRules += parsed.ir.gateways
        .flatMap((g) => g.listeners.flatMap((l) => l.virtualHosts ?? []))
        .flatMap((vh) => vh.rules)
        .filter((r) => r.grpc === true).length;
      hostnameConflicts += out.split('"reason":"HostnameConflict"').length - 1;
      translatedRules += parsed.ir.gateways.flatMap((g) =>
        g.listeners.flatMap((l) => l.virtualHosts ?? []),
      ).length;
      const shuffled =
        fc.sample(fc.shuffledSubarray(objects, { minLength: objects.length, maxLength: objects.length }), {
          numRuns: 1,
          seed,
        })[0] ?? [];
      assert.equal(run(shuffled), out, "input order changed the output");
    }),
    { numRuns: 300, seed: SEED },
  );
  // The generator must reach the interesting paths, or this test proves nothing.
  console.log(
    `virtual hosts produced: ${translatedRules}; gRPC rules: ${grpcRules}; hostname conflicts: ${hostnameConflicts}`,
  );
  assert.ok(translatedRules > 20, `only ${translatedRules} virtual hosts were produced across all runs`);
  assert.ok(grpcRules > 5, `only ${grpcRules} gRPC rules were produced across all runs`);
  assert.ok(hostnameConflicts > 0, `only ${hostnameConflicts} HTTPRoute/GRPCRoute conflicts across all runs`);
});

/**
 * HTTPRoute and GRPCRoute rules never meet: a virtual host holds rules of one kind only, and on one
 * listener no HTTP virtual host's hostname intersects a gRPC virtual host's (GRPCRouteSpec.hostnames:
 * of two such routes "the implementation MUST accept exactly one").
 */
function assertKindsApart(ir: IR): void {
  for (const l of ir.gateways.flatMap((g) => g.listeners)) {
    const kindOf = new Map<string, boolean>();
    for (const vh of l.virtualHosts ?? []) {
      const kinds = new Set(vh.rules.map((r) => r.grpc === true));
      assert.ok(kinds.size <= 1, `${l.id} ${vh.hostname}: HTTPRoute and GRPCRoute rules on one virtual host`);
      for (const grpc of kinds) kindOf.set(vh.hostname, grpc);
    }
    for (const [a, ga] of kindOf) {
      for (const [b, gb] of kindOf) {
        if (ga && !gb)
          assert.ok(!listenerHostnamesOverlap(a, b), `${l.id}: gRPC host ${a} intersects HTTP host ${b}`);
      }
    }
  }
}

test("mutated objects that the schema admits never make the translator throw", () => {
  fc.assert(
    fc.property(
      resourceSet,
      fc.array(fc.tuple(fc.nat(), fc.constantFrom("delete", "string", "number", "array", "empty")), {
        maxLength: 6,
      }),
      (set, mutations) => {
        const objects: unknown[] = structuredClone(set.flat());
        for (const [pick, how] of mutations) mutate(objects[pick % Math.max(1, objects.length)], pick, how);
        run(admitted(objects));
      },
    ),
    { numRuns: 300, seed: SEED },
  );
});

/** Replaces or deletes one field somewhere inside `value`, chosen by `pick`. */
function mutate(value: unknown, pick: number, how: string): void {
  const paths: Array<[Record<string, unknown> | unknown[], string | number]> = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        paths.push([v, i]);
        walk(item);
      });
    } else if (v !== null && typeof v === "object") {
      for (const [k, item] of Object.entries(v)) {
        paths.push([v as Record<string, unknown>, k]);
        walk(item);
      }
    }
  };
  walk(value);
  const target = paths[pick % Math.max(1, paths.length)];
  if (target === undefined) return;
  const [container, key] = target;
  const replacement = { string: "x", number: -1, array: [], empty: {} }[how];
  if (Array.isArray(container)) {
    if (how === "delete") container.splice(key as number, 1);
    else container[key as number] = replacement;
  } else if (how === "delete") Reflect.deleteProperty(container, key);
  else container[key as string] = replacement;
}
