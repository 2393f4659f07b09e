// Generators of Gateway API objects for the translator's property tests (properties.test.ts,
// incremental.test.ts): schema-valid objects whose references may or may not resolve, drawn from
// small pools of names so that they meet.
import fc from "fast-check";
import { stringify } from "yaml";
import type { KubeObject } from "../resources/meta.ts";
import { parseDocuments } from "../resources/load.ts";

export const GROUP = "gateway.networking.k8s.io/v1";
export const names = fc.constantFrom("a", "a", "b", "web");
export const namespaces = fc.constantFrom(
  "default",
  "default",
  "default",
  "default",
  "default",
  "infra",
  "apps",
);
export const hostnames = fc.constantFrom(
  "example.com",
  "*.example.com",
  "foo.example.com",
  "*.foo.example.com",
  "bar.test",
);
export const ports = fc.constantFrom(80, 443, 8080, 5000);
export const protocols = fc.constantFrom(
  "HTTP",
  "HTTP",
  "HTTP",
  "HTTPS",
  "TLS",
  "TCP",
  "UDP",
  "example.com/custom",
);
export const meta = fc.record({ name: names, namespace: namespaces });
/** Gateways and parentRefs draw from a small pool so that many routes find their Gateway. */
export const gatewayNames = fc.constantFrom("a", "b");

export const allowedRoutes = fc.record(
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
export const certificateRefs = fc.array(
  fc.record({ name: names, namespace: namespaces }, { requiredKeys: ["name"] }),
  {
    minLength: 1,
    maxLength: 2,
  },
);

/** Listeners shaped as the CRD's CEL rules demand: tls only for HTTPS/TLS, hostname not for TCP/UDP. */
export const listener = protocols.chain((protocol) =>
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

export const gateway = fc.record({
  apiVersion: fc.constant(GROUP),
  kind: fc.constant("Gateway"),
  metadata: fc.record({ name: gatewayNames, namespace: namespaces }),
  spec: fc.record({
    gatewayClassName: fc.constantFrom("gatehouse", "gatehouse", "gatehouse", "other"),
    listeners: fc.uniqueArray(listener, { minLength: 1, maxLength: 4, selector: (l) => l.name }),
  }),
});

export const backendRef = fc.record(
  {
    name: names,
    namespace: namespaces,
    port: ports,
    weight: fc.constantFrom(0, 1, 5),
    kind: fc.constantFrom("Service", "Service", "Foo"),
  },
  { requiredKeys: ["name", "port"] },
);

export const httpFilter = fc.oneof(
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

export const httpRoute = fc.record({
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

export const grpcFilter = fc.oneof(
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
export const grpcRoute = fc.record({
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

export const l4Route = fc.record({
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

export const service = fc.record({
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

export const referenceGrant = fc.record({
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

export const gatewayClass = fc.constant({
  apiVersion: GROUP,
  kind: "GatewayClass",
  metadata: { name: "gatehouse" },
  spec: { controllerName: "gatehouse.dev/gateway-controller" },
});

export const resourceSet = fc.tuple(
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
export function admitted(objects: readonly unknown[]): KubeObject[] {
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

/** A certificate and key that parse (from testdata/translate/grpcroute-https-listener.in.yaml). */
export const TLS_CRT =
  "-----BEGIN CERTIFICATE-----\nMIIBtDCCAVqgAwIBAgIUZZwqw0T8Ug2ejLVh3bsUAVffj3wwCgYIKoZIzj0EAwIw\nGjEYMBYGA1UEAwwPd3d3LmV4YW1wbGUuY29tMB4XDTI2MTEyMjExMjIwM1oXDTM2\nMTExOTExMjIwM1owGjEYMBYGA1UEAwwPd3d3LmV4YW1wbGUuY29tMFkwEwYHKoZI\nzj0CAQYIKoZIzj0DAQcDQgAEaIRxNCgJ3wKdYeIw3PrKn4ccZKLISkTQvzFjfj1h\ney2UUDmtJxS0cYOR0/JADeFP2PcRtnTaQcG6b0/ASa1UGKN+MHwwHQYDVR0OBBYE\nFMaMgxH8AE6M4fyOSjN1tET6xpOBMB8GA1UdIwQYMBaAFMaMgxH8AE6M4fyOSjN1\ntET6xpOBMA8GA1UdEwEB/wQFMAMBAf8wKQYDVR0RBCIwIIIPd3d3LmV4YW1wbGUu\nY29tgg0qLmV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIQCFKuKp/LRAPTBv\nOOgluzYvnYjTfXbdR0gPA0NK97pkDAIgU2p89+np+tEckHGt/qWg3VyEtFr9bTrB\nhnPLxSgi80E=\n-----END CERTIFICATE-----\n";
export const TLS_KEY =
  "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdkOokPmGZdGp2EEh\nPUS5tIN8qnTX5hqsPWqBPcS8idqhRANCAARohHE0KAnfAp1h4jDc+sqfhxxkoshK\nRNC/MWN+PWF7LZRQOa0nFLRxg5HT8kAN4U/Y9xG2dNpBwbpvT8BJrVQY\n-----END PRIVATE KEY-----\n";

/** TLS Secrets named like the listeners' certificateRefs: valid, or holding something that is no certificate. */
export const secret = fc.record({
  apiVersion: fc.constant("v1"),
  kind: fc.constant("Secret"),
  metadata: meta,
  type: fc.constant("kubernetes.io/tls"),
  stringData: fc.oneof(
    fc.constant({ "tls.crt": TLS_CRT, "tls.key": TLS_KEY }),
    fc.constant({ "tls.crt": "not a certificate", "tls.key": "no key" }),
  ),
});

/** EndpointSlices of the generated Services (by name), with ready and unready endpoints. */
export const endpointSlice = fc.record({
  apiVersion: fc.constant("discovery.k8s.io/v1"),
  kind: fc.constant("EndpointSlice"),
  metadata: fc.record({
    name: fc.constantFrom("s1", "s2", "s3"),
    namespace: namespaces,
    labels: fc.record({ "kubernetes.io/service-name": names }),
  }),
  addressType: fc.constant("IPv4"),
  ports: fc.array(fc.record({ port: fc.constantFrom(8080, 9090) }), { minLength: 1, maxLength: 1 }),
  endpoints: fc.array(
    fc.record({
      addresses: fc.array(fc.constantFrom("10.0.0.1", "10.0.0.2", "10.0.0.3"), {
        minLength: 1,
        maxLength: 2,
      }),
      conditions: fc.record({ ready: fc.boolean() }),
    }),
    { maxLength: 2 },
  ),
});

/** Services without static endpoints: their endpoints come from EndpointSlices. */
export const slicedService = service.map((s) => ({
  ...s,
  metadata: { name: s.metadata.name, namespace: s.metadata.namespace },
}));
