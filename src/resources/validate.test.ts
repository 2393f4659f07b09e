import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { KubeObject } from "./meta.ts";
import { celCoverage, validateObject } from "./validate.ts";
import type { FieldError } from "./validate.ts";

const GW = "gateway.networking.k8s.io/v1";

/** Builds a KubeObject from a plain literal (tests deliberately pass loosely typed objects). */
function obj(apiVersion: string, kind: string, name: string, rest: Record<string, unknown> = {}): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: "default" }, ...rest };
}

/** Errors of validating `o`, as "path: message" lines. */
function errs(o: unknown): string[] {
  return validateObject(o as KubeObject).errors.map((e) => `${e.path}: ${e.message}`);
}

/** Asserts one of the errors equals `line`. */
function hasError(o: unknown, line: string): void {
  const lines = errs(o);
  assert.ok(lines.includes(line), `expected error\n  ${line}\ngot\n  ${lines.join("\n  ")}`);
}

const route = (spec: Record<string, unknown>): KubeObject =>
  obj(GW, "HTTPRoute", "r", { spec: { parentRefs: [{ name: "gw" }], ...spec } });
const gateway = (listeners: unknown[], extra: Record<string, unknown> = {}): KubeObject =>
  obj(GW, "Gateway", "gw", { spec: { gatewayClassName: "gatehouse", listeners, ...extra } });
const http = (name: string, port = 80): Record<string, unknown> => ({ name, port, protocol: "HTTP" });

/** Valid objects that exercise most fields (and so most CEL rules) of every kind. */
const VALID: KubeObject[] = [
  obj(GW, "GatewayClass", "gatehouse", {
    spec: {
      controllerName: "gatehouse.dev/controller",
      parametersRef: { group: "", kind: "ConfigMap", name: "params", namespace: "default" },
    },
  }),
  gateway(
    [
      { ...http("http"), hostname: "*.example.com" },
      {
        name: "https",
        port: 443,
        protocol: "HTTPS",
        hostname: "www.example.com",
        tls: { certificateRefs: [{ name: "cert" }] },
        allowedRoutes: { namespaces: { from: "All" }, kinds: [{ kind: "HTTPRoute" }] },
      },
      { name: "tls", port: 8443, protocol: "TLS", tls: { mode: "Passthrough" } },
      { name: "tcp", port: 9000, protocol: "TCP" },
      { name: "udp", port: 9000, protocol: "UDP" },
    ],
    {
      addresses: [
        { value: "10.0.0.1" },
        { type: "IPAddress", value: "2001:db8::1" },
        { type: "Hostname", value: "lb.example.com" },
      ],
      infrastructure: { labels: { "example.com/team": "edge" }, annotations: { note: "x" } },
    },
  ),
  route({
    parentRefs: [
      { name: "gw", sectionName: "http" },
      { name: "gw", sectionName: "https" },
    ],
    hostnames: ["www.example.com", "*.example.org"],
    rules: [
      {
        name: "api",
        matches: [
          {
            path: { type: "PathPrefix", value: "/api" },
            headers: [{ name: "x-env", value: "prod" }],
            queryParams: [{ name: "v", value: "2", type: "Exact" }],
            method: "GET",
          },
        ],
        filters: [
          {
            type: "RequestHeaderModifier",
            requestHeaderModifier: { set: [{ name: "x-a", value: "1" }], remove: ["x-b"] },
          },
          { type: "ResponseHeaderModifier", responseHeaderModifier: { add: [{ name: "x-c", value: "2" }] } },
          {
            type: "URLRewrite",
            urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/v2" } },
          },
          {
            type: "RequestMirror",
            requestMirror: { backendRef: { name: "mirror", port: 80 }, fraction: { numerator: 1 } },
          },
          { type: "CORS", cors: { allowOrigins: ["https://a.example.com"], allowMethods: ["GET", "POST"] } },
        ],
        backendRefs: [
          { name: "api", port: 8080, weight: 3 },
          {
            name: "api-canary",
            port: 8080,
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "x-canary", value: "1" }] },
              },
            ],
          },
        ],
        timeouts: { request: "10s", backendRequest: "5s" },
        sessionPersistence: {
          sessionName: "s",
          absoluteTimeout: "1h",
          cookieConfig: { lifetimeType: "Permanent" },
        },
        retry: { codes: [500, 503], attempts: 2, backoff: "100ms" },
      },
      {
        name: "redirect",
        matches: [{ path: { type: "Exact", value: "/old" } }],
        filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }],
      },
      {
        matches: [{ path: { type: "RegularExpression", value: "^/re/[0-9]+$" } }],
        backendRefs: [{ name: "re", port: 80 }],
      },
    ],
  }),
  obj(GW, "GRPCRoute", "g", {
    spec: {
      parentRefs: [{ name: "gw", port: 443 }],
      hostnames: ["grpc.example.com"],
      rules: [
        {
          matches: [
            {
              method: { service: "com.example.User", method: "Login" },
              headers: [{ name: "x-a", value: "b" }],
            },
          ],
          backendRefs: [{ name: "grpc", port: 50051 }],
        },
      ],
    },
  }),
  obj(GW, "TLSRoute", "t", {
    spec: {
      parentRefs: [{ name: "gw", sectionName: "tls" }],
      hostnames: ["tls.example.com"],
      rules: [{ backendRefs: [{ name: "t", port: 443 }] }],
    },
  }),
  obj(GW, "TCPRoute", "tcp", {
    spec: {
      parentRefs: [{ name: "gw", sectionName: "tcp" }],
      rules: [{ backendRefs: [{ name: "t", port: 9000 }] }],
    },
  }),
  obj(GW, "UDPRoute", "udp", {
    spec: {
      parentRefs: [{ name: "gw", sectionName: "udp" }],
      rules: [{ backendRefs: [{ name: "u", port: 53 }] }],
    },
  }),
  obj(GW, "BackendTLSPolicy", "b", {
    spec: {
      targetRefs: [{ group: "", kind: "Service", name: "api" }],
      validation: {
        hostname: "api.internal",
        caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "ca" }],
        subjectAltNames: [
          { type: "Hostname", hostname: "api.internal" },
          { type: "URI", uri: "spiffe://cluster/ns/default" },
        ],
      },
    },
  }),
  obj(GW, "ListenerSet", "ls", {
    spec: { parentRef: { name: "gw" }, listeners: [{ ...http("extra", 8080), hostname: "x.example.com" }] },
  }),
  obj(GW, "ReferenceGrant", "rg", {
    spec: {
      from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "apps" }],
      to: [{ group: "", kind: "Service" }],
    },
  }),
  obj("gateway.networking.k8s.io/v1beta1", "Gateway", "old", {
    spec: { gatewayClassName: "gatehouse", listeners: [http("http")] },
  }),
  obj("gateway.networking.k8s.io/v1beta1", "HTTPRoute", "old", {
    spec: { rules: [{ backendRefs: [{ name: "a", port: 80 }] }] },
  }),
  obj("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "old", {
    spec: { rules: [{ backendRefs: [{ name: "a", port: 80 }] }] },
  }),
  obj("gateway.networking.k8s.io/v1alpha3", "TLSRoute", "old", {
    spec: { hostnames: ["a.example.com"], rules: [{ backendRefs: [{ name: "a", port: 443 }] }] },
  }),
  {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "apps", labels: { "kubernetes.io/metadata.name": "apps" } },
  },
  obj("v1", "Service", "api", {
    spec: {
      selector: { app: "api" },
      ports: [
        { name: "http", port: 80, targetPort: "http" },
        { name: "grpc", port: 50051, appProtocol: "kubernetes.io/h2c" },
      ],
    },
  }),
  obj("v1", "Service", "ext", { spec: { type: "ExternalName", externalName: "api.example.com" } }),
  obj("v1", "Service", "headless", { spec: { clusterIP: "None" } }),
  obj("discovery.k8s.io/v1", "EndpointSlice", "api-abc", {
    addressType: "IPv4",
    endpoints: [{ addresses: ["10.0.0.1"], conditions: { ready: true } }, { addresses: ["10.0.0.2"] }],
    ports: [{ name: "http", port: 8080 }],
  }),
  obj("v1", "Secret", "cert", {
    type: "kubernetes.io/tls",
    data: { "tls.crt": "Y2VydA==", "tls.key": "a2V5" },
  }),
  obj("v1", "ConfigMap", "ca", { data: { "ca.crt": "pem" }, binaryData: { blob: "AAEC" } }),
];

describe("validateObject: valid objects", () => {
  it("accepts realistic objects of every kind without errors or CEL evaluation errors", () => {
    const before = new Map(celCoverage().runtimeErrors.map((e) => [e.rule, e.count]));
    for (const o of VALID) {
      assert.deepEqual(errs(o), [], `${o.apiVersion} ${o.kind}`);
    }
    const fresh = celCoverage().runtimeErrors.filter((e) => e.count !== (before.get(e.rule) ?? 0));
    assert.deepEqual(fresh, [], "valid objects must not make any rule error at runtime");
  });
  it("never mutates its input", () => {
    for (const o of VALID) {
      const copy = structuredClone(o);
      validateObject(o);
      assert.deepEqual(o, copy);
    }
  });
});

describe("validateObject: defaults", () => {
  it("defaults HTTPRoute matches, backendRef and parentRef fields", () => {
    const { object } = validateObject(route({ rules: [{ backendRefs: [{ name: "svc", port: 80 }] }] }));
    assert.deepEqual(object["spec"], {
      parentRefs: [{ name: "gw", group: "gateway.networking.k8s.io", kind: "Gateway" }],
      rules: [
        {
          matches: [{ path: { type: "PathPrefix", value: "/" } }],
          backendRefs: [{ name: "svc", port: 80, group: "", kind: "Service", weight: 1 }],
        },
      ],
    });
  });
  it("defaults missing HTTPRoute rules, match types and redirect status codes", () => {
    assert.deepEqual(validateObject(route({})).object["spec"], {
      parentRefs: [{ name: "gw", group: "gateway.networking.k8s.io", kind: "Gateway" }],
      rules: [{ matches: [{ path: { type: "PathPrefix", value: "/" } }] }],
    });
    const { object } = validateObject(
      route({
        rules: [
          {
            matches: [{ headers: [{ name: "a", value: "b" }] }],
            filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https" } }],
          },
        ],
      }),
    );
    assert.deepEqual(object["spec"], {
      parentRefs: [{ name: "gw", group: "gateway.networking.k8s.io", kind: "Gateway" }],
      rules: [
        {
          matches: [
            { headers: [{ name: "a", value: "b", type: "Exact" }], path: { type: "PathPrefix", value: "/" } },
          ],
          filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 302 } }],
        },
      ],
    });
  });
  it("defaults listener allowedRoutes and TLS mode, and address types", () => {
    const { object, errors } = validateObject(
      gateway(
        [http("a"), { name: "b", port: 443, protocol: "HTTPS", tls: { certificateRefs: [{ name: "c" }] } }],
        {
          addresses: [{ value: "10.0.0.1" }],
        },
      ),
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(object["spec"], {
      gatewayClassName: "gatehouse",
      addresses: [{ value: "10.0.0.1", type: "IPAddress" }],
      listeners: [
        { ...http("a"), allowedRoutes: { namespaces: { from: "Same" } } },
        {
          name: "b",
          port: 443,
          protocol: "HTTPS",
          tls: { mode: "Terminate", certificateRefs: [{ name: "c", group: "", kind: "Secret" }] },
          allowedRoutes: { namespaces: { from: "Same" } },
        },
      ],
    });
  });
  it("replaces non-nullable nulls by their default", () => {
    const { object } = validateObject(
      route({ rules: [{ matches: null, backendRefs: [{ name: "a", port: 1, weight: null }] }] }),
    );
    const rule = (object["spec"] as { rules: Array<Record<string, unknown>> }).rules[0];
    assert.deepEqual(rule, {
      matches: [{ path: { type: "PathPrefix", value: "/" } }],
      backendRefs: [{ name: "a", port: 1, group: "", kind: "Service", weight: 1 }],
    });
  });
  it("defaults core kinds like the API server (Service protocol/type/targetPort, EndpointSlice ports only)", () => {
    const svc = validateObject(obj("v1", "Service", "s", { spec: { ports: [{ port: 80 }] } }));
    assert.deepEqual(svc.object["spec"], {
      type: "ClusterIP",
      ports: [{ port: 80, targetPort: 80, protocol: "TCP" }],
    });
    const slice = validateObject(
      obj("discovery.k8s.io/v1", "EndpointSlice", "e", {
        addressType: "IPv4",
        endpoints: [{ addresses: ["10.0.0.1"] }],
        ports: [{ port: 80 }],
      }),
    );
    assert.deepEqual(
      slice.object["endpoints"],
      [{ addresses: ["10.0.0.1"] }],
      "conditions are not defaulted",
    );
    assert.deepEqual(slice.object["ports"], [{ port: 80, name: "", protocol: "TCP" }]);
    assert.equal(validateObject(obj("v1", "Secret", "s")).object["type"], "Opaque");
  });
});

describe("validateObject: Gateway API schema errors", () => {
  it("reports bounds, enums, patterns, required and unknown fields at precise paths", () => {
    const lines = errs(
      gateway(
        [http("a"), { name: "b", port: 70000, protocol: "HTTP" }, { name: "Bad_Name", protocol: "HTTP" }],
        { bogus: 1 },
      ),
    );
    assert.ok(lines.includes("spec.listeners[1].port: must be <= 65535"));
    assert.ok(lines.includes("spec.listeners[2].port: Required value"));
    assert.ok(lines.includes("spec.bogus: field not declared in schema"));
    assert.ok(
      lines.some((l) =>
        l.startsWith(`spec.listeners[2].name: Invalid value: "Bad_Name": must match the regular expression`),
      ),
    );
    hasError(
      route({ rules: [{ matches: [{ method: "FETCH" }] }] }),
      'spec.rules[0].matches[0].method: Unsupported value: "FETCH": supported values: "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"',
    );
    hasError(
      route({ rules: [{ matches: [{ path: { value: 5 } }] }] }),
      "spec.rules[0].matches[0].path.value: must be of type string (got integer)",
    );
  });
  it("checks formats Kubernetes enforces (IP addresses in Gateway addresses)", () => {
    hasError(
      gateway([http("a")], { addresses: [{ value: "10.0.0.300" }] }),
      'spec.addresses[0].value: Invalid value: "10.0.0.300": must be a valid IPv4 address or a valid IPv6 address',
    );
    assert.deepEqual(
      errs(gateway([http("a")], { addresses: [{ type: "NamedAddress", value: "my-pool" }] })),
      [],
    );
  });
  it("rejects duplicate list-map keys (listener names, header names)", () => {
    hasError(gateway([http("a"), http("a", 81)]), 'spec.listeners[1]: Duplicate value: {"name":"a"}');
    hasError(
      gateway([http("a"), http("a", 81)]),
      "spec.listeners: Listener name must be unique within the Gateway",
    );
    hasError(
      route({
        rules: [
          {
            matches: [
              {
                headers: [
                  { name: "x", value: "1" },
                  { name: "x", value: "2" },
                ],
              },
            ],
          },
        ],
      }),
      'spec.rules[0].matches[0].headers[1]: Duplicate value: {"name":"x"}',
    );
  });
  it("reports an unknown version of a Gateway API kind, listing the served versions", () => {
    assert.deepEqual(validateObject(obj("gateway.networking.k8s.io/v9", "HTTPRoute", "r")).errors, [
      {
        path: "apiVersion",
        message:
          "HTTPRoute is not served at gateway.networking.k8s.io/v9; served versions: gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1",
      },
    ]);
  });
});

describe("validateObject: CEL rules", () => {
  it("rejects RequestRedirect and URLRewrite on the same rule", () => {
    hasError(
      route({
        rules: [
          {
            filters: [
              { type: "RequestRedirect", requestRedirect: { hostname: "a.example.com" } },
              { type: "URLRewrite", urlRewrite: { hostname: "b.example.com" } },
            ],
          },
        ],
      }),
      "spec.rules[0].filters: May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both",
    );
  });
  it("requires the filter field matching filter.type, and only that one", () => {
    hasError(
      route({ rules: [{ filters: [{ type: "RequestRedirect" }] }] }),
      "spec.rules[0].filters[0]: filter.requestRedirect must be specified for RequestRedirect filter.type",
    );
    hasError(
      route({ rules: [{ filters: [{ type: "RequestHeaderModifier" }] }] }),
      "spec.rules[0].filters[0]: filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type",
    );
    hasError(
      route({
        rules: [{ filters: [{ type: "ResponseHeaderModifier", requestHeaderModifier: { remove: ["a"] } }] }],
      }),
      "spec.rules[0].filters[0]: filter.requestHeaderModifier must be nil if the filter.type is not RequestHeaderModifier",
    );
  });
  it("requires Exact/PathPrefix path values to be absolute, clean paths", () => {
    const bad = (value: string): KubeObject =>
      route({ rules: [{ matches: [{ path: { type: "PathPrefix", value } }] }] });
    hasError(
      bad("foo"),
      "spec.rules[0].matches[0].path: value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']",
    );
    hasError(
      bad("/a//b"),
      "spec.rules[0].matches[0].path: must not contain '//' when type one of ['Exact', 'PathPrefix']",
    );
    assert.deepEqual(
      errs(route({ rules: [{ matches: [{ path: { type: "RegularExpression", value: "foo.*" } }] }] })),
      [],
    );
  });
  it("only allows ReplacePrefixMatch with a single PathPrefix match", () => {
    const rewrite = {
      type: "URLRewrite",
      urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/x" } },
    };
    hasError(
      route({ rules: [{ matches: [{ path: { type: "Exact", value: "/a" } }], filters: [rewrite] }] }),
      "spec.rules[0]: When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified",
    );
    assert.deepEqual(
      errs(route({ rules: [{ filters: [rewrite] }] })),
      [],
      "the defaulted match is a PathPrefix",
    );
  });
  it("checks listener TLS and hostname rules per protocol", () => {
    hasError(
      gateway([{ ...http("a"), tls: { certificateRefs: [{ name: "c" }] } }]),
      "spec.listeners: tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
    );
    hasError(
      gateway([{ name: "t", port: 443, protocol: "TLS" }]),
      "spec.listeners: tls mode must be set for protocol TLS",
    );
    hasError(
      gateway([{ name: "s", port: 443, protocol: "HTTPS", tls: { mode: "Passthrough" } }]),
      "spec.listeners: tls mode must be Terminate for protocol HTTPS",
    );
    hasError(
      gateway([{ name: "t", port: 9000, protocol: "TCP", hostname: "a.example.com" }]),
      "spec.listeners: hostname must not be specified for protocols ['TCP', 'UDP']",
    );
    // Gateway API v1.6.1 has no CRD rule requiring `tls` on HTTPS listeners (controllers report it).
    assert.deepEqual(errs(gateway([{ name: "s", port: 443, protocol: "HTTPS" }])), []);
  });
  it("evaluates rules needing RE2, isIP() and duration()", () => {
    const grpc = (service: string): KubeObject =>
      obj(GW, "GRPCRoute", "g", { spec: { rules: [{ matches: [{ method: { service, method: "Get" } }] }] } });
    assert.deepEqual(errs(grpc("Com.Example.Users")), []);
    assert.ok(
      errs(grpc("9bad")).some((l) =>
        l.startsWith("spec.rules[0].matches[0].method: service must only contain valid characters"),
      ),
    );
    hasError(
      obj(GW, "TLSRoute", "t", {
        spec: { hostnames: ["10.0.0.1"], rules: [{ backendRefs: [{ name: "a", port: 1 }] }] },
      }),
      "spec.hostnames: Hostnames cannot contain an IP",
    );
    hasError(
      route({ rules: [{ timeouts: { request: "1s", backendRequest: "2s" } }] }),
      "spec.rules[0].timeouts: backendRequest timeout cannot be longer than request timeout",
    );
  });
  it("does not run rules on a node containing type errors (like the API server)", () => {
    const lines = errs(route({ rules: [{ matches: "nope", filters: [{ type: "RequestRedirect" }] }] }));
    assert.deepEqual(lines, [
      "spec.rules[0].filters[0]: filter.requestRedirect must be specified for RequestRedirect filter.type",
      "spec.rules[0].matches: must be of type array (got string)",
    ]);
  });
});

describe("validateObject: metadata", () => {
  it("requires a valid name and namespace", () => {
    hasError(
      { apiVersion: GW, kind: "HTTPRoute", spec: {} },
      "metadata.name: Required value: name is required",
    );
    hasError(
      { apiVersion: GW, kind: "HTTPRoute", metadata: {} },
      "metadata.name: Required value: name is required",
    );
    assert.ok(
      errs(obj(GW, "HTTPRoute", "Bad_Name")).some((l) =>
        l.startsWith('metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'),
      ),
    );
    assert.ok(
      errs(obj(GW, "HTTPRoute", "a".repeat(254))).includes(
        "metadata.name: Invalid value: " +
          JSON.stringify("a".repeat(254)).slice(0, 77) +
          "...: must be no more than 253 characters",
      ),
    );
    const ns = { apiVersion: GW, kind: "HTTPRoute", metadata: { name: "r", namespace: "a.b" } };
    assert.ok(
      errs(ns).some((l) =>
        l.startsWith('metadata.namespace: Invalid value: "a.b": a lowercase RFC 1123 label'),
      ),
    );
    assert.ok(
      errs(obj("v1", "Service", "1svc", { spec: { clusterIP: "None" } })).some((l) =>
        l.includes("DNS-1035 label"),
      ),
    );
  });
  it("checks labels, annotations and unknown metadata fields", () => {
    const lines = errs({
      apiVersion: GW,
      kind: "GatewayClass",
      metadata: {
        name: "c",
        labels: { "ok/key": "v", "-bad": "v", good: "bad value", n: 5 },
        annotations: { "a/b/c": "x" },
        nope: 1,
      },
      spec: { controllerName: "a.example.com/c" },
    });
    assert.ok(
      lines.some((l) => l.startsWith('metadata.labels: Invalid value: "-bad": name part must consist')),
    );
    assert.ok(
      lines.some((l) => l.startsWith('metadata.labels[good]: Invalid value: "bad value": a valid label')),
    );
    assert.ok(lines.includes("metadata.labels[n]: must be of type string (got integer)"));
    assert.ok(lines.some((l) => l.startsWith('metadata.annotations: Invalid value: "a/b/c"')));
    assert.ok(lines.includes("metadata.nope: field not declared in schema"));
  });
});

describe("validateObject: core kinds", () => {
  it("validates Service ports", () => {
    const lines = errs(
      obj("v1", "Service", "s", {
        spec: {
          ports: [
            { name: "a", port: 0 },
            { name: "b", port: 80, protocol: "HTTP", targetPort: "toolongservicename" },
          ],
        },
      }),
    );
    assert.ok(lines.includes("spec.ports[0].port: must be >= 1"));
    assert.ok(
      lines.includes(
        'spec.ports[1].protocol: Unsupported value: "HTTP": supported values: "TCP", "UDP", "SCTP"',
      ),
    );
    assert.ok(
      lines.some((l) =>
        l.startsWith("spec.ports[1].targetPort: must be a port number (1-65535) or an IANA service name"),
      ),
    );
    hasError(obj("v1", "Service", "s", { spec: {} }), "spec.ports: Required value: ports is required");
    hasError(
      obj("v1", "Service", "s", { spec: { ports: [{ port: 80 }, { port: 81 }] } }),
      "spec.ports: Required value: every port needs a name when the Service has more than one port",
    );
  });
  it("validates Secret data as base64 and kubernetes.io/tls keys", () => {
    const lines = errs(
      obj("v1", "Secret", "s", { type: "kubernetes.io/tls", data: { "tls.crt": "not base64!" } }),
    );
    assert.deepEqual(lines, [
      'data[tls.crt]: Invalid value: "not base64!": must be valid base64 data',
      "data[tls.key]: Required value: a kubernetes.io/tls Secret must contain tls.key",
    ]);
    assert.deepEqual(
      errs(
        obj("v1", "Secret", "s", {
          type: "kubernetes.io/tls",
          data: { "tls.crt": "YQ==" },
          stringData: { "tls.key": "k" },
        }),
      ),
      [],
    );
    assert.ok(
      errs(obj("v1", "ConfigMap", "c", { data: { "a b": "x" } }))[0]?.startsWith(
        'data[a b]: Invalid value: "a b": a valid config key',
      ),
    );
  });
  it("validates EndpointSlices", () => {
    const lines = errs(
      obj("discovery.k8s.io/v1", "EndpointSlice", "e", {
        addressType: "IPv4",
        endpoints: [{ addresses: ["10.0.0.1", "::1"] }, { conditions: { ready: true } }],
        ports: [{ port: 70000 }],
      }),
    );
    assert.deepEqual(lines, [
      'endpoints[0].addresses[1]: Invalid value: "::1": must be a valid IPv4 address',
      "endpoints[1].addresses: Required value",
      "ports[0].port: must be <= 65535",
    ]);
    hasError(
      obj("discovery.k8s.io/v1", "EndpointSlice", "e", { addressType: "IPX" }),
      'addressType: Unsupported value: "IPX": supported values: "IPv4", "IPv6", "FQDN"',
    );
    hasError(obj("discovery.k8s.io/v1", "EndpointSlice", "e", {}), "addressType: Required value");
  });
});

describe("validateObject: unknown kinds and output shape", () => {
  it("returns unknown apiVersion/kind unchanged without errors", () => {
    for (const o of [
      obj("v1", "ReplicationController", "p", { spec: 5 }),
      obj("example.com/v1", "Gateway", "g"),
      obj("gateway.networking.k8s.io/v1", "Mystery", "m"),
    ]) {
      const result = validateObject(o);
      assert.equal(result.object, o);
      assert.deepEqual(result.errors, []);
    }
  });
  it("is not fooled by prototype property names", () => {
    for (const kind of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      assert.deepEqual(validateObject(obj(GW, kind, "x")).errors, [], kind);
      assert.deepEqual(validateObject(obj("v1", kind, "x")).errors, [], kind);
    }
    const parsed = JSON.parse(
      '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","__proto__":{"x":1}},"data":{"__proto__":"v"}}',
    ) as KubeObject;
    const result = validateObject(parsed);
    assert.deepEqual(
      result.errors.map((e) => e.path),
      ["metadata.__proto__"],
    );
    assert.equal(Object.getPrototypeOf(result.object["data"]), Object.prototype);
  });
  it("sorts errors naturally by path and deduplicates them", () => {
    const listeners = Array.from({ length: 12 }, (_, i) => ({
      name: `l${i}`,
      port: 70000 + i,
      protocol: "HTTP",
    }));
    const paths = validateObject(gateway(listeners)).errors.map((e: FieldError) => e.path);
    assert.deepEqual(
      paths,
      listeners.map((_, i) => `spec.listeners[${i}].port`),
    );
  });
});

describe("validateObject: robustness", () => {
  const kinds: Array<[string, string]> = [
    [GW, "Gateway"],
    [GW, "HTTPRoute"],
    [GW, "GRPCRoute"],
    ["gateway.networking.k8s.io/v1alpha2", "TCPRoute"],
    ["v1", "Service"],
    ["v1", "Secret"],
    ["discovery.k8s.io/v1", "EndpointSlice"],
  ];
  const check = (value: unknown): void => {
    const result = validateObject(value as KubeObject);
    assert.ok(Array.isArray(result.errors));
    for (const e of result.errors) {
      assert.ok(typeof e.path === "string" && typeof e.message === "string");
      // validateObject's last-resort catch must not be what kept it from throwing.
      assert.doesNotMatch(e.message, /^could not be validated/);
    }
  };
  it("never throws on arbitrary values", () => {
    fc.assert(fc.property(fc.anything(), check), { numRuns: 300 });
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.anything(),
        fc.anything(),
        ([apiVersion, kind], metadata, spec) => check({ apiVersion, kind, metadata, spec }),
      ),
      { numRuns: 300 },
    );
  });
  it("never throws on mutated valid objects", () => {
    /** Replaces the value at a random path of a JSON value. */
    const mutate = (value: unknown, path: number[], replacement: unknown): unknown => {
      const [step, ...rest] = path;
      if (step === undefined || value === null || typeof value !== "object") return replacement;
      const entries: Array<[string, unknown]> = Object.entries(value);
      if (entries.length === 0) return replacement;
      const index = step % entries.length;
      const copy = entries.map(([k, v], i): [string, unknown] => [
        k,
        i === index ? mutate(v, rest, replacement) : v,
      ]);
      return Array.isArray(value) ? copy.map(([, v]) => v) : Object.fromEntries(copy);
    };
    fc.assert(
      fc.property(
        fc.constantFrom(...VALID),
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
        fc.oneof(fc.jsonValue(), fc.constant(null), fc.constant([]), fc.constant({})),
        (o, path, replacement) => check(mutate(o, path, replacement)),
      ),
      { numRuns: 500 },
    );
  });
});
