// The data plane's validators applied to route values while rules are built: every problem comes
// back as `<resource field>: <why>`, so it becomes the owning rule's condition (the rule is dropped
// and answers with an error; the route reports PartiallyInvalid, or Accepted False when no rule is
// left). Nothing the data plane cannot express reaches the IR.
import type { DataplaneValidators, Verdict } from "../../dataplane/capabilities.ts";
import type { IRHTTPMatch } from "../../ir/types.ts";
import type { HTTPRouteFilter } from "./filters.ts";

/** Adds `<field>: <verdict>` to `problems` when the verdict is a problem. */
function note(problems: string[], field: string, verdict: Verdict): void {
  if (verdict !== undefined) problems.push(`${field}: ${verdict}`);
}

/** Resource field paths of the parts of one IR match (they differ between HTTPRoute and GRPCRoute). */
export interface MatchFields {
  path: string;
  /** Field of the k-th IR header match. */
  header: (k: number) => string;
  query: (k: number) => string;
  method: string;
}

/** Problems of one match; empty when the data plane can express it. */
export function matchProblems(v: DataplaneValidators, match: IRHTTPMatch, fields: MatchFields): string[] {
  const problems: string[] = [];
  note(problems, fields.path, v.matchPath(match.path.type, match.path.value));
  for (const [k, h] of match.headers.entries()) {
    note(problems, `${fields.header(k)}.name`, v.matchHeaderName(h.name));
    note(problems, `${fields.header(k)}.value`, v.matchHeaderValue(h.type, h.value));
  }
  for (const [k, q] of match.queryParams.entries()) {
    note(problems, `${fields.query(k)}.name`, v.matchQueryParamName(q.name));
    note(problems, `${fields.query(k)}.value`, v.matchQueryParamValue(q.type, q.value));
  }
  if (match.method !== undefined) note(problems, fields.method, v.matchMethod(match.method));
  return problems;
}

type HeaderModifier = NonNullable<HTTPRouteFilter["requestHeaderModifier"]>;
type PathModifier = NonNullable<NonNullable<HTTPRouteFilter["urlRewrite"]>["path"]>;

function headerModifierProblems(
  v: DataplaneValidators,
  h: HeaderModifier,
  at: string,
  problems: string[],
): void {
  for (const list of ["set", "add"] as const) {
    for (const [j, s] of (h[list] ?? []).entries()) {
      note(problems, `${at}.${list}[${j}].name`, v.headerModifierName(s.name));
      note(problems, `${at}.${list}[${j}].value`, v.headerModifierValue(s.value));
    }
  }
  for (const [j, name] of (h.remove ?? []).entries())
    note(problems, `${at}.remove[${j}]`, v.headerModifierName(name));
}

function pathModifierProblems(v: DataplaneValidators, p: PathModifier, at: string, problems: string[]): void {
  if (p.type === "ReplaceFullPath" && p.replaceFullPath !== undefined)
    note(problems, `${at}.replaceFullPath`, v.filterPath(p.replaceFullPath));
  // "" replaces the matched prefix with nothing (the result is then "/").
  if (p.type === "ReplacePrefixMatch" && p.replacePrefixMatch !== undefined && p.replacePrefixMatch !== "")
    note(problems, `${at}.replacePrefixMatch`, v.filterPath(p.replacePrefixMatch));
}

/**
 * Problems of one filter as written in the resource (`at` is its field, e.g.
 * `spec.rules[0].backendRefs[1].filters[0]`); `onBackendRef` for backendRef-level filters.
 */
export function filterProblems(
  v: DataplaneValidators,
  f: HTTPRouteFilter,
  at: string,
  onBackendRef: boolean,
): string[] {
  const problems: string[] = [];
  if (onBackendRef) note(problems, `${at}.type`, v.backendRefFilter(f.type));
  if (f.requestHeaderModifier !== undefined)
    headerModifierProblems(v, f.requestHeaderModifier, `${at}.requestHeaderModifier`, problems);
  if (f.responseHeaderModifier !== undefined)
    headerModifierProblems(v, f.responseHeaderModifier, `${at}.responseHeaderModifier`, problems);
  const redirect = f.requestRedirect;
  if (redirect !== undefined) {
    if (redirect.hostname !== undefined)
      note(problems, `${at}.requestRedirect.hostname`, v.filterHostname(redirect.hostname));
    if (redirect.path !== undefined)
      pathModifierProblems(v, redirect.path, `${at}.requestRedirect.path`, problems);
  }
  const rewrite = f.urlRewrite;
  if (rewrite !== undefined) {
    if (rewrite.hostname !== undefined)
      note(problems, `${at}.urlRewrite.hostname`, v.filterHostname(rewrite.hostname));
    if (rewrite.path !== undefined) pathModifierProblems(v, rewrite.path, `${at}.urlRewrite.path`, problems);
  }
  const cors = f.cors;
  if (cors !== undefined) {
    for (const [j, o] of (cors.allowOrigins ?? []).entries())
      note(problems, `${at}.cors.allowOrigins[${j}]`, v.corsOrigin(o));
    for (const [j, m] of (cors.allowMethods ?? []).entries())
      note(problems, `${at}.cors.allowMethods[${j}]`, v.corsMethod(m));
    for (const [j, h] of (cors.allowHeaders ?? []).entries())
      note(problems, `${at}.cors.allowHeaders[${j}]`, v.corsHeaderName(h));
    for (const [j, h] of (cors.exposeHeaders ?? []).entries())
      note(problems, `${at}.cors.exposeHeaders[${j}]`, v.corsHeaderName(h));
  }
  return problems;
}

/** Problems of a rule's retry and session persistence (IR values, resource fields). */
export function behaviourProblems(
  v: DataplaneValidators,
  field: string,
  /** `codes` as written in the resource (indices name the field). */
  retry: { codes: readonly number[]; backoffMs?: number } | undefined,
  sessionPersistence: { type: "Cookie" | "Header"; name: string } | undefined,
): string[] {
  const problems: string[] = [];
  if (retry !== undefined) {
    for (const [i, code] of retry.codes.entries())
      note(problems, `${field}.retry.codes[${i}]`, v.retryCode(code));
    if (retry.backoffMs !== undefined)
      note(problems, `${field}.retry.backoff`, v.retryBackoff(retry.backoffMs));
  }
  if (sessionPersistence !== undefined) {
    note(problems, `${field}.sessionPersistence.type`, v.sessionPersistenceType(sessionPersistence.type));
    note(problems, `${field}.sessionPersistence.sessionName`, v.sessionName(sessionPersistence.name));
  }
  return problems;
}
