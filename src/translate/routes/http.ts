// HTTPRoute: matches → IR matches; everything else about its rules is shared with GRPCRoute
// (routes/rules.ts).
import type { DataplaneValidators } from "../../dataplane/capabilities.ts";
import type { IRBackend } from "../../ir/types.ts";
import type { HTTPRoute } from "../../resources/generated/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import { matchProblems } from "./capabilities.ts";
import type { HTTPRouteRule } from "./filters.ts";
import { firstPerName, translateRules, type MatchDraft, type RouteResult } from "./rules.ts";

/** Translates the listener-independent parts of an HTTPRoute and registers its backends. */
export function translateHTTPRoute(
  snapshot: Snapshot,
  route: HTTPRoute,
  backends: Map<string, IRBackend>,
  validators: DataplaneValidators,
): RouteResult {
  return translateRules(
    snapshot,
    {
      kind: "HTTPRoute",
      namespace: route.metadata.namespace ?? "default",
      name: route.metadata.name,
      // The CRD defaults rules to one rule matching PathPrefix "/"; objects that skipped defaulting
      // get the same.
      rules: route.spec.rules ?? [{}],
      family: "http",
      matchesOf,
      validators,
    },
    backends,
  );
}

/**
 * The rule's matches with defaults: no matches means "PathPrefix /". A match the data plane cannot
 * express is left out (no request can be said to match it) and makes its rule invalid.
 */
function matchesOf(
  rule: HTTPRouteRule,
  field: string,
  problems: string[],
  validators: DataplaneValidators,
): MatchDraft[] {
  const matches = rule.matches === undefined || rule.matches.length === 0 ? [{}] : rule.matches;
  return matches.map((m, i) => {
    const path = { type: m.path?.type ?? "PathPrefix", value: m.path?.value ?? "/" };
    // Each kept header match with its index in the resource (later duplicates are ignored).
    const kept = firstPerName((m.headers ?? []).map((h, index) => ({ ...h, index })));
    const headers = kept.map((h) => ({ type: h.type ?? "Exact", name: h.name, value: h.value }));
    const queryParams = (m.queryParams ?? []).map((q) => ({
      type: q.type ?? "Exact",
      name: q.name,
      value: q.value,
    }));
    const match = { path, headers, queryParams, ...(m.method !== undefined ? { method: m.method } : {}) };
    const at = `${field}.matches[${i}]`;
    const matchIssues = matchProblems(validators, match, {
      path: `${at}.path.value`,
      header: (k) => `${at}.headers[${kept[k]?.index ?? k}]`,
      query: (k) => `${at}.queryParams[${k}]`,
      method: `${at}.method`,
    });
    problems.push(...matchIssues);
    return {
      match,
      ...(matchIssues.length > 0 ? { unusable: true as const } : {}),
      order: {
        kind: "HTTPRoute",
        path,
        ...(m.method !== undefined ? { method: m.method } : {}),
        headerCount: headers.length,
        queryParamCount: queryParams.length,
      },
    };
  });
}
