// Builders for the YAML resources the end-to-end tests write (namespace `default`, GatewayClass
// `gatehouse`). Each returns a plain object; `docs(...)` turns a list into a multi-document YAML file.
import { stringify } from "yaml";

export type Obj = Record<string, unknown>;

export const NS = "default";
export const CLASS = "gatehouse";
export const CONTROLLER = "gatehouse.dev/gateway-controller";

/** A multi-document YAML file. */
export function docs(...objects: Obj[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}

export function gatewayClass(): Obj {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "GatewayClass",
    metadata: { name: CLASS },
    spec: { controllerName: CONTROLLER },
  };
}

export interface ListenerSpec {
  name: string;
  port: number;
  protocol?: "HTTP" | "HTTPS";
  hostname?: string;
  /** HTTPS: the Secrets holding the certificates. */
  certificates?: string[];
}

export function gateway(name: string, address: string, listeners: ListenerSpec[]): Obj {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace: NS },
    spec: {
      gatewayClassName: CLASS,
      addresses: [{ type: "IPAddress", value: address }],
      listeners: listeners.map((l) => ({
        name: l.name,
        port: l.port,
        protocol: l.protocol ?? "HTTP",
        ...(l.hostname !== undefined ? { hostname: l.hostname } : {}),
        ...(l.certificates !== undefined
          ? { tls: { mode: "Terminate", certificateRefs: l.certificates.map((n) => ({ name: n })) } }
          : {}),
        allowedRoutes: { namespaces: { from: "Same" } },
      })),
    },
  };
}

/** A Service whose endpoints come from the `gatehouse.dev/endpoints` annotation (when given). */
export function service(
  name: string,
  options: { port?: number; endpoints?: string[]; appProtocol?: string; portName?: string } = {},
): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: NS,
      ...(options.endpoints !== undefined
        ? { annotations: { "gatehouse.dev/endpoints": options.endpoints.join(",") } }
        : {}),
    },
    spec: {
      ports: [
        {
          port: options.port ?? 80,
          ...(options.portName !== undefined ? { name: options.portName } : {}),
          ...(options.appProtocol !== undefined ? { appProtocol: options.appProtocol } : {}),
        },
      ],
    },
  };
}

/** An EndpointSlice for Service `service` (endpoints `address:port`, all on one port). */
export function endpointSlice(
  name: string,
  serviceName: string,
  port: number,
  endpoints: Array<{ address: string; ready?: boolean }>,
  portName?: string,
): Obj {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name, namespace: NS, labels: { "kubernetes.io/service-name": serviceName } },
    addressType: "IPv4",
    ports: [{ port, protocol: "TCP", ...(portName !== undefined ? { name: portName } : {}) }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      ...(e.ready !== undefined ? { conditions: { ready: e.ready } } : {}),
    })),
  };
}

export function httpRoute(
  name: string,
  spec: { parentRefs?: Obj[]; hostnames?: string[]; rules: Obj[] },
  metadata: Obj = {},
): Obj {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace: NS, ...metadata },
    spec: {
      parentRefs: spec.parentRefs ?? [{ name: "gw" }],
      ...(spec.hostnames !== undefined ? { hostnames: spec.hostnames } : {}),
      rules: spec.rules,
    },
  };
}

export function tlsSecret(name: string, cert: string, key: string): Obj {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: NS },
    type: "kubernetes.io/tls",
    stringData: { "tls.crt": cert, "tls.key": key },
  };
}

/** `backendRefs` entry for Service `name` on port 80 (or `port`). */
export function ref(name: string, extra: Obj = {}): Obj {
  return { name, port: 80, ...extra };
}

export function prefix(value: string): Obj {
  return { path: { type: "PathPrefix", value } };
}

export function exact(value: string): Obj {
  return { path: { type: "Exact", value } };
}
