// Route attachment to Gateways, shared by every route kind: parentRef matching (name, namespace,
// sectionName, port), allowedRoutes (kinds and namespaces), and hostname intersection.
import type { Snapshot } from "../../resources/snapshot.ts";
import * as cond from "../conditions.ts";
import type { ConditionSpec } from "../conditions.ts";
import { GATEWAY_GROUP, type GatewayNode, type ListenerNode } from "../gateway.ts";
import type { ListenerSetNode } from "../listenersets.ts";
import { intersectHostnames, isHostname } from "../hostname.ts";
import { selectorMatches } from "../labels.ts";

export type RouteKind = "HTTPRoute" | "GRPCRoute" | "TLSRoute" | "TCPRoute" | "UDPRoute";

export interface ParentRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  sectionName?: string;
  port?: number;
}

export interface RouteObject {
  metadata: { name: string; namespace?: string; generation?: number; creationTimestamp?: string };
  spec: { parentRefs?: ParentRef[]; hostnames?: string[] };
}

export interface ListenerAttachment {
  listener: ListenerNode;
  /** Hostnames the route serves on this listener (`*` = any); empty for TCP/UDP. */
  hostnames: string[];
}

/** The outcome of one parentRef that points at one of our Gateways. */
export interface ParentAttachment {
  parentRef: ParentRef;
  gateway: GatewayNode;
  /** Listeners the route attached to (empty when not accepted). */
  listeners: ListenerAttachment[];
  /** Accepted first; the route translation adds ResolvedRefs and may downgrade Accepted. */
  conditions: ConditionSpec[];
  accepted: boolean;
}

/** Kinds of route that carry hostnames. */
const HOSTNAME_KINDS: ReadonlySet<RouteKind> = new Set(["HTTPRoute", "GRPCRoute", "TLSRoute"]);

/**
 * Attaches a route to the parents it names. parentRefs that do not point at a Gateway of ours are
 * left out (another controller may own them), so their status entries are never written by us.
 */
export function attachRoute(
  snapshot: Snapshot,
  kind: RouteKind,
  route: RouteObject,
  gateways: ReadonlyMap<string, GatewayNode>,
  listenerSets: ReadonlyMap<string, ListenerSetNode> = new Map(),
): ParentAttachment[] {
  const routeNs = route.metadata.namespace ?? "default";
  const out: ParentAttachment[] = [];
  for (const parentRef of route.spec.parentRefs ?? []) {
    const group = parentRef.group ?? GATEWAY_GROUP;
    const pkind = parentRef.kind ?? "Gateway";
    if (group !== GATEWAY_GROUP) continue;
    const key = `${parentRef.namespace ?? routeNs}/${parentRef.name}`;
    if (pkind === "Gateway") {
      const gateway = gateways.get(key);
      if (gateway === undefined) continue;
      // A Gateway parentRef covers the Gateway's own listeners, not its ListenerSets'.
      const parent = { gateway, listeners: gateway.listeners, label: `Gateway ${gateway.key}` };
      out.push(attachToParent(snapshot, kind, route, routeNs, parentRef, parent));
    } else if (pkind === "ListenerSet") {
      const set = listenerSets.get(key);
      if (set === undefined) continue;
      const parent = { gateway: set.gateway, listeners: set.listeners, label: `ListenerSet ${set.key}` };
      if (!set.accepted) {
        out.push({
          parentRef,
          gateway: set.gateway,
          listeners: [],
          conditions: [
            cond.routeNoMatchingParent(`${parent.label} is not accepted by Gateway ${set.gateway.key}`),
          ],
          accepted: false,
        });
      } else out.push(attachToParent(snapshot, kind, route, routeNs, parentRef, parent));
    }
  }
  return out;
}

/** A parent a route can name: a Gateway (its own listeners) or a ListenerSet (its listeners). */
interface Parent {
  gateway: GatewayNode;
  listeners: readonly ListenerNode[];
  /** `Gateway ns/name` or `ListenerSet ns/name`, for messages. */
  label: string;
}

function attachToParent(
  snapshot: Snapshot,
  kind: RouteKind,
  route: RouteObject,
  routeNs: string,
  parentRef: ParentRef,
  parent: Parent,
): ParentAttachment {
  const { gateway } = parent;
  const result: ParentAttachment = { parentRef, gateway, listeners: [], conditions: [], accepted: false };
  const selected = parent.listeners.filter(
    (l) =>
      (parentRef.sectionName === undefined || l.listener.name === parentRef.sectionName) &&
      (parentRef.port === undefined || l.listener.port === parentRef.port),
  );
  if (selected.length === 0) {
    const what = [
      parentRef.sectionName !== undefined ? `sectionName ${parentRef.sectionName}` : "",
      parentRef.port !== undefined ? `port ${parentRef.port}` : "",
    ]
      .filter((s) => s !== "")
      .join(" and ");
    result.conditions.push(cond.routeNoMatchingParent(`${parent.label} has no listener with ${what}`));
    return result;
  }
  const attachable = selected.filter((l) => l.attachable);
  if (attachable.length === 0) {
    result.conditions.push(
      cond.routeNotAllowedByListeners(
        `No accepted listener among ${selected.map((l) => l.listener.name).join(", ")} of ${parent.label}`,
      ),
    );
    return result;
  }
  const allowed = attachable.filter((l) => kindAllowed(l, kind) && namespaceAllowed(snapshot, l, routeNs));
  if (allowed.length === 0) {
    result.conditions.push(
      cond.routeNotAllowedByListeners(
        `Listeners ${attachable.map((l) => l.listener.name).join(", ")} of ${parent.label} do not allow ${kind} from namespace ${routeNs}`,
      ),
    );
    return result;
  }
  const routeHostnames = route.spec.hostnames ?? [];
  // A value that is not a hostname matches no listener (and an empty list would mean "any").
  const usable = routeHostnames.filter(isHostname);
  for (const l of allowed) {
    if (!HOSTNAME_KINDS.has(kind)) {
      result.listeners.push({ listener: l, hostnames: [] });
      continue;
    }
    if (usable.length === 0 && routeHostnames.length > 0) continue;
    const hostnames = intersectHostnames(l.listener.hostname, usable);
    if (hostnames.length > 0) result.listeners.push({ listener: l, hostnames });
  }
  if (result.listeners.length === 0) {
    result.conditions.push(
      cond.routeNoMatchingListenerHostname(
        `Hostnames ${routeHostnames.map((h) => JSON.stringify(h)).join(", ")} match no listener hostname of ${parent.label} (${allowed
          .map((l) => `${l.listener.name}: ${l.listener.hostname ?? "any"}`)
          .join(", ")})`,
      ),
    );
    return result;
  }
  result.accepted = true;
  result.conditions.push(cond.routeAccepted());
  return result;
}

function kindAllowed(l: ListenerNode, kind: RouteKind): boolean {
  return l.supportedKinds.some((k) => k.group === GATEWAY_GROUP && k.kind === kind);
}

function namespaceAllowed(snapshot: Snapshot, l: ListenerNode, routeNs: string): boolean {
  switch (l.allowedNamespaces.from) {
    case "All":
      return true;
    case "Same":
      // The namespace of the Gateway, or of the ListenerSet, that declares the listener.
      return routeNs === l.owner.namespace;
    case "Selector": {
      const ns = snapshot.namespaces.get(routeNs);
      return (
        l.allowedNamespaces.selector !== undefined &&
        selectorMatches(l.allowedNamespaces.selector, ns?.metadata.labels)
      );
    }
  }
}

/** Marks a route's accepted attachments as counted on their listeners (status.listeners[].attachedRoutes). */
export function countAttachedRoutes(attachments: readonly ParentAttachment[]): void {
  const counted = new Set<ListenerNode>();
  for (const a of attachments) {
    if (!a.accepted) continue;
    for (const { listener } of a.listeners) {
      if (counted.has(listener)) continue;
      counted.add(listener);
      listener.attachedRoutes++;
    }
  }
}
