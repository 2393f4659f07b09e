// A fleet of Gateways as the controller's informer cache holds them in `--infrastructure kubernetes`
// (plain Kubernetes objects, handed to buildSnapshot as the kubernetes provider does): Gateway i
// lives in namespace `team-<i>` with one HTTP listener and `routesPerGateway` HTTPRoutes, each with
// its own hostname, its own Service (selector, no static endpoints) and that Service's EndpointSlice
// (two ready endpoints). The first route of every Gateway also sends `/shared` to one Service in
// namespace `shared` (allowed by a ReferenceGrant), so a change of that Service's endpoints changes
// every Gateway's configuration, and a change of one Gateway's own Service changes only that one.
import type { KubeObject } from "../../src/resources/meta.ts";
import { DEFAULT_CONTROLLER_NAME } from "../../src/translate/options.ts";

export const SHARED_NAMESPACE = "shared";
export const SHARED_SERVICE = "common";

export interface Fleet {
  /** Every object, by `kind/namespace/name` (the informer cache). */
  objects: Map<string, KubeObject>;
  /** `namespace/name` of each Gateway, in order. */
  gatewayIds: string[];
  routes: number;
}

const key = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
const gwNamespace = (i: number): string => `team-${String(i).padStart(3, "0")}`;

/** The EndpointSlice of Service `service` with `addresses` (all ready, port 8080). */
export function endpointSlice(namespace: string, service: string, addresses: readonly string[]): KubeObject {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${service}-x1`,
      namespace,
      labels: { "kubernetes.io/service-name": service },
    },
    addressType: "IPv4",
    ports: [{ name: "", port: 8080, protocol: "TCP" }],
    endpoints: addresses.map((address) => ({ addresses: [address], conditions: { ready: true } })),
  };
}

function service(namespace: string, name: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace },
    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080, protocol: "TCP" }] },
  };
}

export function buildFleet(gateways: number, routesPerGateway: number): Fleet {
  if (gateways > 250 || routesPerGateway > 250) throw new Error("fleet: at most 250 × 250 (addresses)");
  const objects = new Map<string, KubeObject>();
  const add = (o: KubeObject): void => void objects.set(key(o), o);
  const gatewayIds: string[] = [];
  add({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "GatewayClass",
    metadata: { name: "gatehouse" },
    spec: { controllerName: DEFAULT_CONTROLLER_NAME },
  });
  add(service(SHARED_NAMESPACE, SHARED_SERVICE));
  add(endpointSlice(SHARED_NAMESPACE, SHARED_SERVICE, sharedAddresses(0)));
  add({
    apiVersion: "gateway.networking.k8s.io/v1beta1",
    kind: "ReferenceGrant",
    metadata: { name: "from-teams", namespace: SHARED_NAMESPACE },
    spec: {
      from: Array.from({ length: gateways }, (_, i) => ({
        group: "gateway.networking.k8s.io",
        kind: "HTTPRoute",
        namespace: gwNamespace(i),
      })),
      to: [{ group: "", kind: "Service", name: SHARED_SERVICE }],
    },
  });
  for (let i = 0; i < gateways; i++) {
    const namespace = gwNamespace(i);
    gatewayIds.push(`${namespace}/gw`);
    add({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "gw", namespace },
      spec: { gatewayClassName: "gatehouse", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
    });
    for (let j = 0; j < routesPerGateway; j++) {
      const svc = `svc-${String(j).padStart(3, "0")}`;
      add(service(namespace, svc));
      add(endpointSlice(namespace, svc, ownAddresses(i, j, 0)));
      add({
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        metadata: { name: `route-${String(j).padStart(3, "0")}`, namespace },
        spec: {
          parentRefs: [{ name: "gw" }],
          hostnames: [`app-${j}.${namespace}.example.com`],
          rules: [
            {
              matches: [{ path: { type: "PathPrefix", value: "/" } }],
              backendRefs: [{ name: svc, port: 80 }],
            },
            ...(j === 0
              ? [
                  {
                    matches: [{ path: { type: "PathPrefix", value: "/shared" } }],
                    backendRefs: [{ name: SHARED_SERVICE, namespace: SHARED_NAMESPACE, port: 80 }],
                  },
                ]
              : []),
          ],
        },
      });
    }
  }
  return { objects, gatewayIds, routes: gateways * routesPerGateway };
}

/** The shared Service's endpoints at version `n` (3 of them; every version differs from the last). */
function sharedAddresses(n: number): string[] {
  return [0, 1, 2].map((k) => `10.255.${Math.floor(n / 200) % 250}.${(n % 200) + k + 1}`);
}

/** Route j of Gateway i's Service endpoints at version `n` (2 of them). */
function ownAddresses(i: number, j: number, n: number): string[] {
  return [1, 2].map((k) => `10.${i}.${j}.${((n * 2 + k) % 250) + 1}`);
}

/** A new version of the shared Service's EndpointSlice: every Gateway's configuration changes. */
export function changeShared(fleet: Fleet, version: number): void {
  const slice = endpointSlice(SHARED_NAMESPACE, SHARED_SERVICE, sharedAddresses(version));
  fleet.objects.set(key(slice), slice);
}

/** A new version of the EndpointSlice of Gateway `gateway`'s first Service: only that Gateway changes. */
export function changeOne(fleet: Fleet, gateway: number, version: number): void {
  const slice = endpointSlice(gwNamespace(gateway), "svc-000", ownAddresses(gateway, 0, version));
  fleet.objects.set(key(slice), slice);
}
