// backendRef resolution: Services (with their EndpointSlices, or Gatehouse's static-endpoint
// annotation for standalone users) → IR backends.
import { isIP } from "node:net";
import type { IRBackend, IRBackendProtocol, IREndpoint } from "../ir/types.ts";
import type { EndpointSlice, Service, ServicePort } from "../resources/core.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import type { RouteRefReason } from "./conditions.ts";
import { backendTLSIndex } from "./backendtls.ts";
import { isInferencePoolRef, resolveInferencePoolRef } from "./inference/pool.ts";
import { referenceAllowed } from "./referencegrant.ts";
import { dependency, ENDPOINT_SLICES_OF, recordDependency, untracked } from "./tracking.ts";

/**
 * Standalone convenience: a Service annotated with `gatehouse.dev/endpoints` lists its endpoints
 * directly (comma or space separated `IP` or `IP:port`; without a port the Service port's numeric
 * targetPort, else its port, is used), so no EndpointSlice needs to be written by hand.
 */
export const STATIC_ENDPOINTS_ANNOTATION = "gatehouse.dev/endpoints";

export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}

export interface RefSource {
  group: string;
  kind: string;
  namespace: string;
}

export type BackendResult =
  | { ok: true; backend: IRBackend }
  | {
      ok: false;
      reason: RouteRefReason;
      message: string;
      /**
       * The reference resolves, but the BackendTLSPolicy in effect for it is unusable: its requests
       * fail (5xx) and the policy's status says why; the route's ResolvedRefs is not affected.
       */
      policyFailure?: true;
    };

/** Which backend protocols a route kind can use. */
export type ProtocolFamily = "http" | "grpc" | "l4tcp" | "l4udp";

/** Resolves one backendRef; `field` names it in messages (e.g. `spec.rules[0].backendRefs[1]`). */
export function resolveBackendRef(
  snapshot: Snapshot,
  from: RefSource,
  ref: BackendRef,
  family: ProtocolFamily,
  field: string,
): BackendResult {
  const group = ref.group ?? "";
  const kind = ref.kind ?? "Service";
  const namespace = ref.namespace ?? from.namespace;
  // Gateway API Inference Extension (inference/pool.ts).
  if (isInferencePoolRef(ref)) return resolveInferencePoolRef(snapshot, from, ref, family, field);
  if (group !== "" || kind !== "Service") {
    return {
      ok: false,
      reason: "InvalidKind",
      message: `${field}: ${group === "" ? "" : group + "/"}${kind} is not a supported backend kind; use a core Service`,
    };
  }
  if (
    !referenceAllowed(snapshot.referenceGrants, from, {
      group: "",
      kind: "Service",
      namespace,
      name: ref.name,
    })
  ) {
    return {
      ok: false,
      reason: "RefNotPermitted",
      message: `${field}: Service ${namespace}/${ref.name} is in another namespace and no ReferenceGrant allows ${from.kind} from ${from.namespace}`,
    };
  }
  const service = snapshot.services.get(`${namespace}/${ref.name}`);
  if (service === undefined) {
    return {
      ok: false,
      reason: "BackendNotFound",
      message: `${field}: Service ${namespace}/${ref.name} not found`,
    };
  }
  if (ref.port === undefined) {
    return {
      ok: false,
      reason: "BackendNotFound",
      message: `${field}: port is required for a Service backend`,
    };
  }
  // A Service may expose one port number over both TCP and UDP: pick the entry the route can use.
  const transport = family === "l4udp" ? "UDP" : "TCP";
  const candidates = (service.spec?.ports ?? []).filter((p) => p.port === ref.port);
  const servicePort = candidates.find((p) => (p.protocol ?? "TCP") === transport) ?? candidates[0];
  if (servicePort === undefined) {
    return {
      ok: false,
      reason: "BackendNotFound",
      message: `${field}: Service ${namespace}/${ref.name} has no port ${ref.port}`,
    };
  }
  // Upstream TLS from the BackendTLSPolicy in effect for this port (HTTP and gRPC routes).
  const policy =
    family === "http" || family === "grpc"
      ? backendTLSIndex(snapshot).forPort(namespace, ref.name, servicePort)
      : undefined;
  const protocol = policy === undefined ? backendProtocol(servicePort, family) : tlsProtocol(servicePort);
  if (protocol === undefined) {
    return {
      ok: false,
      reason: "UnsupportedProtocol",
      message: `${field}: Service ${namespace}/${ref.name} port ${ref.port} has ${
        servicePort.appProtocol !== undefined
          ? `appProtocol ${servicePort.appProtocol}`
          : `protocol ${servicePort.protocol ?? "TCP"}`
      }, which ${familyName(family)} cannot use${policy === undefined ? "" : " with TLS (BackendTLSPolicy)"}`,
    };
  }
  // "Connections using an invalid CACertificateRef MUST fail": the policy reports why in its status;
  // the route's references themselves are resolved.
  if (policy !== undefined && policy.tls === undefined) {
    return {
      ok: false,
      reason: "UnsupportedProtocol",
      message: `${field}: BackendTLSPolicy ${policy.key} for Service ${namespace}/${ref.name} port ${ref.port} is not usable: ${policy.problem ?? "invalid"}`,
      policyFailure: true,
    };
  }
  return {
    ok: true,
    backend: {
      id: backendId(namespace, ref.name, ref.port, family, protocol),
      source: { kind: "Service", namespace, name: ref.name },
      port: ref.port,
      protocol,
      endpoints: serviceEndpoints(snapshot, service, servicePort),
      ...(policy?.tls !== undefined ? { tls: policy.tls } : {}),
    },
  };
}

/**
 * `service/<ns>/<name>/<port>` for HTTPRoute backends; other route kinds append the protocol
 * (`/tcp`, `/udp`, `/h2c`), so that one Service port used by an HTTPRoute and, say, a TCPRoute gives
 * two distinct IR backends instead of one overwriting the other.
 */
function backendId(
  namespace: string,
  name: string,
  port: number,
  family: ProtocolFamily,
  protocol: IRBackendProtocol,
): string {
  const base = `service/${namespace}/${name}/${port}`;
  return family === "http" ? base : `${base}/${protocol}`;
}

function familyName(family: ProtocolFamily): string {
  return { http: "an HTTP route", grpc: "a gRPC route", l4tcp: "a TCP/TLS route", l4udp: "a UDP route" }[
    family
  ];
}

/** The backend protocol for a Service port, from its `protocol` and `appProtocol`. */
function backendProtocol(port: ServicePort, family: ProtocolFamily): IRBackendProtocol | undefined {
  const l4 = port.protocol ?? "TCP";
  if (family === "l4udp") return l4 === "UDP" ? "udp" : undefined;
  if (l4 !== "TCP") return undefined;
  if (family === "l4tcp") return "tcp";
  const app = port.appProtocol?.toLowerCase();
  if (family === "grpc") {
    // gRPC needs HTTP/2: cleartext here (with a BackendTLSPolicy: tlsProtocol, ALPN h2).
    if (app === undefined || app === "kubernetes.io/h2c" || app === "grpc" || app === "http2") return "h2c";
    return undefined;
  }
  switch (app) {
    case undefined:
    case "http":
      return "http";
    case "kubernetes.io/h2c":
    case "http2":
      return "h2c";
    case "kubernetes.io/ws":
      return "websocket";
    default:
      return undefined;
  }
}

/** The backend protocol for a Service port a BackendTLSPolicy applies to: HTTP (or gRPC) over TLS. */
function tlsProtocol(port: ServicePort): IRBackendProtocol | undefined {
  if ((port.protocol ?? "TCP") !== "TCP") return undefined;
  const app = port.appProtocol?.toLowerCase();
  return app === undefined || app === "http" || app === "https" || app === "grpc" || app === "http2"
    ? "https"
    : undefined;
}

/** Ready endpoints of a Service port, sorted and deduplicated. */
export function serviceEndpoints(snapshot: Snapshot, service: Service, port: ServicePort): IREndpoint[] {
  const namespace = service.metadata.namespace ?? "default";
  const found = new Map<string, IREndpoint>();
  const add = (address: string, p: number): void => {
    found.set(`${address}|${p}`, { address, port: p });
  };
  const staticList = service.metadata.annotations?.[STATIC_ENDPOINTS_ANNOTATION];
  if (staticList !== undefined) {
    const defaultPort = typeof port.targetPort === "number" ? port.targetPort : port.port;
    for (const item of staticList.split(/[\s,]+/).filter((s) => s !== "")) {
      const parsed = parseHostPort(item);
      if (parsed !== undefined) add(parsed.address, parsed.port ?? defaultPort);
    }
  } else {
    const key = `${namespace}/${service.metadata.name}`;
    recordDependency(snapshot, dependency(ENDPOINT_SLICES_OF, key));
    for (const slice of endpointSliceIndex(untracked(snapshot)).get(key) ?? []) {
      if (slice.addressType === "FQDN") continue;
      // "The port name must match the Service port name" (EndpointPort.name; unnamed ports are "").
      const slicePort = (slice.ports ?? []).find((p) => (p.name ?? "") === (port.name ?? ""));
      if (slicePort?.port === undefined) continue;
      for (const ep of slice.endpoints ?? []) {
        // "ready: nil should be interpreted as true" (discovery.k8s.io/v1 EndpointConditions).
        if (ep.conditions?.ready === false) continue;
        for (const address of ep.addresses) if (isIP(address) !== 0) add(address, slicePort.port);
      }
    }
  }
  return [...found.values()].sort((a, b) =>
    a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port,
  );
}

const sliceIndexes = new WeakMap<Snapshot, Map<string, EndpointSlice[]>>();

/**
 * The snapshot's EndpointSlices by `namespace/service` (their `kubernetes.io/service-name` label),
 * in snapshot order; built once per (immutable) snapshot, so that finding a Service's slices does not
 * scan every slice.
 */
function endpointSliceIndex(snapshot: Snapshot): ReadonlyMap<string, EndpointSlice[]> {
  let index = sliceIndexes.get(snapshot);
  if (index !== undefined) return index;
  index = new Map();
  for (const slice of snapshot.endpointSlices.values()) {
    const key = endpointSliceService(slice);
    if (key === undefined) continue;
    const list = index.get(key);
    if (list === undefined) index.set(key, [slice]);
    else list.push(slice);
  }
  sliceIndexes.set(snapshot, index);
  return index;
}

/** `namespace/service` of the Service an EndpointSlice belongs to, if it names one. */
export function endpointSliceService(slice: EndpointSlice): string | undefined {
  const name = slice.metadata.labels?.["kubernetes.io/service-name"];
  return name === undefined ? undefined : `${slice.metadata.namespace ?? "default"}/${name}`;
}

/** Parses `IP`, `IP:port` or `[IPv6]:port`; undefined when it is not an IP. */
export function parseHostPort(item: string): { address: string; port?: number } | undefined {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(item);
  if (bracket !== null) {
    const address = bracket[1] ?? "";
    if (isIP(address) !== 6) return undefined;
    return bracket[2] === undefined ? { address } : withPort(address, bracket[2]);
  }
  if (isIP(item) !== 0) return { address: item };
  const colon = item.lastIndexOf(":");
  if (colon < 0) return undefined;
  const address = item.slice(0, colon);
  if (isIP(address) !== 4) return undefined;
  return withPort(address, item.slice(colon + 1));
}

function withPort(address: string, port: string): { address: string; port: number } | undefined {
  const n = Number(port);
  return /^\d+$/.test(port) && n >= 1 && n <= 65535 ? { address, port: n } : undefined;
}
