/**
 * Precedence of HTTPRoute and GRPCRoute match entries on one virtual host (Gateway API v1.6).
 *
 * The translator flattens every (route, rule, match) attached to a virtual host into a candidate and
 * sorts the candidates with {@link compareHTTPMatches} / {@link compareGRPCMatches}; the data plane then
 * tries them in that order and the first one matching a request wins. Hostname precedence ("Characters
 * in a matching non-wildcard hostname. Characters in a matching hostname.") is handled one level up, by
 * ordering the virtual hosts themselves (see `compareHostnameSpecificity` in `hostname.ts`), so it does
 * not appear here.
 *
 * Both comparators are total orders: after the spec's criteria they fall back on every remaining field,
 * so two candidates compare equal only if all their fields are equal, and sorting any permutation of a
 * list yields the same result.
 */

/** `HTTPPathMatch.type`. */
export type PathMatchType = "Exact" | "PathPrefix" | "RegularExpression";

/** `GRPCMethodMatch.type` (applies to both service and method). */
export type GRPCMethodMatchType = "Exact" | "RegularExpression";

/** The identity of a route for the cross-route tie-breakers. */
export interface RouteIdentity {
  /**
   * `metadata.creationTimestamp`, RFC 3339 (e.g. `2020-09-08T01:02:03Z`). May be "" when unknown (or
   * unparseable): such a route sorts AFTER every route with a known timestamp, i.e. it is treated as
   * the newest. The spec's "oldest Route" cannot be established for it, and this choice means a route
   * with a known age is never displaced by one whose age is missing (e.g. from a fixture file without
   * metadata); `{namespace}/{name}` then still orders unknown-age routes deterministically.
   */
  routeCreationTimestamp: string;
  routeNamespace: string;
  routeName: string;
}

/** One `HTTPRouteMatch` of one rule of one HTTPRoute, as seen by the sorter. */
export interface MatchCandidate extends RouteIdentity {
  /** Index of the rule in `spec.rules`. */
  ruleIndex: number;
  /** Index of the match in `rules[ruleIndex].matches` (0 for the defaulted match). */
  matchIndex: number;
  /** The path match (the API defaults it to `PathPrefix` `/`). Values are compared as given. */
  path: { type: PathMatchType; value: string };
  /** HTTP method, when the match has one ("" counts as no method). */
  method?: string;
  /** Number of `headers` entries. */
  headerCount: number;
  /** Number of `queryParams` entries. */
  queryParamCount: number;
}

/** One `GRPCRouteMatch` of one rule of one GRPCRoute, as seen by the sorter. */
export interface GRPCMatchCandidate extends RouteIdentity {
  ruleIndex: number;
  matchIndex: number;
  /** `method.service`; absent (or "") matches any service. */
  service?: string;
  /** `method.method`; absent (or "") matches any method. */
  method?: string;
  /**
   * Match type of `service`; defaults to "Exact". GRPCRoute v1 has a single `GRPCMethodMatch.type`
   * for both, so callers normally pass the same value here and in `methodType`.
   */
  serviceType?: GRPCMethodMatchType;
  /** Match type of `method`; defaults to "Exact". */
  methodType?: GRPCMethodMatchType;
  /** Number of `headers` entries. */
  headerCount: number;
}

/** Code-unit string comparison: locale-independent, so the order is the same on every machine. */
function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** Numeric comparison that is safe for Infinity (where `a - b` would give NaN). */
function compareNumbers(a: number, b: number): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** Milliseconds since the epoch, or +Infinity for "" / unparseable (unknown age sorts last). */
function creationTime(timestamp: string): number {
  const t = timestamp === "" ? Number.NaN : Date.parse(timestamp);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/**
 * The cross-route tie-breakers shared by HTTPRoute and GRPCRoute (and by the HTTPRoute-vs-GRPCRoute
 * hostname conflict rule): "If ties still exist across multiple Routes, matching precedence MUST be
 * determined in order of the following criteria, continuing on ties: The oldest Route based on creation
 * timestamp. The Route appearing first in alphabetical order by "{namespace}/{name}"."
 *
 * The `{namespace}/{name}` string itself is compared (so `a-b/x` sorts before `a/x`, since `-` < `/`),
 * then the raw timestamp and the namespace, so that distinct identities never compare equal.
 */
export function compareRouteIdentity(a: RouteIdentity, b: RouteIdentity): number {
  return (
    compareNumbers(creationTime(a.routeCreationTimestamp), creationTime(b.routeCreationTimestamp)) ||
    compareStrings(`${a.routeNamespace}/${a.routeName}`, `${b.routeNamespace}/${b.routeName}`) ||
    compareStrings(a.routeCreationTimestamp, b.routeCreationTimestamp) ||
    compareStrings(a.routeNamespace, b.routeNamespace)
  );
}

/**
 * Rank of a path match type; lower sorts first.
 *
 * The spec fixes "Exact" before "Prefix" and says "Note: The precedence of RegularExpression path
 * matches are implementation-specific." Gatehouse uses Exact > RegularExpression > PathPrefix, the order
 * implemented by Envoy Gateway (envoyproxy/gateway#2579 "Change route sorting order to Exact >
 * RegularExpression > PathPrefix"), Contour and NGINX Gateway Fabric, as a Gateway API maintainer
 * summarised in kubernetes-sigs/gateway-api#2974: "some implementations such as Contour, Nginx and Envoy
 * Gateway have implemented the following precedence order - Exact > RegularExpression > Prefix, since
 * Prefix matches are used as catch alls so are moved to the end of the match order". The alternative
 * (regex last, as Istio does) lets a `PathPrefix /` catch-all shadow every regex on the host (see
 * istio/istio#60695); with regex before prefix a regex can only shadow prefixes, and a user who writes
 * a regex is asking for something more specific than a prefix. Regexes are ordered among themselves
 * by pattern length, longest first, like prefixes (Envoy Gateway and Contour do the same).
 */
const PATH_TYPE_RANK: Readonly<Record<PathMatchType, number>> = {
  Exact: 0,
  RegularExpression: 1,
  PathPrefix: 2,
};

/** 1 when the optional string is present and non-empty, else 0. */
function has(value: string | undefined): number {
  return value === undefined || value === "" ? 0 : 1;
}

/**
 * Comparator for HTTPRoute match entries on one virtual host: negative when `a` must be tried first.
 *
 * HTTPRouteRule.matches: "Proxy or Load Balancer routing configuration generated from HTTPRoutes MUST
 * prioritize matches based on the following criteria, continuing on ties. Across all rules specified on
 * applicable Routes, precedence must be given to the match having:
 * - "Exact" path match.
 * - "Prefix" path match with largest number of characters.
 * - Method match.
 * - Largest number of header matches.
 * - Largest number of query param matches.
 *
 * Note: The precedence of RegularExpression path matches are implementation-specific.
 *
 * If ties still exist across multiple Routes, matching precedence MUST be determined in order of the
 * following criteria, continuing on ties:
 * - The oldest Route based on creation timestamp.
 * - The Route appearing first in alphabetical order by "{namespace}/{name}".
 *
 * If ties still exist within an HTTPRoute, matching precedence MUST be granted to the FIRST matching
 * rule (in list order) with a match meeting the above criteria."
 *
 * Implemented order: path type (Exact, RegularExpression, PathPrefix — see {@link PATH_TYPE_RANK});
 * longer path value first (for every type: Exact values of different length never overlap, so this only
 * makes the order deterministic); method before no method; more headers; more query params; oldest
 * route, then `{namespace}/{name}`; lower rule index; lower match index. Only then, for totality, the path
 * value and the method name (equal-length paths reach these only when two entries share route, rule and
 * match index, which cannot happen for real input).
 */
export function compareHTTPMatches(a: MatchCandidate, b: MatchCandidate): number {
  return (
    PATH_TYPE_RANK[a.path.type] - PATH_TYPE_RANK[b.path.type] ||
    b.path.value.length - a.path.value.length ||
    has(b.method) - has(a.method) ||
    b.headerCount - a.headerCount ||
    b.queryParamCount - a.queryParamCount ||
    compareRouteIdentity(a, b) ||
    a.ruleIndex - b.ruleIndex ||
    a.matchIndex - b.matchIndex ||
    compareStrings(a.path.value, b.path.value) ||
    compareStrings(a.method ?? "", b.method ?? "")
  );
}

/**
 * Orders one dimension (service or method) of two gRPC matches: an Exact value before a
 * RegularExpression before no value at all (which matches everything, i.e. 0 matching characters);
 * within the same kind, more characters first.
 */
function compareGRPCDimension(
  a: string | undefined,
  aType: GRPCMethodMatchType | undefined,
  b: string | undefined,
  bType: GRPCMethodMatchType | undefined,
): number {
  const rank = (value: string | undefined, type: GRPCMethodMatchType | undefined): number =>
    has(value) === 0 ? 2 : type === "RegularExpression" ? 1 : 0;
  return rank(a, aType) - rank(b, bType) || (b ?? "").length - (a ?? "").length;
}

/**
 * Comparator for GRPCRoute match entries on one virtual host: negative when `a` must be tried first.
 *
 * GRPCRouteRule.matches: "Proxy or Load Balancer routing configuration generated from GRPCRoutes MUST
 * prioritize rules based on the following criteria, continuing on ties. Merging MUST not be done between
 * GRPCRoutes and HTTPRoutes. Precedence MUST be given to the rule with the largest number of:
 * - Characters in a matching non-wildcard hostname.
 * - Characters in a matching hostname.
 * - Characters in a matching service.
 * - Characters in a matching method.
 * - Header matches.
 *
 * If ties still exist across multiple Routes, matching precedence MUST be determined in order of the
 * following criteria, continuing on ties:
 * - The oldest Route based on creation timestamp.
 * - The Route appearing first in alphabetical order by "{namespace}/{name}".
 *
 * If ties still exist within the Route that has been given precedence, matching precedence MUST be
 * granted to the first matching rule meeting the above criteria."
 *
 * The hostname criteria are settled by virtual-host order (see the file comment). The spec does not say
 * how `RegularExpression` ("Support: Implementation-specific") counts; the question was raised and left
 * open in kubernetes-sigs/gateway-api#2216. Gatehouse mirrors its HTTP choice: for the service, then for
 * the method, an Exact value beats a regex, which beats no value; within a kind the longer value wins.
 * Then more headers, oldest route, `{namespace}/{name}`, rule index, match index, and finally (for
 * totality) the service and method strings and their types.
 */
export function compareGRPCMatches(a: GRPCMatchCandidate, b: GRPCMatchCandidate): number {
  return (
    compareGRPCDimension(a.service, a.serviceType, b.service, b.serviceType) ||
    compareGRPCDimension(a.method, a.methodType, b.method, b.methodType) ||
    b.headerCount - a.headerCount ||
    compareRouteIdentity(a, b) ||
    a.ruleIndex - b.ruleIndex ||
    a.matchIndex - b.matchIndex ||
    compareStrings(a.service ?? "", b.service ?? "") ||
    compareStrings(a.method ?? "", b.method ?? "") ||
    compareStrings(a.serviceType ?? "Exact", b.serviceType ?? "Exact") ||
    compareStrings(a.methodType ?? "Exact", b.methodType ?? "Exact")
  );
}

/** The identity of a route object for the tie-breakers (creation timestamp "" when unknown). */
export function routeIdentityOf(route: {
  metadata: { name: string; namespace?: string; creationTimestamp?: string };
}): RouteIdentity {
  return {
    routeCreationTimestamp: route.metadata.creationTimestamp ?? "",
    routeNamespace: route.metadata.namespace ?? "default",
    routeName: route.metadata.name,
  };
}

/** An HTTPRoute or GRPCRoute match entry, as the virtual host's rule list holds them. */
export type RouteMatchCandidate =
  ({ kind: "HTTPRoute" } & MatchCandidate) | ({ kind: "GRPCRoute" } & GRPCMatchCandidate);

/**
 * Comparator for the rule list of one virtual host, which may in principle hold entries of both kinds:
 * each kind is ordered by its own comparator, and every GRPCRoute entry comes before every HTTPRoute
 * entry.
 *
 * In practice one virtual host never holds both: "Merging MUST not be done between GRPCRoutes and
 * HTTPRoutes", and an HTTPRoute and a GRPCRoute whose hostnames intersect on a listener are not both
 * accepted there (GRPCRouteSpec.hostnames; see routes/conflicts.ts), so the virtual hosts of the two
 * kinds on one listener never match a common request host. The order between kinds is still defined,
 * so that the comparator stays total. gRPC first is the safe choice should the two ever meet: an
 * HTTPRoute catch-all (`PathPrefix /`) would otherwise shadow every gRPC rule, whereas gRPC rules only
 * match `/<service>/<method>` paths, which ordinary HTTP traffic does not use.
 */
export function compareRouteMatches(a: RouteMatchCandidate, b: RouteMatchCandidate): number {
  if (a.kind === "GRPCRoute") return b.kind === "GRPCRoute" ? compareGRPCMatches(a, b) : -1;
  return b.kind === "HTTPRoute" ? compareHTTPMatches(a, b) : 1;
}
