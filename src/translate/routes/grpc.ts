// GRPCRoute: every GRPCRouteMatch becomes an IR match on the request path. A gRPC call is an HTTP/2
// POST to `/<service>/<method>` ("Path → ":path" "/" Service-Name "/" {method name}", gRPC over
// HTTP/2), so service and method matches are path matches; header matches carry over as they are.
// Everything else about the rules (filters, backendRefs, session persistence, status) is shared
// with HTTPRoute (routes/rules.ts); backends are reached over HTTP/2 (protocol family "grpc").
//
// No `POST` method or `content-type: application/grpc` condition is added to the matches. Such
// conditions would only matter if a gRPC rule and an HTTP rule could see the same request, and they
// cannot: an HTTPRoute and a GRPCRoute with intersecting hostnames are never both accepted on a
// listener (routes/conflicts.ts), so their virtual hosts never match a common host. Added conditions
// would turn path-only rules into conditional ones in the data plane, and a non-gRPC request to a
// gRPC host would get a 404 instead of reaching the gRPC server (which rejects it itself). The IR
// rules carry `grpc: true` instead, for what the data plane must do differently (HTTP/2 upstream,
// gRPC-style errors).
import { RE2JS } from "@bufbuild/re2";
import type { DataplaneValidators } from "../../dataplane/capabilities.ts";
import type { IRBackend, IRHTTPMatch } from "../../ir/types.ts";
import type { GRPCRoute, GRPCRouteSpec } from "../../resources/generated/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import type { GRPCMethodMatchType } from "../precedence.ts";
import { matchProblems } from "./capabilities.ts";
import { firstPerName, translateRules, type MatchDraft, type RouteResult } from "./rules.ts";

export type GRPCRouteRule = NonNullable<GRPCRouteSpec["rules"]>[number];

/** Translates the listener-independent parts of a GRPCRoute and registers its backends. */
export function translateGRPCRoute(
  snapshot: Snapshot,
  route: GRPCRoute,
  backends: Map<string, IRBackend>,
  validators: DataplaneValidators,
): RouteResult {
  return translateRules(
    snapshot,
    {
      kind: "GRPCRoute",
      namespace: route.metadata.namespace ?? "default",
      name: route.metadata.name,
      // Unlike HTTPRoute, the CRD gives GRPCRoute no default rule: a route without rules routes nothing.
      rules: route.spec.rules ?? [],
      family: "grpc",
      matchesOf,
      validators,
    },
    backends,
  );
}

/** "If no matches are specified, the implementation MUST match every gRPC request." */
function matchesOf(
  rule: GRPCRouteRule,
  field: string,
  problems: string[],
  validators: DataplaneValidators,
): MatchDraft[] {
  const matches = rule.matches === undefined || rule.matches.length === 0 ? [{}] : rule.matches;
  return matches.map((m, i) => {
    const type: GRPCMethodMatchType = m.method?.type ?? "Exact";
    // "If left empty or omitted, will match any service" (and likewise for the method).
    const service = nonEmpty(m.method?.service);
    const method = nonEmpty(m.method?.method);
    const before = problems.length;
    const path = grpcPath(type, service, method, `${field}.matches[${i}].method`, problems);
    const kept = firstPerName((m.headers ?? []).map((h, index) => ({ ...h, index })));
    const headers = kept.map((h) => ({ type: h.type ?? "Exact", name: h.name, value: h.value }));
    const match: IRHTTPMatch = { path, headers, queryParams: [] };
    // The method's path is only checked when each side was a valid RE2 expression on its own.
    if (problems.length === before) {
      const at = `${field}.matches[${i}]`;
      problems.push(
        ...matchProblems(validators, match, {
          path: `${at}.method`,
          header: (k) => `${at}.headers[${kept[k]?.index ?? k}]`,
          query: (k) => `${at}.queryParams[${k}]`,
          method: `${at}.method`,
        }),
      );
    }
    return {
      match,
      order: {
        kind: "GRPCRoute",
        ...(service !== undefined ? { service } : {}),
        ...(method !== undefined ? { method } : {}),
        serviceType: type,
        methodType: type,
        headerCount: headers.length,
      },
      ...(problems.length > before ? { unusable: true as const } : {}),
    };
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/**
 * The path match of a GRPCMethodMatch:
 * - no service and no method: every gRPC call, `PathPrefix /`;
 * - Exact service and method: `Exact /<service>/<method>`;
 * - Exact service only: `PathPrefix /<service>/` (path-element prefix: `/<service>/<any method>`);
 * - Exact method only: `RegularExpression /[^/]+/<method>` (any service);
 * - RegularExpression: `/(?:<service>)/(?:<method>)`, an omitted or empty side being `[^/]+`.
 *
 * IR regular expressions match the whole path (the data plane anchors them), so the service and
 * method expressions must match the whole service or method name: `foo\..*` matches the services of
 * package `foo`, `Get` matches only `Get`. Each is checked on its own as an RE2 expression first:
 * inside the combined path one malformed side (say `a)|(b`) could otherwise turn into a well-formed
 * expression that means something else. A malformed side makes the rule invalid and the match is left
 * out of the IR (no request can be said to match it). Literal parts are escaped ({@link regexLiteral}).
 */
function grpcPath(
  type: GRPCMethodMatchType,
  service: string | undefined,
  method: string | undefined,
  field: string,
  problems: string[],
): IRHTTPMatch["path"] {
  if (service === undefined && method === undefined) return { type: "PathPrefix", value: "/" };
  if (type === "Exact") {
    if (service !== undefined && method !== undefined)
      return { type: "Exact", value: `/${service}/${method}` };
    if (service !== undefined) return { type: "PathPrefix", value: `/${service}/` };
    return { type: "RegularExpression", value: `/[^/]+/${regexLiteral(method ?? "")}` };
  }
  const side = (value: string | undefined, name: string): string => {
    if (value === undefined) return "[^/]+";
    const problem = re2Problem(value);
    if (problem !== undefined) problems.push(`${field}.${name}: ${JSON.stringify(value)} ${problem}`);
    return `(?:${value})`;
  };
  return { type: "RegularExpression", value: `/${side(service, "service")}/${side(method, "method")}` };
}

/** Why `pattern` is not a valid RE2 expression, if it is not. */
function re2Problem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (e) {
    return `is not a valid RE2 regular expression (${e instanceof Error ? e.message : String(e)})`;
  }
}

/**
 * `s` as a regular expression matching exactly `s`: ASCII punctuation other than `_` is
 * backslash-escaped, which RE2 and PCRE both read as the literal character.
 */
export function regexLiteral(s: string): string {
  return s.replace(/[!-/:-@[-^`{-~]/g, "\\$&");
}
