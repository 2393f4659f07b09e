// `gatehouse explain`: which listener and rule serve a request (or a route), and if none, why not.
// Pure: works on the IR in effect and the statuses (from `translate` or a running instance's
// /config and /status). Request matching follows the IR's own order (the translator already put
// rules in the spec's precedence order), the way the data plane evaluates them:
// listener by hostname (exact, then the longest wildcard, then none) → virtual host (exact, longest
// wildcard suffix, `*`) → first rule whose match matches (path, headers, query, method).
import type {
  IRGateway,
  IRHTTPMatch,
  IRHTTPRule,
  IRListener,
  IRVirtualHost,
  IRWeightedBackend,
} from "../ir/types.ts";
import type { Condition, StatusEntry } from "../status/types.ts";

/** The parts of the IR explain reads (the redacted IR of /config has them too). */
export interface ExplainIR {
  gateways: IRGateway[];
}

export interface RequestQuery {
  host: string;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  /** Only listeners on this port. */
  port?: number;
  /** Only this Gateway (`namespace/name`). */
  gateway?: string;
}

export interface RuleVerdict {
  gateway: string;
  listener: string;
  port: number;
  protocol: string;
  virtualHost: string;
  route: { kind: string; namespace: string; name: string };
  rule: string;
  ruleIndex: number;
  matchIndex: number;
  match: string;
  backends: string[];
}

export interface RequestExplanation {
  served: boolean;
  verdicts: RuleVerdict[];
  /** Why not (or remarks), one sentence each. */
  reasons: string[];
}

const isHttp = (l: IRListener): boolean => l.protocol === "HTTP" || l.protocol === "HTTPS";

function hostMatches(pattern: string | undefined, host: string): number {
  // Higher is more specific; -1 = no match.
  if (pattern === undefined || pattern === "*") return 0;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) ? pattern.length : -1;
  return pattern === host ? 1_000 + pattern.length : -1;
}

function pathMatches(m: IRHTTPMatch["path"], path: string): boolean {
  switch (m.type) {
    case "Exact":
      return path === m.value;
    case "PathPrefix": {
      const v = m.value.replace(/\/+$/, "");
      return v === "" || path === v || path.startsWith(`${v}/`);
    }
    case "RegularExpression":
      try {
        return new RegExp(`^(?:${m.value})$`).test(path);
      } catch {
        return false;
      }
  }
}

function valueMatches(type: "Exact" | "RegularExpression", want: string, got: string | undefined): boolean {
  if (got === undefined) return false;
  if (type === "Exact") return want === got;
  try {
    return new RegExp(want).test(got);
  } catch {
    return false;
  }
}

/** Why `rule` does not match the request (undefined when it does). */
function mismatch(
  rule: IRHTTPRule,
  q: RequestQuery,
  path: string,
  query: URLSearchParams,
): string | undefined {
  const m = rule.match;
  if (!pathMatches(m.path, path)) return `path ${m.path.type} ${m.path.value}`;
  if (m.method !== undefined && m.method !== (q.method ?? "GET").toUpperCase()) return `method ${m.method}`;
  const headers = new Map(Object.entries(q.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  for (const h of m.headers)
    if (!valueMatches(h.type, h.value, headers.get(h.name.toLowerCase())))
      return `header ${h.name} ${h.type === "Exact" ? "=" : "~"} ${h.value}`;
  for (const p of m.queryParams)
    if (!valueMatches(p.type, p.value, query.get(p.name) ?? undefined))
      return `query ${p.name} ${p.type === "Exact" ? "=" : "~"} ${p.value}`;
  return undefined;
}

export function describeMatch(m: IRHTTPMatch): string {
  const parts = [`${m.path.type} ${m.path.value}`];
  if (m.method !== undefined) parts.push(`method ${m.method}`);
  for (const h of m.headers) parts.push(`header ${h.name} ${h.type === "Exact" ? "=" : "~"} ${h.value}`);
  for (const p of m.queryParams) parts.push(`query ${p.name} ${p.type === "Exact" ? "=" : "~"} ${p.value}`);
  return parts.join(", ");
}

function describeBackends(backends: readonly IRWeightedBackend[]): string[] {
  return backends.map((b) =>
    b.invalid === true
      ? `(invalid backendRef, weight ${b.weight}: its share answers 500)`
      : `${b.backend.replace(/^(service|static)\//, "").replace(/\/(\d+)$/, ":$1")} (weight ${b.weight})`,
  );
}

function verdict(g: IRGateway, l: IRListener, vh: IRVirtualHost, r: IRHTTPRule): RuleVerdict {
  return {
    gateway: `${g.namespace}/${g.name}`,
    listener: l.name,
    port: l.port,
    protocol: l.protocol,
    virtualHost: vh.hostname,
    route: r.route,
    rule: r.ruleName ?? String(r.ruleIndex),
    ruleIndex: r.ruleIndex,
    matchIndex: r.matchIndex,
    match: describeMatch(r.match),
    backends: describeBackends(r.backends),
  };
}

/** Routes whose status says they are not (fully) served: hints for a request nothing serves. */
export function routeProblems(statuses: readonly StatusEntry[]): string[] {
  const out: string[] = [];
  for (const s of statuses) {
    if (!s.kind.endsWith("Route")) continue;
    const parents = (s.status["parents"] ?? []) as Array<{
      parentRef?: { name?: string; sectionName?: string };
      conditions?: Condition[];
    }>;
    for (const p of parents) {
      for (const c of p.conditions ?? []) {
        const problem = c.type === "PartiallyInvalid" ? c.status === "True" : c.status !== "True";
        if (!problem) continue;
        const parent = `${p.parentRef?.name ?? "?"}${p.parentRef?.sectionName !== undefined ? `/${p.parentRef.sectionName}` : ""}`;
        out.push(
          `${s.kind} ${s.metadata.namespace ?? ""}/${s.metadata.name} on ${parent}: ${c.type}=${c.status} (${c.reason}) ${c.message}`.trim(),
        );
      }
    }
  }
  return out;
}

export function explainRequest(
  ir: ExplainIR,
  statuses: readonly StatusEntry[],
  q: RequestQuery,
): RequestExplanation {
  const host = q.host.toLowerCase().replace(/:\d+$/, "");
  const url = new URL(q.path, "http://x");
  const path = url.pathname;
  const reasons: string[] = [];
  const verdicts: RuleVerdict[] = [];
  const gateways = ir.gateways.filter(
    (g) => q.gateway === undefined || `${g.namespace}/${g.name}` === q.gateway,
  );
  if (gateways.length === 0)
    reasons.push(
      q.gateway === undefined ? "no Gateway is programmed" : `Gateway ${q.gateway} is not programmed`,
    );
  // Per (gateway, port): the listener that takes the host.
  for (const g of gateways) {
    const byPort = new Map<number, IRListener[]>();
    for (const l of g.listeners)
      if (isHttp(l) && (q.port === undefined || l.port === q.port))
        byPort.set(l.port, [...(byPort.get(l.port) ?? []), l]);
    if (byPort.size === 0) {
      reasons.push(
        `Gateway ${g.namespace}/${g.name} has no HTTP or HTTPS listener${q.port !== undefined ? ` on port ${q.port}` : ""}`,
      );
      continue;
    }
    for (const [port, listeners] of byPort) {
      const ranked = listeners
        .map((l) => ({ l, score: hostMatches(l.hostname, host) }))
        .filter((x) => x.score >= 0)
        .sort((a, b) => b.score - a.score);
      const l = ranked[0]?.l;
      const where = `Gateway ${g.namespace}/${g.name} port ${port}`;
      if (l === undefined) {
        reasons.push(
          `${where}: no listener accepts host ${host} (listener hostnames: ${listeners.map((x) => `${x.name}=${x.hostname ?? "*"}`).join(", ")})`,
        );
        continue;
      }
      const hosts = l.virtualHosts ?? [];
      const vh = hosts
        .map((v) => ({ v, score: hostMatches(v.hostname, host) }))
        .filter((x) => x.score >= 0)
        .sort((a, b) => b.score - a.score)[0]?.v;
      if (vh === undefined) {
        reasons.push(
          `${where} listener ${l.name}: no attached route has hostname ${host} (route hostnames here: ${hosts.map((v) => v.hostname).join(", ") || "none"}): 404`,
        );
        continue;
      }
      const misses: string[] = [];
      const rule = vh.rules.find((r) => {
        const why = mismatch(r, q, path, url.searchParams);
        if (why !== undefined)
          misses.push(
            `${r.route.kind} ${r.route.namespace}/${r.route.name} rule ${r.ruleName ?? r.ruleIndex}: needs ${why}`,
          );
        return why === undefined;
      });
      if (rule === undefined) {
        reasons.push(
          `${where} listener ${l.name} host ${vh.hostname}: no rule matches ${q.method ?? "GET"} ${q.path} (404); rules in order: ${misses.join("; ")}`,
        );
        continue;
      }
      verdicts.push(verdict(g, l, vh, rule));
    }
  }
  if (verdicts.length === 0) {
    const problems = routeProblems(statuses);
    if (problems.length > 0) reasons.push(`routes with problems in their status: ${problems.join(" | ")}`);
  }
  return { served: verdicts.length > 0, verdicts, reasons };
}

export interface RouteExplanation {
  found: boolean;
  /** Status conditions per parent, one line each. */
  conditions: string[];
  /** Where its rules are served. */
  served: RuleVerdict[];
  reasons: string[];
}

export function explainRoute(
  ir: ExplainIR,
  statuses: readonly StatusEntry[],
  ref: { kind: string; namespace: string; name: string },
): RouteExplanation {
  const entry = statuses.find(
    (s) =>
      s.kind.toLowerCase() === ref.kind.toLowerCase() &&
      s.metadata.name === ref.name &&
      (s.metadata.namespace ?? "") === ref.namespace,
  );
  const conditions: string[] = [];
  const parents = (entry?.status["parents"] ?? []) as Array<{
    parentRef?: { name?: string; namespace?: string; sectionName?: string; port?: number };
    conditions?: Condition[];
  }>;
  for (const p of parents) {
    const parent = `${p.parentRef?.namespace ?? ref.namespace}/${p.parentRef?.name ?? "?"}${p.parentRef?.sectionName !== undefined ? ` section ${p.parentRef.sectionName}` : ""}`;
    for (const c of p.conditions ?? [])
      conditions.push(
        `${parent}: ${c.type}=${c.status} (${c.reason})${c.message !== "" ? ` ${c.message}` : ""}`,
      );
  }
  const served: RuleVerdict[] = [];
  for (const g of ir.gateways)
    for (const l of g.listeners)
      for (const vh of l.virtualHosts ?? [])
        for (const r of vh.rules)
          if (
            r.route.kind.toLowerCase() === ref.kind.toLowerCase() &&
            r.route.namespace === ref.namespace &&
            r.route.name === ref.name
          )
            served.push(verdict(g, l, vh, r));
  const reasons: string[] = [];
  if (entry === undefined)
    reasons.push(
      `no ${ref.kind} ${ref.namespace}/${ref.name} with a parent handled by this controller (missing, or its parentRefs name no Gateway of this GatewayClass)`,
    );
  else if (parents.length === 0)
    reasons.push("its status has no parents: no parentRef names a Gateway of this controller");
  if (entry !== undefined && served.length === 0)
    reasons.push("none of its rules is in the configuration in effect: see the conditions above");
  return { found: entry !== undefined, conditions, served, reasons };
}

export function formatVerdict(v: RuleVerdict): string {
  return [
    `Gateway ${v.gateway}, listener ${v.listener} (${v.protocol} port ${v.port}), host ${v.virtualHost}`,
    `  → ${v.route.kind} ${v.route.namespace}/${v.route.name} rule ${v.rule} (rule ${v.ruleIndex}, match ${v.matchIndex}): ${v.match}`,
    `    backends: ${v.backends.join(", ") || "none (answers 500)"}`,
  ].join("\n");
}
