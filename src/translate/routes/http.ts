// HTTPRoute: matches → IR matches; everything else about its rules is shared with GRPCRoute
// (routes/rules.ts).
import type { IRBackend } from "../../ir/types.ts";
import type { HTTPRoute } from "../../resources/generated/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import type { HTTPRouteRule } from "./filters.ts";
import { firstPerName, translateRules, type MatchDraft, type RouteResult } from "./rules.ts";

/** Translates the listener-independent parts of an HTTPRoute and registers its backends. */
export function translateHTTPRoute(
  snapshot: Snapshot,
  route: HTTPRoute,
  backends: Map<string, IRBackend>,
): RouteResult {
  return translateRules(
    snapshot,
    {
      kind: "HTTPRoute",
      namespace: route.metadata.namespace ?? "default",
      // The CRD defaults rules to one rule matching PathPrefix "/"; objects that skipped defaulting
      // get the same.
      rules: route.spec.rules ?? [{}],
      family: "http",
      matchesOf,
    },
    backends,
  );
}

/** The rule's matches with defaults: no matches means "PathPrefix /". */
function matchesOf(rule: HTTPRouteRule): MatchDraft[] {
  const matches = rule.matches === undefined || rule.matches.length === 0 ? [{}] : rule.matches;
  return matches.map((m) => {
    const path = { type: m.path?.type ?? "PathPrefix", value: m.path?.value ?? "/" };
    const headers = firstPerName(m.headers ?? []).map((h) => ({
      type: h.type ?? "Exact",
      name: h.name,
      value: h.value,
    }));
    const queryParams = (m.queryParams ?? []).map((q) => ({
      type: q.type ?? "Exact",
      name: q.name,
      value: q.value,
    }));
    return {
      match: { path, headers, queryParams, ...(m.method !== undefined ? { method: m.method } : {}) },
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
