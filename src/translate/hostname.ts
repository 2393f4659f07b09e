/**
 * Hostname semantics of Gateway API v1.6 (Listener.hostname, HTTPRoute/GRPCRoute spec.hostnames).
 *
 * All functions here are pure. Spec text quoted below comes from `apis/v1/httproute_types.go`,
 * `apis/v1/grpcroute_types.go` and the Listener docs (gateway-api.sigs.k8s.io/reference/spec).
 *
 * Vocabulary used in this file:
 * - "exact" (the spec's "precise") hostname: `foo.example.com`;
 * - "wildcard" hostname: `*.example.com` — "The wildcard label must appear by itself as the first label.";
 * - "any" hostname: `*`. It is not a valid value of any hostname field; Gatehouse uses it for an
 *   unspecified Listener hostname: "When unspecified, all hostnames are matched." An empty string is
 *   treated the same way.
 *
 * Comparisons are case-insensitive (DNS names are; the CRD validation only admits lower case anyway),
 * and the values returned by {@link intersectHostnames} are lower-cased.
 */

/** The "any hostname" value: what an unspecified Listener hostname (or a route without hostnames) means. */
export const ANY_HOSTNAME = "*";

/** Lower-cases a hostname and maps "" to {@link ANY_HOSTNAME}. */
function normalize(hostname: string): string {
  return hostname === "" ? ANY_HOSTNAME : hostname.toLowerCase();
}

/** True for `*.example.com` (a wildcard label followed by at least one label); false for `*` and exact names. */
export function isWildcardHostname(hostname: string): boolean {
  return hostname.startsWith("*.") && hostname.length > 2;
}

/**
 * Whether `pattern` matches `host`.
 *
 * "Hostnames that are prefixed with a wildcard label (`*.`) are interpreted as a suffix match. That means
 * that a match for `*.example.com` would match both `test.example.com`, and `foo.test.example.com`, but
 * not `example.com`." Any other pattern is compared exactly; `*` (or "") matches every host.
 *
 * `host` is normally a concrete request host. "Implementations MUST ignore any port value specified in
 * the HTTP Host header while performing a match", so a trailing `:<digits>` is stripped from `host`.
 * When `host` is itself a wildcard the answer is "every name `host` matches is also matched by
 * `pattern`" (subsumption): `*.example.com` matches `*.foo.example.com` but not the reverse.
 */
export function hostnameMatches(pattern: string, host: string): boolean {
  const p = normalize(pattern);
  const h = normalize(host).replace(/:\d+$/, "");
  if (p === ANY_HOSTNAME || p === h) return true;
  if (!isWildcardHostname(p)) return false;
  const suffix = p.slice(1); // ".example.com"
  // Strictly longer: the wildcard label must match at least one label, so `example.com` is excluded.
  return h.length > suffix.length && h.endsWith(suffix);
}

/**
 * Whether two Listener hostnames (undefined = unspecified = any) can both match some request host.
 *
 * Useful for listener conflict detection and for the GRPCRoute/HTTPRoute rule: "If a Route (A) of type
 * HTTPRoute or GRPCRoute is attached to a Listener and that listener already has another Route (B) of the
 * other type attached and the intersection of the hostnames of A and B is non-empty, then the
 * implementation MUST accept exactly one of these two routes". Two wildcard/exact sets overlap exactly
 * when one contains the other (two suffix sets can only share a name if one suffix ends with the other).
 */
export function listenerHostnamesOverlap(a?: string, b?: string): boolean {
  const x = a ?? ANY_HOSTNAME;
  const y = b ?? ANY_HOSTNAME;
  return hostnameMatches(x, y) || hostnameMatches(y, x);
}

/**
 * The hostnames a route gets on a listener: the intersection of the Listener hostname and the route's
 * `spec.hostnames`.
 *
 * Spec (HTTPRoute.spec.hostnames):
 * - "If a hostname is specified by both the Listener and HTTPRoute, there must be at least one
 *   intersecting hostname for the HTTPRoute to be attached to the Listener."
 * - "A Listener with `test.example.com` as the hostname matches HTTPRoutes that have either not specified
 *   any hostnames, or have specified at least one of `test.example.com` or `*.example.com`."
 * - "A Listener with `*.example.com` as the hostname matches HTTPRoutes that have either not specified any
 *   hostnames or have specified at least one hostname that matches the Listener hostname. For example,
 *   `*.example.com`, `test.example.com`, and `foo.test.example.com` would all match. On the other hand,
 *   `example.com` and `test.example.net` would not match."
 * - "If both the Listener and HTTPRoute have specified hostnames, any HTTPRoute hostnames that do not
 *   match the Listener hostname MUST be ignored."
 *
 * Result, per route hostname `r` and listener hostname `l`:
 * - `l` absent (undefined, "" or `*`): the route hostnames, or `["*"]` if the route has none;
 * - route has no hostnames: `[l]`;
 * - `l` matches (or subsumes) `r`: `r` (exact == exact, wildcard listener with a matching exact route
 *   hostname, or a route wildcard at least as specific as the listener wildcard);
 * - `r` matches `l`: `l` (route wildcard covering an exact listener hostname, or a listener wildcard more
 *   specific than the route wildcard: `*.foo.example.com` ∩ `*.example.com` = `*.foo.example.com`);
 * - otherwise nothing.
 *
 * Duplicates are removed, keeping first-occurrence order of the route's hostnames (deterministic for a
 * given route). An empty result means no intersection: the route must not attach to this listener
 * (reason `NoMatchingListenerHostname`: "The implementation must raise an 'Accepted' Condition with a
 * status of `False` in the corresponding RouteParentStatus.").
 */
export function intersectHostnames(
  listenerHostname: string | undefined,
  routeHostnames: readonly string[],
): string[] {
  const listener = normalize(listenerHostname ?? "");
  const routes = routeHostnames.map(normalize);
  if (listener === ANY_HOSTNAME) return routes.length === 0 ? [ANY_HOSTNAME] : dedupe(routes);
  if (routes.length === 0) return [listener];
  const out: string[] = [];
  for (const route of routes) {
    if (hostnameMatches(listener, route)) out.push(route);
    else if (hostnameMatches(route, listener)) out.push(listener);
  }
  return dedupe(out);
}

function dedupe(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** 0 for exact hostnames, 1 for wildcards (`*.x`), 2 for `*` (any). */
function hostnameKind(hostname: string): number {
  if (hostname === ANY_HOSTNAME) return 2;
  return isWildcardHostname(hostname) ? 1 : 0;
}

/** Plain code-unit comparison (locale-independent, so output is identical on every machine). */
function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/**
 * Comparator ordering virtual hosts so that the most specific hostname is tried first.
 *
 * HTTPRoute spec: "In the event that multiple HTTPRoutes specify intersecting hostnames (e.g. overlapping
 * wildcard matching and exact matching hostnames), precedence must be given to rules from the HTTPRoute
 * with the largest number of: Characters in a matching non-wildcard hostname. Characters in a matching
 * hostname." (GRPCRouteRule.matches repeats both criteria.)
 *
 * Order: exact hostnames first, then wildcards, then `*` (any) last. Within a kind, more characters
 * first, then more labels, then alphabetical (code-unit order, after lower-casing, then on the raw value
 * so that distinct strings never compare equal). Two wildcards can only overlap when one is a suffix of
 * the other, in which case the longer is the more specific and sorts first, as the spec requires.
 */
export function compareHostnameSpecificity(a: string, b: string): number {
  const x = normalize(a);
  const y = normalize(b);
  return (
    hostnameKind(x) - hostnameKind(y) ||
    y.length - x.length ||
    y.split(".").length - x.split(".").length ||
    compareStrings(x, y) ||
    compareStrings(a, b)
  );
}

/** The Gateway API `Hostname` type: lowercase DNS labels, optionally a leading `*.` (at most 253). */
const HOSTNAME = /^(?:\*\.)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Whether `value` is a Gateway API Hostname. The API server refuses anything else; a value that got
 * past it anyway (an object not validated, a schema bug) must match no listener rather than reach
 * the data plane.
 */
export function isHostname(value: string): boolean {
  return value.length <= 253 && HOSTNAME.test(value);
}
