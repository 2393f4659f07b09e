// The immutable set of resources every provider produces and the translator reads.
import type { ConfigMap, EndpointSlice, Namespace, Secret, Service } from "./core.ts";
import type {
  BackendTLSPolicy,
  Gateway,
  GatewayClass,
  GRPCRoute,
  HTTPRoute,
  ListenerSet,
  ReferenceGrant,
  TCPRoute,
  TLSRoute,
  UDPRoute,
} from "./generated/types.ts";
import type { GatehouseProxy } from "./gatehouseproxy.ts";
import type { KubeObject } from "./meta.ts";

/** Where an object came from (a file and document index, or the API server). */
export interface Source {
  file?: string;
  index?: number;
  description?: string;
}

/** Objects of one kind keyed by `namespace/name` (cluster-scoped kinds: `name`). */
export type ObjectMap<T> = ReadonlyMap<string, T>;

export interface Snapshot {
  readonly gatewayClasses: ObjectMap<GatewayClass>;
  readonly gateways: ObjectMap<Gateway>;
  readonly listenerSets: ObjectMap<ListenerSet>;
  readonly httpRoutes: ObjectMap<HTTPRoute>;
  readonly grpcRoutes: ObjectMap<GRPCRoute>;
  readonly tlsRoutes: ObjectMap<TLSRoute>;
  readonly tcpRoutes: ObjectMap<TCPRoute>;
  readonly udpRoutes: ObjectMap<UDPRoute>;
  readonly referenceGrants: ObjectMap<ReferenceGrant>;
  readonly backendTLSPolicies: ObjectMap<BackendTLSPolicy>;
  readonly namespaces: ObjectMap<Namespace>;
  readonly services: ObjectMap<Service>;
  readonly endpointSlices: ObjectMap<EndpointSlice>;
  readonly secrets: ObjectMap<Secret>;
  readonly configMaps: ObjectMap<ConfigMap>;
  /** gatehouse.dev GatehouseProxy: Gateway parameters of `--infrastructure kubernetes`. */
  readonly gatehouseProxies: ObjectMap<GatehouseProxy>;
}

export type SnapshotField = keyof Snapshot;

/** apiVersion group → kind → snapshot field. Kinds not listed here are ignored by the translator. */
const KIND_FIELDS: Record<string, Record<string, SnapshotField>> = {
  "gateway.networking.k8s.io": {
    GatewayClass: "gatewayClasses",
    Gateway: "gateways",
    ListenerSet: "listenerSets",
    HTTPRoute: "httpRoutes",
    GRPCRoute: "grpcRoutes",
    TLSRoute: "tlsRoutes",
    TCPRoute: "tcpRoutes",
    UDPRoute: "udpRoutes",
    ReferenceGrant: "referenceGrants",
    BackendTLSPolicy: "backendTLSPolicies",
  },
  "": {
    Namespace: "namespaces",
    Service: "services",
    Secret: "secrets",
    ConfigMap: "configMaps",
  },
  "discovery.k8s.io": { EndpointSlice: "endpointSlices" },
  "gatehouse.dev": { GatehouseProxy: "gatehouseProxies" },
};

const CLUSTER_SCOPED = new Set(["GatewayClass", "Namespace"]);

export function apiGroup(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

/** The snapshot field that holds objects of this apiVersion/kind, or undefined if Gatehouse ignores the kind. */
export function snapshotField(apiVersion: string, kind: string): SnapshotField | undefined {
  return KIND_FIELDS[apiGroup(apiVersion)]?.[kind];
}

export function isClusterScoped(kind: string): boolean {
  return CLUSTER_SCOPED.has(kind);
}

/** The key of an object in its ObjectMap. */
export function objectKey(obj: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return isClusterScoped(obj.kind)
    ? obj.metadata.name
    : `${obj.metadata.namespace ?? "default"}/${obj.metadata.name}`;
}

export function nsName(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function emptySnapshot(): Snapshot {
  return {
    gatewayClasses: new Map(),
    gateways: new Map(),
    listenerSets: new Map(),
    httpRoutes: new Map(),
    grpcRoutes: new Map(),
    tlsRoutes: new Map(),
    tcpRoutes: new Map(),
    udpRoutes: new Map(),
    referenceGrants: new Map(),
    backendTLSPolicies: new Map(),
    namespaces: new Map(),
    services: new Map(),
    endpointSlices: new Map(),
    secrets: new Map(),
    configMaps: new Map(),
    gatehouseProxies: new Map(),
  };
}

export interface DuplicateObject {
  key: string;
  kind: string;
  first: Source;
  second: Source;
}

/**
 * Builds a snapshot from already-validated objects. Objects without a namespace get `default`;
 * every namespace that an object lives in exists implicitly; every Namespace carries the label
 * `kubernetes.io/metadata.name` as the API server would add it; objects without a generation get
 * generation 1. Duplicates keep the first object and are reported.
 */
export function buildSnapshot(objects: ReadonlyArray<{ object: KubeObject; source: Source }>): {
  snapshot: Snapshot;
  duplicates: DuplicateObject[];
} {
  const maps = new Map<SnapshotField, Map<string, KubeObject>>();
  const sources = new Map<string, Source>();
  const duplicates: DuplicateObject[] = [];
  const referencedNamespaces = new Set<string>();
  for (const { object, source } of objects) {
    const field = snapshotField(object.apiVersion, object.kind);
    if (field === undefined) continue;
    // The API server sets generation 1 on create; files carry none.
    let obj =
      object.metadata.generation === undefined
        ? { ...object, metadata: { ...object.metadata, generation: 1 } }
        : object;
    if (!isClusterScoped(object.kind)) {
      const namespace = object.metadata.namespace ?? "default";
      referencedNamespaces.add(namespace);
      if (obj.metadata.namespace === undefined) obj = { ...obj, metadata: { ...obj.metadata, namespace } };
    }
    const key = objectKey(obj);
    const sourceKey = `${field}|${key}`;
    const seen = sources.get(sourceKey);
    if (seen !== undefined) {
      duplicates.push({ key, kind: object.kind, first: seen, second: source });
      continue;
    }
    sources.set(sourceKey, source);
    let map = maps.get(field);
    if (map === undefined) maps.set(field, (map = new Map<string, KubeObject>()));
    map.set(key, obj);
  }
  let namespaces = maps.get("namespaces");
  if (namespaces === undefined) maps.set("namespaces", (namespaces = new Map<string, KubeObject>()));
  for (const ns of referencedNamespaces) {
    if (!namespaces.has(ns))
      namespaces.set(ns, { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  }
  for (const [name, ns] of namespaces) {
    const labels = { ...ns.metadata.labels, "kubernetes.io/metadata.name": name };
    namespaces.set(name, { ...ns, metadata: { ...ns.metadata, labels } });
  }
  const snapshot = emptySnapshot() as unknown as Record<SnapshotField, Map<string, KubeObject>>;
  for (const [field, map] of maps) {
    snapshot[field] = new Map([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  return { snapshot: snapshot as unknown as Snapshot, duplicates };
}
