// The translator: a pure function from a resource snapshot to statuses and the data-plane IR.
// Steps, in order: GatewayClasses → Gateways and listeners → routes of every kind → IR + statuses.
import type {
  IR,
  IRBackend,
  IRGateway,
  IRL4Route,
  IRListener,
  IRListenerTLS,
  IRTLSRoute,
  IRVirtualHost,
} from "../ir/types.ts";
import type { GRPCRoute, HTTPRoute } from "../resources/generated/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import type { StatusEntry } from "../status/types.ts";
import { presentClientCertificate } from "./backendclientcert.ts";
import { backendTLSIndex, policyAncestors, recordServiceUses, type ServiceUses } from "./backendtls.ts";
import { stampConditions, type ConditionSpec } from "./conditions.ts";
import { supportedFeatures } from "./features.ts";
import { resolveGatewayClasses } from "./gatewayclass.ts";
import { GATEWAY_GROUP, resolveGateways, type GatewayNode, type ListenerNode } from "./gateway.ts";
import { compareHostnameSpecificity } from "./hostname.ts";
import { resolveListenerSets, type ListenerSetNode } from "./listenersets.ts";
import type { TranslateOptions } from "./options.ts";
import { compareRouteIdentity, compareRouteMatches, routeIdentityOf } from "./precedence.ts";
import { settleHostnameConflicts } from "./routes/conflicts.ts";
import { translateGRPCRoute } from "./routes/grpc.ts";
import { translateHTTPRoute } from "./routes/http.ts";
import { translateL4Route, type L4Route } from "./routes/l4.ts";
import { attachRoute, countAttachedRoutes, type ParentAttachment, type RouteKind } from "./routes/parents.ts";
import { emitRoute, type RuleEntry } from "./routes/rules.ts";

export { DEFAULT_CONTROLLER_NAME, type TranslateOptions } from "./options.ts";

export interface TranslateResult {
  /** One entry per object that gets status, sorted by kind, namespace, name. */
  statuses: StatusEntry[];
  ir: IR;
}

const API_VERSION = `${GATEWAY_GROUP}/v1`;

type HTTPLikeRoute =
  | { kind: "HTTPRoute"; route: HTTPRoute; attachments: ParentAttachment[] }
  | { kind: "GRPCRoute"; route: GRPCRoute; attachments: ParentAttachment[] };

interface RouteStatusInput {
  kind: RouteKind;
  route: { metadata: { name: string; namespace?: string; generation?: number } };
  attachments: ParentAttachment[];
  routeConditions: ConditionSpec[];
  rejected?: ConditionSpec | undefined;
}

export function translate(snapshot: Snapshot, options: TranslateOptions): TranslateResult {
  const infrastructure = options.infrastructure ?? "host";
  const classes = resolveGatewayClasses(snapshot, options.controllerName, infrastructure);
  const gatewayNodes = resolveGateways(snapshot, classes, infrastructure);
  const gateways = new Map(gatewayNodes.map((g) => [g.key, g]));
  const listenerSetNodes = resolveListenerSets(snapshot, gateways);
  const listenerSets = new Map(listenerSetNodes.map((s) => [s.key, s]));
  const backends = new Map<string, IRBackend>();
  const routeStatuses: RouteStatusInput[] = [];

  // HTTPRoutes and GRPCRoutes → rule entries per listener and hostname.
  const httpRules = new Map<string, Map<string, RuleEntry[]>>();
  const sink = (listenerId: string, hostname: string, entry: RuleEntry): void => {
    let hosts = httpRules.get(listenerId);
    if (hosts === undefined) httpRules.set(listenerId, (hosts = new Map<string, RuleEntry[]>()));
    const list = hosts.get(hostname);
    if (list === undefined) hosts.set(hostname, [entry]);
    else list.push(entry);
  };
  // Both kinds attach first: a route of one kind may lose a listener to a route of the other kind
  // with an intersecting hostname (routes/conflicts.ts), which must be settled before emitting.
  const attached: HTTPLikeRoute[] = [];
  for (const route of snapshot.httpRoutes.values()) {
    const attachments = attachRoute(snapshot, "HTTPRoute", route, gateways, listenerSets);
    if (attachments.length > 0) attached.push({ kind: "HTTPRoute", route, attachments });
  }
  for (const route of snapshot.grpcRoutes.values()) {
    const attachments = attachRoute(snapshot, "GRPCRoute", route, gateways, listenerSets);
    if (attachments.length > 0) attached.push({ kind: "GRPCRoute", route, attachments });
  }
  settleHostnameConflicts(attached);
  const serviceUses: ServiceUses = new Map();
  for (const r of attached) {
    recordServiceUses(
      snapshot,
      serviceUses,
      r.route,
      r.attachments
        .filter((a) => a.accepted)
        .map((a) => ({
          namespace: a.gateway.gateway.metadata.namespace ?? "default",
          name: a.gateway.gateway.metadata.name,
        })),
    );
    // Backends are registered only once the route is actually served by some listener.
    const routeBackends = new Map<string, IRBackend>();
    const result =
      r.kind === "HTTPRoute"
        ? translateHTTPRoute(snapshot, r.route, routeBackends, options.validators)
        : translateGRPCRoute(snapshot, r.route, routeBackends, options.validators);
    // A route rejected because none of its rules can be implemented is still emitted: every rule of
    // it answers with an error, so that its requests are never served by another route without the
    // filters it asked for (a filter that cannot be applied "MUST NOT be skipped").
    const served = emitRoute(r.kind, r.route, result, r.attachments, sink) > 0;
    if (result.rejected === undefined) {
      countAttachedRoutes(r.attachments);
      if (served) addAll(backends, routeBackends);
    }
    routeStatuses.push({
      kind: r.kind,
      route: r.route,
      attachments: r.attachments,
      routeConditions: result.conditions,
      rejected: result.rejected,
    });
  }

  // TLS, TCP and UDP routes.
  const l4Routes = new Map<string, Array<{ route: L4Route; ir: IRL4Route | IRTLSRoute }>>();
  const l4Kinds: Array<["TLSRoute" | "TCPRoute" | "UDPRoute", Iterable<L4Route>]> = [
    ["TLSRoute", snapshot.tlsRoutes.values()],
    ["TCPRoute", snapshot.tcpRoutes.values()],
    ["UDPRoute", snapshot.udpRoutes.values()],
  ];
  for (const [kind, routes] of l4Kinds) {
    for (const route of routes) {
      const attachments = attachRoute(snapshot, kind, route, gateways, listenerSets);
      if (attachments.length === 0) continue;
      const routeBackends = new Map<string, IRBackend>();
      const result = translateL4Route(snapshot, kind, route, routeBackends);
      countAttachedRoutes(attachments);
      const ref = { kind, namespace: route.metadata.namespace ?? "default", name: route.metadata.name };
      const seen = new Set<string>();
      for (const a of attachments) {
        if (!a.accepted) continue;
        for (const { listener, hostnames } of a.listeners) {
          if (!listener.programmed || seen.has(listener.id)) continue;
          seen.add(listener.id);
          const ir =
            kind === "TLSRoute"
              ? {
                  route: ref,
                  hostnames: [...hostnames].sort(compareHostnameSpecificity),
                  backends: result.backends,
                }
              : { route: ref, backends: result.backends };
          const list = l4Routes.get(listener.id);
          if (list === undefined) l4Routes.set(listener.id, [{ route, ir }]);
          else list.push({ route, ir });
        }
      }
      if (seen.size > 0) addAll(backends, routeBackends);
      routeStatuses.push({ kind, route, attachments, routeConditions: result.conditions });
    }
  }

  const ir: IR = {
    gateways: gatewayNodes
      .filter((g) => g.programmed)
      .map((g) => {
        const out = gatewayIR(g, httpRules, l4Routes);
        const certificate = g.backendClientCertificate;
        // Registers the backend variants that present the certificate, before `backends` is listed.
        return certificate === undefined
          ? out
          : { ...out, listeners: presentClientCertificate(out.listeners, certificate, backends) };
      }),
    backends: [...backends.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  };

  const statuses: StatusEntry[] = [];
  for (const node of classes.values()) {
    statuses.push({
      apiVersion: API_VERSION,
      kind: "GatewayClass",
      metadata: { name: node.gatewayClass.metadata.name },
      status: {
        conditions: stampConditions(node.conditions, node.gatewayClass.metadata.generation, options.now),
        supportedFeatures: supportedFeatures(infrastructure).map((name) => ({ name })),
      },
    });
  }
  for (const g of gatewayNodes) statuses.push(gatewayStatus(g, options.now));
  for (const set of listenerSetNodes) statuses.push(listenerSetStatus(set, options.now));
  for (const r of routeStatuses) statuses.push(routeStatus(r, options));
  for (const node of backendTLSIndex(snapshot).nodes) {
    const generation = node.policy.metadata.generation;
    statuses.push({
      apiVersion: API_VERSION,
      kind: "BackendTLSPolicy",
      metadata: { name: node.policy.metadata.name, namespace: node.policy.metadata.namespace ?? "default" },
      status: {
        ancestors: policyAncestors(node, serviceUses).map((g) => ({
          ancestorRef: { group: GATEWAY_GROUP, kind: "Gateway", namespace: g.namespace, name: g.name },
          controllerName: options.controllerName,
          conditions: stampConditions(node.conditions, generation, options.now),
        })),
      },
    });
  }
  statuses.sort(compareStatusEntries);
  return { statuses, ir };
}

function addAll(target: Map<string, IRBackend>, source: ReadonlyMap<string, IRBackend>): void {
  for (const [id, backend] of source) target.set(id, backend);
}

function gatewayIR(
  g: GatewayNode,
  httpRules: ReadonlyMap<string, ReadonlyMap<string, RuleEntry[]>>,
  l4Routes: ReadonlyMap<string, Array<{ route: L4Route; ir: IRL4Route | IRTLSRoute }>>,
): IRGateway {
  return {
    id: g.key,
    namespace: g.gateway.metadata.namespace ?? "default",
    name: g.gateway.metadata.name,
    gatewayClassName: g.gateway.spec.gatewayClassName,
    addresses: g.addresses,
    // The Gateway's listeners, then its ListenerSets' in precedence order.
    listeners: [...g.listeners, ...g.listenerSets.flatMap((s) => s.listeners)]
      .filter((l) => l.programmed)
      .map((l) => listenerIR(l, httpRules, l4Routes)),
  };
}

function listenerIR(
  l: ListenerNode,
  httpRules: ReadonlyMap<string, ReadonlyMap<string, RuleEntry[]>>,
  l4Routes: ReadonlyMap<string, Array<{ route: L4Route; ir: IRL4Route | IRTLSRoute }>>,
): IRListener {
  const hostname =
    l.listener.hostname !== undefined && l.listener.hostname !== "" ? { hostname: l.listener.hostname } : {};
  // Field order as in IRListener (the IR is serialised for goldens and /config).
  const head = { id: l.id, name: l.listener.name, port: l.listener.port };
  const protocol = l.listener.protocol;
  const tls = (): IRListenerTLS => {
    // gateway.ts programs an HTTPS or TLS listener only with its TLS settings resolved.
    if (l.tls === undefined) throw new Error(`internal: programmed ${protocol} listener ${l.id} has no TLS`);
    return l.tls;
  };
  if (protocol === "HTTP" || protocol === "HTTPS") {
    const hosts = httpRules.get(l.id) ?? new Map<string, RuleEntry[]>();
    const virtualHosts = [...hosts.keys()]
      .sort(compareHostnameSpecificity)
      .map((hostname): IRVirtualHost => ({
        hostname,
        rules: [...(hosts.get(hostname) ?? [])]
          .sort((a, b) => compareRouteMatches(a.candidate, b.candidate))
          .map((e) => e.rule),
      }));
    return protocol === "HTTP"
      ? { ...head, protocol, ...hostname, virtualHosts }
      : { ...head, protocol, ...hostname, tls: tls(), virtualHosts };
  }
  // L4 routes in precedence order: oldest first, then namespace/name.
  const routes = [...(l4Routes.get(l.id) ?? [])].sort((a, b) =>
    compareRouteIdentity(routeIdentityOf(a.route), routeIdentityOf(b.route)),
  );
  if (protocol === "TLS")
    return { ...head, protocol, ...hostname, tls: tls(), tlsRoutes: routes.map((r) => r.ir as IRTLSRoute) };
  if (protocol === "TCP") return { ...head, protocol, ...hostname, tcpRoutes: routes.map((r) => r.ir) };
  return { ...head, protocol: "UDP", ...hostname, udpRoutes: routes.map((r) => r.ir) };
}

function gatewayStatus(g: GatewayNode, now: string): StatusEntry {
  const generation = g.gateway.metadata.generation;
  return {
    apiVersion: API_VERSION,
    kind: "Gateway",
    metadata: { name: g.gateway.metadata.name, namespace: g.gateway.metadata.namespace ?? "default" },
    status: {
      // Addresses are reported only once they are actually bound (the Gateway is in the IR).
      ...(g.programmed && g.addresses.length > 0
        ? { addresses: g.addresses.map((value) => ({ type: "IPAddress", value })) }
        : {}),
      conditions: stampConditions(g.conditions, generation, now),
      listeners: listenerStatuses(g.listeners, generation, now),
      // Reported where ListenerSets may attach (spec.allowedListeners) or do.
      ...(g.gateway.spec.allowedListeners !== undefined || g.listenerSets.length > 0
        ? { attachedListenerSets: g.listenerSets.length }
        : {}),
    },
  };
}

function listenerStatuses(listeners: readonly ListenerNode[], generation: number | undefined, now: string) {
  return listeners.map((l) => ({
    name: l.listener.name,
    supportedKinds: l.supportedKinds.map((k) => ({ group: k.group, kind: k.kind })),
    attachedRoutes: l.attachedRoutes,
    conditions: stampConditions(l.conditions, generation, now),
  }));
}

function listenerSetStatus(set: ListenerSetNode, now: string): StatusEntry {
  const generation = set.listenerSet.metadata.generation;
  return {
    apiVersion: API_VERSION,
    kind: "ListenerSet",
    metadata: {
      name: set.listenerSet.metadata.name,
      namespace: set.listenerSet.metadata.namespace ?? "default",
    },
    status: {
      conditions: stampConditions(set.conditions, generation, now),
      listeners: listenerStatuses(set.listeners, generation, now),
    },
  };
}

function routeStatus(r: RouteStatusInput, options: TranslateOptions): StatusEntry {
  const generation = r.route.metadata.generation;
  return {
    apiVersion: API_VERSION,
    kind: r.kind,
    metadata: { name: r.route.metadata.name, namespace: r.route.metadata.namespace ?? "default" },
    status: {
      parents: r.attachments.map((a) => {
        const accepted = a.accepted && r.rejected !== undefined ? [r.rejected] : a.conditions;
        return {
          parentRef: a.parentRef,
          controllerName: options.controllerName,
          conditions: stampConditions([...accepted, ...r.routeConditions], generation, options.now),
        };
      }),
    },
  };
}

const KIND_ORDER = [
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

function compareStatusEntries(a: StatusEntry, b: StatusEntry): number {
  const k = KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind);
  if (k !== 0) return k;
  const ka = `${a.metadata.namespace ?? ""}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ""}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
