// HTTPRoute: rules → IR rules per (listener, hostname), plus the route's conditions.
import type {
  IRBackend,
  IRHTTPMatch,
  IRHTTPRule,
  IRMirror,
  IRWeightedBackend,
  IRSessionPersistence,
} from "../../ir/types.ts";
import type { HTTPRoute } from "../../resources/generated/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import { resolveBackendRef, type RefSource } from "../backends.ts";
import * as cond from "../conditions.ts";
import type { ConditionSpec } from "../conditions.ts";
import { parseDuration } from "../duration.ts";
import { GATEWAY_GROUP } from "../gateway.ts";
import type { MatchCandidate } from "../precedence.ts";
import { convertFilters, filterProblem, mirrorPercent, type HTTPRouteRule } from "./filters.ts";
import type { ListenerAttachment, ParentAttachment } from "./parents.ts";

/** One IR rule with what the precedence comparator needs to order it. */
export interface RuleEntry {
  candidate: MatchCandidate;
  rule: IRHTTPRule;
}

/** Where the translated rules go: per listener id, per hostname. Filled by emitHTTPRoute. */
export type RuleSink = (listenerId: string, hostname: string, entry: RuleEntry) => void;

interface RuleDraft {
  index: number;
  rule: HTTPRouteRule;
  matches: IRHTTPMatch[];
  backends: IRWeightedBackend[];
  mirrors: Map<number, IRMirror | undefined>;
  /** Why the rule cannot be served as written (it then answers 500). */
  invalid?: string;
  /** A rule-level filter cannot be applied (unresolved ExtensionRef): the rule answers 500. */
  failClosed?: boolean;
  timeouts?: IRHTTPRule["timeouts"];
  retry?: IRHTTPRule["retry"];
  sessionPersistence?: IRSessionPersistence;
}

export interface HTTPRouteResult {
  /** Conditions added to every parent (ResolvedRefs, PartiallyInvalid), and whether Accepted turns False. */
  conditions: ConditionSpec[];
  rejected?: ConditionSpec;
  drafts: RuleDraft[];
}

type RouteRefFailure = { reason: cond.RouteRefReason; message: string };

/** Translates the listener-independent parts of an HTTPRoute and registers its backends. */
export function translateHTTPRoute(
  snapshot: Snapshot,
  route: HTTPRoute,
  backends: Map<string, IRBackend>,
): HTTPRouteResult {
  const namespace = route.metadata.namespace ?? "default";
  const from: RefSource = { group: GATEWAY_GROUP, kind: "HTTPRoute", namespace };
  const refFailures: RouteRefFailure[] = [];
  const resolved = new Map<string, IRBackend>();
  const drafts: RuleDraft[] = (route.spec.rules ?? [{}]).map((rule, index) => {
    const field = `spec.rules[${index}]`;
    const draft: RuleDraft = { index, rule, matches: matchesOf(rule), backends: [], mirrors: new Map() };
    const problems: string[] = [];
    for (const [i, f] of (rule.filters ?? []).entries()) {
      const problem = filterProblem(f, `${field}.filters[${i}]`);
      if (problem === undefined) continue;
      if (!problem.unresolvedRef) problems.push(problem.message);
      else {
        refFailures.push({ reason: "InvalidKind", message: problem.message });
        draft.failClosed = true;
      }
    }

    for (const [i, f] of (rule.filters ?? []).entries()) {
      if (f.type !== "RequestMirror" || f.requestMirror === undefined) continue;
      const r = resolveBackendRef(
        snapshot,
        from,
        f.requestMirror.backendRef,
        "http",
        `${field}.filters[${i}].requestMirror.backendRef`,
      );
      if (r.ok) {
        resolved.set(r.backend.id, r.backend);
        draft.mirrors.set(i, { backend: r.backend.id, percent: mirrorPercent(f.requestMirror) });
      } else {
        refFailures.push(r);
        draft.mirrors.set(i, undefined);
      }
    }

    for (const [i, ref] of (rule.backendRefs ?? []).entries()) {
      const bfield = `${field}.backendRefs[${i}]`;
      const weight = ref.weight ?? 1;
      // A backendRef-level filter that cannot be applied fails the requests sent to that backend.
      let unusable = false;
      for (const [j, f] of (ref.filters ?? []).entries()) {
        const problem = filterProblem(f, `${bfield}.filters[${j}]`);
        if (problem === undefined) continue;
        unusable = true;
        if (problem.unresolvedRef) refFailures.push({ reason: "InvalidKind", message: problem.message });
        else problems.push(problem.message);
      }
      const r = resolveBackendRef(snapshot, from, ref, "http", bfield);
      if (!r.ok) refFailures.push(r);
      if (!r.ok || unusable) {
        draft.backends.push({ weight, filters: [], invalid: true });
        continue;
      }
      resolved.set(r.backend.id, r.backend);
      draft.backends.push({ backend: r.backend.id, weight, filters: [] });
    }

    const timeouts = rule.timeouts;
    if (timeouts !== undefined) {
      const request = timeouts.request !== undefined ? parseDuration(timeouts.request) : undefined;
      const backendRequest =
        timeouts.backendRequest !== undefined ? parseDuration(timeouts.backendRequest) : undefined;
      if (
        request !== undefined &&
        backendRequest !== undefined &&
        request !== 0 &&
        backendRequest > request
      ) {
        problems.push(
          `${field}.timeouts.backendRequest (${timeouts.backendRequest}) must not exceed timeouts.request (${timeouts.request})`,
        );
      }
      draft.timeouts = {
        ...(request !== undefined ? { requestMs: request } : {}),
        ...(backendRequest !== undefined ? { backendRequestMs: backendRequest } : {}),
      };
    }
    if (rule.retry !== undefined) {
      const backoff = rule.retry.backoff !== undefined ? parseDuration(rule.retry.backoff) : undefined;
      draft.retry = {
        codes: [...(rule.retry.codes ?? [])].sort((a, b) => a - b),
        ...(rule.retry.attempts !== undefined ? { attempts: rule.retry.attempts } : {}),
        ...(backoff !== undefined ? { backoffMs: backoff } : {}),
      };
    }
    if (rule.sessionPersistence !== undefined) {
      const sp = rule.sessionPersistence;
      const absolute = sp.absoluteTimeout !== undefined ? parseDuration(sp.absoluteTimeout) : undefined;
      const idle = (sp as { idleTimeout?: string }).idleTimeout;
      const idleMs = idle !== undefined ? parseDuration(idle) : undefined;
      draft.sessionPersistence = {
        type: sp.type ?? "Cookie",
        name: sp.sessionName ?? `gatehouse-session-${index}`,
        lifetime: sp.cookieConfig?.lifetimeType ?? "Session",
        ...(absolute !== undefined ? { absoluteTimeoutMs: absolute } : {}),
        ...(idleMs !== undefined ? { idleTimeoutMs: idleMs } : {}),
      };
    }
    if (problems.length > 0) draft.invalid = problems.join("; ");
    return draft;
  });

  // Register only the backends of rules that will forward traffic (rules answering 500 use none).
  for (const d of drafts) {
    if (d.invalid !== undefined || d.failClosed === true) continue;
    const ids = [...d.backends.map((b) => b.backend), ...[...d.mirrors.values()].map((m) => m?.backend)];
    for (const id of ids) {
      const backend = id === undefined ? undefined : resolved.get(id);
      if (backend !== undefined) backends.set(backend.id, backend);
    }
  }

  const conditions: ConditionSpec[] = [];
  const first = refFailures[0];
  conditions.push(
    first === undefined
      ? cond.routeResolvedRefs()
      : cond.routeUnresolvedRefs(first.reason, refFailures.map((f) => f.message).join("; ")),
  );
  const invalid = drafts.filter((d) => d.invalid !== undefined);
  const result: HTTPRouteResult = { conditions, drafts };
  if (invalid.length > 0) {
    const message = invalid.map((d) => d.invalid).join("; ");
    if (invalid.length === drafts.length) result.rejected = cond.routeUnsupportedValue(message);
    else {
      // The spec wants the message of a rule-dropping implementation to start with "Dropped Rule".
      // The dropped rule keeps its matches and answers 500, as a filter that cannot be applied "MUST
      // NOT be skipped" (HTTPRouteFilter.type).
      const rules = invalid.map((d) => `spec.rules[${d.index}]`).join(", ");
      conditions.push(
        cond.routePartiallyInvalid(
          `Dropped Rule ${rules} (requests ${invalid.length === 1 ? "it matches get" : "they match get"} HTTP 500): ${message}`,
        ),
      );
    }
  }
  return result;
}

/** The rule's matches with defaults: no matches means "PathPrefix /". */
function matchesOf(rule: HTTPRouteRule): IRHTTPMatch[] {
  const matches = rule.matches === undefined || rule.matches.length === 0 ? [{}] : rule.matches;
  return matches.map((m) => ({
    path: { type: m.path?.type ?? "PathPrefix", value: m.path?.value ?? "/" },
    headers: firstPerName(m.headers ?? []).map((h) => ({
      type: h.type ?? "Exact",
      name: h.name,
      value: h.value,
    })),
    queryParams: (m.queryParams ?? []).map((q) => ({
      type: q.type ?? "Exact",
      name: q.name,
      value: q.value,
    })),
    ...(m.method !== undefined ? { method: m.method } : {}),
  }));
}

/**
 * Header matches without later entries of an equivalent (case-insensitive) name: "If multiple entries
 * specify equivalent header names, only the first entry with an equivalent name MUST be considered for
 * a match. Subsequent entries with an equivalent header name MUST be ignored."
 */
function firstPerName<T extends { name: string }>(headers: readonly T[]): T[] {
  const seen = new Set<string>();
  return headers.filter((h) => {
    const key = h.name.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Emits the IR rules of an accepted HTTPRoute on each programmed listener it attached to; returns the
 * number of such listeners (0: the route is served nowhere).
 */
export function emitHTTPRoute(
  route: HTTPRoute,
  result: HTTPRouteResult,
  attachments: readonly ParentAttachment[],
  sink: RuleSink,
): number {
  const namespace = route.metadata.namespace ?? "default";
  const seen = new Set<string>();
  const targets: ListenerAttachment[] = [];
  for (const a of attachments) {
    if (!a.accepted) continue;
    for (const la of a.listeners) {
      if (!la.listener.programmed || seen.has(la.listener.id)) continue;
      seen.add(la.listener.id);
      targets.push(la);
    }
  }
  for (const { listener, hostnames } of targets) {
    const protocol = listener.listener.protocol === "HTTPS" ? "HTTPS" : "HTTP";
    for (const draft of result.drafts) {
      draft.matches.forEach((match, matchIndex) => {
        const ctx = {
          listenerProtocol: protocol,
          listenerPort: listener.listener.port,
          prefix: match.path.type === "PathPrefix" ? match.path.value : undefined,
          mirrors: draft.mirrors,
        } as const;
        const rule = buildRule(route, namespace, draft, match, matchIndex, ctx);
        const candidate: MatchCandidate = {
          routeCreationTimestamp: route.metadata.creationTimestamp ?? "",
          routeNamespace: namespace,
          routeName: route.metadata.name,
          ruleIndex: draft.index,
          matchIndex,
          path: match.path,
          ...(match.method !== undefined ? { method: match.method } : {}),
          headerCount: match.headers.length,
          queryParamCount: match.queryParams.length,
        };
        for (const hostname of hostnames) sink(listener.id, hostname, { candidate, rule });
      });
    }
  }
  return targets.length;
}

function buildRule(
  route: HTTPRoute,
  namespace: string,
  draft: RuleDraft,
  match: IRHTTPMatch,
  matchIndex: number,
  ctx: Parameters<typeof convertFilters>[1],
): IRHTTPRule {
  const base: IRHTTPRule = {
    id: `httproute/${namespace}/${route.metadata.name}/rule/${draft.index}/match/${matchIndex}`,
    route: { kind: "HTTPRoute", namespace, name: route.metadata.name },
    ruleIndex: draft.index,
    matchIndex,
    ...(draft.rule.name !== undefined ? { ruleName: draft.rule.name } : {}),
    match,
    filters: [],
    backends: [],
  };
  // No backends and no redirect: the data plane answers 500.
  if (draft.invalid !== undefined || draft.failClosed === true) return base;
  const filters = convertFilters(draft.rule.filters ?? [], ctx);
  if ("error" in filters) return base;
  const backends: IRWeightedBackend[] = [];
  for (const [i, b] of draft.backends.entries()) {
    const ref = draft.rule.backendRefs?.[i];
    const bf = convertFilters(ref?.filters ?? [], ctx);
    backends.push(
      "error" in bf ? { weight: b.weight, filters: [], invalid: true } : { ...b, filters: bf.filters },
    );
  }
  return {
    ...base,
    filters: filters.filters,
    backends,
    ...(draft.timeouts !== undefined && Object.keys(draft.timeouts).length > 0
      ? { timeouts: draft.timeouts }
      : {}),
    ...(draft.retry !== undefined ? { retry: draft.retry } : {}),
    ...(draft.sessionPersistence !== undefined ? { sessionPersistence: draft.sessionPersistence } : {}),
  };
}
