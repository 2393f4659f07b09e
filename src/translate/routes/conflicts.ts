// HTTPRoute / GRPCRoute hostname conflicts on a listener.
//
// GRPCRouteSpec.hostnames: "If a Route (A) of type HTTPRoute or GRPCRoute is attached to a Listener
// and that listener already has another Route (B) of the other type attached and the intersection of
// the hostnames of A and B is non-empty, then the implementation MUST accept exactly one of these two
// routes, determined by the following criteria, in order: The oldest Route based on creation
// timestamp. The Route appearing first in alphabetical order by "{namespace}/{name}". The rejected
// Route MUST raise an 'Accepted' condition with a status of 'False' in the corresponding
// RouteParentStatus."
//
// Implementation:
// - Routes are settled in that precedence order (oldest, then `{namespace}/{name}`; an HTTPRoute and
//   a GRPCRoute of the same age and name are ordered by kind, GRPCRoute first, for determinism). Each
//   accepted parentRef of a route is checked against the hostnames that already-settled routes of the
//   other kind hold on each listener it attached to. So a route that lost is never "attached" and
//   cannot make a third route lose: "that listener already has another Route (B) ... attached".
// - The hostnames compared are those the route serves on that listener (its hostnames intersected
//   with the listener's, see hostname.ts); a route without hostnames on a listener without one serves
//   every host, so it intersects every route of the other kind on that listener.
// - Status is per parentRef, so a parentRef that loses on any of its listeners is rejected as a whole
//   (Accepted False, reason HostnameConflict, not served through that parentRef, not counted in
//   attachedRoutes): a parentRef whose status says Accepted True is served on every listener it names.
// - A route later rejected for its rules (Accepted False, UnsupportedValue: every rule answers with an
//   error) still holds its hostnames, as it still answers for them.
import * as cond from "../conditions.ts";
import { listenerHostnamesOverlap } from "../hostname.ts";
import { compareRouteIdentity, routeIdentityOf } from "../precedence.ts";
import type { ParentAttachment, RouteObject } from "./parents.ts";
import type { HTTPLikeKind } from "./rules.ts";

export interface AttachedRoute {
  kind: HTTPLikeKind;
  route: RouteObject;
  attachments: ParentAttachment[];
}

interface Claim {
  kind: HTTPLikeKind;
  /** `Kind namespace/name`, for messages. */
  owner: string;
  hostname: string;
}

/** Rejects the parentRefs that lose an HTTPRoute/GRPCRoute hostname conflict (mutates `attachments`). */
export function settleHostnameConflicts(routes: readonly AttachedRoute[]): void {
  const ordered = [...routes].sort(
    (a, b) =>
      compareRouteIdentity(routeIdentityOf(a.route), routeIdentityOf(b.route)) ||
      (a.kind === b.kind ? 0 : a.kind === "GRPCRoute" ? -1 : 1),
  );
  const claims = new Map<string, Claim[]>();
  for (const { kind, route, attachments } of ordered) {
    const owner = `${kind} ${route.metadata.namespace ?? "default"}/${route.metadata.name}`;
    for (const a of attachments) {
      if (!a.accepted) continue;
      const conflict = findConflict(kind, a, claims);
      if (conflict !== undefined) {
        a.accepted = false;
        a.listeners = [];
        a.conditions = [cond.routeHostnameConflict(conflict)];
        continue;
      }
      for (const { listener, hostnames } of a.listeners) {
        const key = claimKey(listener.id, kind);
        let list = claims.get(key);
        if (list === undefined) claims.set(key, (list = []));
        for (const hostname of hostnames) list.push({ kind, owner, hostname });
      }
    }
  }
}

/** Claims are kept per listener and kind. */
function claimKey(listenerId: string, kind: HTTPLikeKind): string {
  return `${listenerId}\0${kind}`;
}

/** A message describing the first conflict of the parentRef, if any. */
function findConflict(
  kind: HTTPLikeKind,
  a: ParentAttachment,
  claims: ReadonlyMap<string, readonly Claim[]>,
): string | undefined {
  const other: HTTPLikeKind = kind === "HTTPRoute" ? "GRPCRoute" : "HTTPRoute";
  for (const { listener, hostnames } of a.listeners) {
    // Only the other kind's claims can conflict (looking at this kind's too made this quadratic).
    for (const claim of claims.get(claimKey(listener.id, other)) ?? []) {
      const hostname = hostnames.find((h) => listenerHostnamesOverlap(h, claim.hostname));
      if (hostname === undefined) continue;
      return (
        `Hostname ${hostname} on listener ${listener.listener.name} of Gateway ${a.gateway.key} intersects ` +
        `hostname ${claim.hostname} of ${claim.owner}, which takes precedence (older, or first by ` +
        `namespace/name): an HTTPRoute and a GRPCRoute with intersecting hostnames on a listener ` +
        `cannot both be accepted`
      );
    }
  }
  return undefined;
}
