// ListenerSets: listeners added to a Gateway by other objects (feature ListenerSet). Semantics
// (apis/v1/listenerset_types.go, v1.6.1):
// - "The parent Gateway must explicitly allow ListenerSet attachment through its AllowedListeners
//   configuration. By default, Gateways do not allow ListenerSet attachment": spec.allowedListeners
//   .namespaces.from None (default), Same, All or Selector; otherwise Accepted/Programmed False,
//   NotAllowed.
// - "Implementations MUST treat the parent Gateway as having the merged list of all listeners from
//   itself and attached ListenerSets using the following precedence: 1. parent Gateway 2. ListenerSet
//   ordered by creation time (oldest first) 3. ListenerSet ordered alphabetically by
//   {namespace}/{name}": a ListenerSet listener that conflicts with one of higher precedence is
//   Conflicted (and not Accepted, not Programmed, with the conflict as reason); the winner is not.
// - A ListenerSet none of whose listeners is valid (accepted with its references resolved) is
//   Accepted/Programmed False, ListenersNotValid.
// - Routes attach to a ListenerSet by naming it as parentRef (optionally with sectionName); a
//   Gateway parentRef covers the Gateway's own listeners only.
// - Certificate references and `Same` allowedRoutes are relative to the ListenerSet's namespace, and
//   ReferenceGrants name the ListenerSet kind ("not inherited" from the Gateway).
import type { ListenerSet } from "../resources/generated/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import * as cond from "./conditions.ts";
import type { ConditionSpec, ConflictReason } from "./conditions.ts";
import {
  finishListener,
  GATEWAY_GROUP,
  markConflicts,
  resolveListener,
  type GatewayNode,
  type ListenerNode,
} from "./gateway.ts";
import { selectorMatches } from "./labels.ts";
import { compareRouteIdentity, routeIdentityOf } from "./precedence.ts";

export interface ListenerSetNode {
  listenerSet: ListenerSet;
  /** `namespace/name` */
  key: string;
  /** The parent Gateway (one of ours). */
  gateway: GatewayNode;
  /** Attached to the Gateway (allowed, parent accepted, at least one valid listener). */
  accepted: boolean;
  conditions: ConditionSpec[];
  /** Its listeners (empty when it is not allowed or its parent is not accepted). */
  listeners: ListenerNode[];
}

/**
 * Resolves the ListenerSets whose parent is one of `gateways`, in precedence order, and adds the
 * accepted ones' listeners to their Gateway (`gateway.listenerSets`). ListenerSets of other
 * controllers' Gateways are not returned (they get no status from us).
 */
export function resolveListenerSets(
  snapshot: Snapshot,
  gateways: ReadonlyMap<string, GatewayNode>,
): ListenerSetNode[] {
  const sets = [...snapshot.listenerSets.values()].sort((a, b) =>
    compareRouteIdentity(routeIdentityOf(a), routeIdentityOf(b)),
  );
  const nodes: ListenerSetNode[] = [];
  for (const ls of sets) {
    const ref = ls.spec.parentRef;
    const namespace = ls.metadata.namespace ?? "default";
    if ((ref.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP || (ref.kind ?? "Gateway") !== "Gateway") continue;
    const gateway = gateways.get(`${ref.namespace ?? namespace}/${ref.name}`);
    if (gateway === undefined) continue;
    nodes.push(resolveListenerSet(snapshot, ls, gateway));
  }
  return nodes;
}

function resolveListenerSet(snapshot: Snapshot, ls: ListenerSet, gateway: GatewayNode): ListenerSetNode {
  const namespace = ls.metadata.namespace ?? "default";
  const node: ListenerSetNode = {
    listenerSet: ls,
    key: `${namespace}/${ls.metadata.name}`,
    gateway,
    accepted: false,
    conditions: [],
    listeners: [],
  };
  const refuse = (reason: string, message: string): ListenerSetNode => {
    node.conditions.push(
      cond.listenerSetNotAccepted(reason, message),
      cond.listenerSetNotProgrammed(reason, message),
    );
    return node;
  };
  if (!gateway.accepted) return refuse("ParentNotAccepted", `Gateway ${gateway.key} is not accepted`);
  if (!allowedBy(snapshot, gateway, namespace)) {
    return refuse(
      "NotAllowed",
      `Gateway ${gateway.key} does not allow ListenerSets from namespace ${namespace} (spec.allowedListeners)`,
    );
  }

  const owner = { kind: "ListenerSet" as const, namespace, name: ls.metadata.name };
  node.listeners = ls.spec.listeners.map((entry) => resolveListener(snapshot, gateway.gateway, entry, owner));
  // Within the set, indistinct listeners all lose; against listeners of higher precedence (the
  // Gateway's, earlier sets'), only this set's listener does.
  const earlier = portIndexOf(gateway);
  for (const l of node.listeners) {
    if (!l.attachable) continue;
    const found = earlier.conflict(l);
    if (found === undefined) continue;
    l.attachable = false;
    const { with: e, reason } = found;
    const message = `${found.message} (listener ${e.listener.name} of ${e.owner.kind} ${e.owner.namespace}/${e.owner.name} takes precedence)`;
    l.conditions.unshift(cond.listenerNotAcceptedConflict(reason, message));
    l.conditions.push(cond.listenerConflicted(reason, message));
  }
  markConflicts(node.listeners);
  for (const l of node.listeners) {
    finishListener(l);
    // "Programmed: False" of a conflicted listener of a set carries the conflict as its reason.
    const conflict = l.conditions.find((c) => c.type === "Conflicted" && c.status === "True");
    if (conflict !== undefined) {
      l.conditions = l.conditions.filter((c) => c.type !== "Programmed");
      l.conditions.push(cond.listenerNotProgrammedFor(conflict.reason, conflict.message));
    }
  }

  // Valid: accepted with every reference resolved (a listener whose certificate is not permitted
  // makes a ListenerSet with nothing else ListenersNotValid, as the conformance suite expects).
  const valid = node.listeners.filter((l) => l.programmed);
  if (valid.length === 0) {
    return refuse(
      "ListenersNotValid",
      `No valid listener: ${node.listeners.map((l) => l.listener.name).join(", ")}`,
    );
  }
  node.accepted = true;
  node.conditions.push(
    valid.length === node.listeners.length
      ? cond.listenerSetAccepted()
      : cond.listenerSetAcceptedWithInvalid(
          `Invalid listeners: ${node.listeners
            .filter((l) => !l.programmed)
            .map((l) => l.listener.name)
            .join(", ")}`,
        ),
  );
  node.conditions.push(cond.listenerSetProgrammed());
  gateway.listenerSets.push(node);
  for (const l of node.listeners) if (l.attachable) earlier.add(l);
  return node;
}

/** spec.allowedListeners of the parent: None (the default), Same, All, or a namespace Selector. */
function allowedBy(snapshot: Snapshot, gateway: GatewayNode, namespace: string): boolean {
  const allowed = gateway.gateway.spec.allowedListeners?.namespaces;
  switch (allowed?.from ?? "None") {
    case "All":
      return true;
    case "Same":
      return namespace === (gateway.gateway.metadata.namespace ?? "default");
    case "Selector":
      return (
        allowed?.selector !== undefined &&
        selectorMatches(allowed.selector, snapshot.namespaces.get(namespace)?.metadata.labels)
      );
    default:
      return false;
  }
}

/** The accepted listeners of a Gateway and its ListenerSets so far, by transport and port. */
class PortIndex {
  readonly #groups = new Map<
    string,
    { protocols: Map<string, ListenerNode>; hosts: Map<string, ListenerNode> }
  >();

  constructor(listeners: readonly ListenerNode[]) {
    for (const l of listeners) if (l.attachable) this.add(l);
  }

  add(l: ListenerNode): void {
    const key = portKey(l);
    let group = this.#groups.get(key);
    if (group === undefined) this.#groups.set(key, (group = { protocols: new Map(), hosts: new Map() }));
    if (!group.protocols.has(l.listener.protocol)) group.protocols.set(l.listener.protocol, l);
    const host = (l.listener.hostname ?? "").toLowerCase();
    if (!group.hosts.has(host)) group.hosts.set(host, l);
  }

  /**
   * The conflict `l` would have with a listener already here, judged as gateway.ts markConflicts
   * judges a group: a TCP listener with any other protocol, or HTTP with HTTPS or TLS, on one port
   * is a ProtocolConflict; otherwise the same hostname on one port is a HostnameConflict.
   */
  conflict(l: ListenerNode): { with: ListenerNode; reason: ConflictReason; message: string } | undefined {
    const group = this.#groups.get(portKey(l));
    if (group === undefined) return undefined;
    const p = l.listener.protocol;
    for (const [q, other] of group.protocols) {
      const pair = new Set([p, q]);
      if (
        (pair.has("TCP") && pair.size > 1) ||
        (pair.has("HTTP") && (pair.has("HTTPS") || pair.has("TLS")))
      ) {
        return {
          with: other,
          reason: "ProtocolConflict",
          message: `Port ${l.listener.port} is used by a listener with an incompatible protocol (${[...pair].sort().join(", ")})`,
        };
      }
    }
    const other = group.hosts.get((l.listener.hostname ?? "").toLowerCase());
    if (other === undefined) return undefined;
    return {
      with: other,
      reason: "HostnameConflict",
      message: `Port ${l.listener.port} and hostname ${l.listener.hostname ?? "(any)"} are used by another listener`,
    };
  }
}

function portKey(l: ListenerNode): string {
  return `${l.listener.protocol === "UDP" ? "udp" : "tcp"}/${l.listener.port}`;
}

/** One index per Gateway, built from its own listeners when its first ListenerSet is resolved. */
const portIndexes = new WeakMap<GatewayNode, PortIndex>();

function portIndexOf(gateway: GatewayNode): PortIndex {
  let index = portIndexes.get(gateway);
  if (index === undefined) portIndexes.set(gateway, (index = new PortIndex(gateway.listeners)));
  return index;
}
