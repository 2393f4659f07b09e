// What a data plane can express, as validators the translator calls while it builds each rule (the
// way NGINX Gateway Fabric hands its validators to the graph builder). A value the data plane cannot
// express then becomes a condition on the rule that owns it, before any IR exists: one route
// author's bad value never reaches the renderer, so it can never fail a whole configuration.
//
// Each validator returns why the value cannot be expressed, or undefined when it can. Messages are
// about the value only; the caller prefixes the resource field (`spec.rules[0].matches[1].path.value`).
// The translator depends on this interface only; each data plane implements it next to its renderer
// (HAProxy: dataplane/haproxy/capabilities.ts), so the translator stays free of HAProxy knowledge.

/** Why a value cannot be expressed, or undefined when it can. */
export type Verdict = string | undefined;

export type StringMatchType = "Exact" | "RegularExpression";
export type PathMatchType = "Exact" | "PathPrefix" | "RegularExpression";

export interface DataplaneValidators {
  /** A short name for messages, e.g. "HAProxy 2.6". */
  readonly name: string;

  // Matches (HTTPRoute and GRPCRoute).
  matchPath(type: PathMatchType, value: string): Verdict;
  matchHeaderName(name: string): Verdict;
  matchHeaderValue(type: StringMatchType, value: string): Verdict;
  matchQueryParamName(name: string): Verdict;
  matchQueryParamValue(type: StringMatchType, value: string): Verdict;
  matchMethod(method: string): Verdict;

  // Filters.
  headerModifierName(name: string): Verdict;
  headerModifierValue(value: string): Verdict;
  /** A hostname written into a request or a Location header (redirect, rewrite). */
  filterHostname(hostname: string): Verdict;
  /** A path written into a request or a Location header (ReplaceFullPath, ReplacePrefixMatch). */
  filterPath(path: string): Verdict;
  corsOrigin(origin: string): Verdict;
  corsMethod(method: string): Verdict;
  corsHeaderName(name: string): Verdict;
  /** Filter types the data plane can apply on a backendRef (not only on a rule). */
  backendRefFilter(type: string): Verdict;

  // Rule behaviour.
  retryCode(code: number): Verdict;
  retryBackoff(ms: number): Verdict;
  sessionPersistenceType(type: "Cookie" | "Header"): Verdict;
  sessionName(name: string): Verdict;
}
