// The Kubernetes resources Gatehouse reads and writes, and the permissions that takes. The chart's
// RBAC rules (and deploy/, rendered from it) must grant exactly PERMISSIONS
// (src/provider/kubernetes/deploy.test.ts), and apiserver.test.ts proves, running as that
// ServiceAccount against a real API server, that every request is allowed and every verb is used.

/** A resource the Kubernetes provider lists and watches (one informer each). */
export interface WatchedResource {
  kind: string;
  /** API group; "" for the core group. */
  group: string;
  /** Resource name in URLs and RBAC rules. */
  plural: string;
  namespaced: boolean;
  /**
   * Versions in order of preference: the first one the API server serves is watched. Older
   * versions keep Gatehouse working on clusters with older CRDs (the translator reads the fields
   * all these versions share).
   */
  versions: readonly string[];
  /**
   * Watched metadata-only; the provider reads in full only the objects that are referenced (see
   * references.ts). Secrets and ConfigMaps.
   */
  metadataOnly?: true;
}

export const GATEWAY_API_GROUP = "gateway.networking.k8s.io";

/** Every kind the translator reads (see Snapshot in src/resources/snapshot.ts). */
export const WATCHED_RESOURCES: readonly WatchedResource[] = [
  {
    kind: "GatewayClass",
    group: GATEWAY_API_GROUP,
    plural: "gatewayclasses",
    namespaced: false,
    versions: ["v1", "v1beta1"],
  },
  {
    kind: "Gateway",
    group: GATEWAY_API_GROUP,
    plural: "gateways",
    namespaced: true,
    versions: ["v1", "v1beta1"],
  },
  {
    kind: "ListenerSet",
    group: GATEWAY_API_GROUP,
    plural: "listenersets",
    namespaced: true,
    versions: ["v1"],
  },
  {
    kind: "HTTPRoute",
    group: GATEWAY_API_GROUP,
    plural: "httproutes",
    namespaced: true,
    versions: ["v1", "v1beta1"],
  },
  { kind: "GRPCRoute", group: GATEWAY_API_GROUP, plural: "grpcroutes", namespaced: true, versions: ["v1"] },
  {
    kind: "TLSRoute",
    group: GATEWAY_API_GROUP,
    plural: "tlsroutes",
    namespaced: true,
    versions: ["v1", "v1alpha3", "v1alpha2"],
  },
  {
    kind: "TCPRoute",
    group: GATEWAY_API_GROUP,
    plural: "tcproutes",
    namespaced: true,
    versions: ["v1", "v1alpha2"],
  },
  {
    kind: "UDPRoute",
    group: GATEWAY_API_GROUP,
    plural: "udproutes",
    namespaced: true,
    versions: ["v1", "v1alpha2"],
  },
  {
    kind: "ReferenceGrant",
    group: GATEWAY_API_GROUP,
    plural: "referencegrants",
    namespaced: true,
    versions: ["v1", "v1beta1"],
  },
  {
    kind: "BackendTLSPolicy",
    group: GATEWAY_API_GROUP,
    plural: "backendtlspolicies",
    namespaced: true,
    versions: ["v1", "v1alpha3"],
  },
  { kind: "Namespace", group: "", plural: "namespaces", namespaced: false, versions: ["v1"] },
  { kind: "Service", group: "", plural: "services", namespaced: true, versions: ["v1"] },
  {
    kind: "EndpointSlice",
    group: "discovery.k8s.io",
    plural: "endpointslices",
    namespaced: true,
    versions: ["v1"],
  },
  { kind: "Secret", group: "", plural: "secrets", namespaced: true, versions: ["v1"], metadataOnly: true },
  {
    kind: "ConfigMap",
    group: "",
    plural: "configmaps",
    namespaced: true,
    versions: ["v1"],
    metadataOnly: true,
  },
];

/**
 * gatehouse.dev GatehouseProxy (the parameters of `--infrastructure kubernetes`). Not in
 * WATCHED_RESOURCES: watched only in that mode (watchedResources), so a cluster without the CRD and
 * a controller without the RBAC rule for it work as before.
 */
export const GATEHOUSE_PROXY_RESOURCE: WatchedResource = {
  kind: "GatehouseProxy",
  group: "gatehouse.dev",
  plural: "gatehouseproxies",
  namespaced: true,
  versions: ["v1alpha1"],
};

/** The kinds the provider watches for an infrastructure mode (pass as KubernetesProviderOptions.resources). */
export function watchedResources(options: { gatehouseProxies?: boolean } = {}): readonly WatchedResource[] {
  return options.gatehouseProxies === true
    ? [...WATCHED_RESOURCES, GATEHOUSE_PROXY_RESOURCE]
    : WATCHED_RESOURCES;
}

/** Kinds whose status Gatehouse writes (through the `status` subresource). */
export const STATUS_KINDS: readonly string[] = [
  "GatewayClass",
  "Gateway",
  "ListenerSet",
  "HTTPRoute",
  "GRPCRoute",
  "TLSRoute",
  "TCPRoute",
  "UDPRoute",
  "BackendTLSPolicy",
];

/** Leader election (status writes) uses this resource in the lease namespace. */
export const LEASE_RESOURCE = { group: "coordination.k8s.io", version: "v1", plural: "leases" } as const;

export function watchedResource(kind: string): WatchedResource | undefined {
  return WATCHED_RESOURCES.find((r) => r.kind === kind);
}

/** `v1` for the core group, `group/version` otherwise. */
export function apiVersionOf(group: string, version: string): string {
  return group === "" ? version : `${group}/${version}`;
}

/** Splits an apiVersion into group ("" for core) and version. */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The URL path of a group version's discovery document (`/api/v1`, `/apis/group/version`). */
export function groupVersionPath(group: string, version: string): string {
  return group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
}

/**
 * The URL path of a collection (all namespaces when `namespace` is undefined), of one object
 * (`name`), or of one object's subresource.
 */
export function resourcePath(
  resource: { group: string; version: string; plural: string },
  where: { namespace?: string | undefined; name?: string | undefined; subresource?: string | undefined } = {},
): string {
  let path = groupVersionPath(resource.group, resource.version);
  if (where.namespace !== undefined) path += `/namespaces/${encodeURIComponent(where.namespace)}`;
  path += `/${resource.plural}`;
  if (where.name !== undefined) path += `/${encodeURIComponent(where.name)}`;
  if (where.subresource !== undefined) path += `/${where.subresource}`;
  return path;
}

/** The Event resource Gatehouse creates (and patches, for series counts). */
export const EVENT_RESOURCE = { group: "events.k8s.io", version: "v1", plural: "events" } as const;

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

/** One RBAC grant: verbs on a resource, cluster-wide or in the Lease namespace, maybe by name. */
export interface Permission {
  group: string;
  /** Plural, or `plural/subresource`. */
  resource: string;
  verbs: readonly Verb[];
  /** "cluster" (ClusterRole) or "lease" (the Role in the Lease namespace). */
  scope: "cluster" | "lease";
  /** Names the rule is limited to (resourceNames); absent: any. */
  names?: readonly string[];
}

/** Everything the controller does with the API server, as RBAC rules must grant it. */
export function permissions(leaseName: string): Permission[] {
  const out: Permission[] = WATCHED_RESOURCES.map((r) => ({
    group: r.group,
    resource: r.plural,
    // The status writer GETs an object again after a 409 Conflict; the provider GETs the Secrets
    // and ConfigMaps that are referenced (it watches them metadata-only).
    verbs:
      STATUS_KINDS.includes(r.kind) || r.metadataOnly === true ? ["get", "list", "watch"] : ["list", "watch"],
    scope: "cluster",
  }));
  for (const kind of STATUS_KINDS) {
    const r = watchedResource(kind);
    if (r !== undefined)
      out.push({ group: r.group, resource: `${r.plural}/status`, verbs: ["update"], scope: "cluster" });
  }
  out.push({ group: EVENT_RESOURCE.group, resource: "events", verbs: ["create", "patch"], scope: "cluster" });
  out.push({ group: LEASE_RESOURCE.group, resource: "leases", verbs: ["create"], scope: "lease" });
  out.push({
    group: LEASE_RESOURCE.group,
    resource: "leases",
    verbs: ["get", "update"],
    scope: "lease",
    names: [leaseName],
  });
  return out;
}

/**
 * What `--infrastructure kubernetes` adds to permissions(): watching GatehouseProxies, and the
 * objects of every Gateway's data plane (server-side apply is PATCH, and creating an object that way also needs create; the reconciler
 * lists them by label at the start and deletes those of Gateways no longer ours), and setting
 * blockOwnerDeletion on owner references to Gateways (gateways/finalizers, where the
 * OwnerReferencesPermissionEnforcement admission plugin is on).
 */
export function infrastructurePermissions(): Permission[] {
  const manage: readonly Verb[] = ["list", "create", "patch", "delete"];
  return [
    {
      group: GATEHOUSE_PROXY_RESOURCE.group,
      resource: GATEHOUSE_PROXY_RESOURCE.plural,
      verbs: ["list", "watch"],
      scope: "cluster",
    },
    { group: "", resource: "serviceaccounts", verbs: manage, scope: "cluster" },
    { group: "", resource: "secrets", verbs: manage, scope: "cluster" },
    { group: "", resource: "services", verbs: manage, scope: "cluster" },
    { group: "apps", resource: "deployments", verbs: manage, scope: "cluster" },
    { group: "policy", resource: "poddisruptionbudgets", verbs: manage, scope: "cluster" },
    { group: "autoscaling", resource: "horizontalpodautoscalers", verbs: manage, scope: "cluster" },
    { group: GATEWAY_API_GROUP, resource: "gateways/finalizers", verbs: ["update"], scope: "cluster" },
  ];
}
