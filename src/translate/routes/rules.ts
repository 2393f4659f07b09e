// The rule machinery shared by HTTPRoute and GRPCRoute. Both kinds have rules of filters, backendRefs
// (with their own filters) and session persistence, and both become IR HTTP rules on virtual hosts;
// they differ only in their matches (routes/http.ts, routes/grpc.ts), in the backend protocols they
// can use, and in their precedence comparator.
import { createHash } from "node:crypto";
import type {
  IRBackend,
  IRExternalAuth,
  IRHTTPMatch,
  IRHTTPRule,
  IRMirror,
  IRSessionPersistence,
  IRWeightedBackend,
} from "../../ir/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import { resolveBackendRef, type ProtocolFamily, type RefSource } from "../backends.ts";
import * as cond from "../conditions.ts";
import type { ConditionSpec } from "../conditions.ts";
import { parseDuration } from "../duration.ts";
import { GATEWAY_GROUP } from "../gateway.ts";
import {
  routeIdentityOf,
  type GRPCMatchCandidate,
  type MatchCandidate,
  type RouteIdentity,
  type RouteMatchCandidate,
} from "../precedence.ts";
import type { DataplaneValidators } from "../../dataplane/capabilities.ts";
import { behaviourProblems, filterProblems } from "./capabilities.ts";
import { convertFilters, externalAuth, filterProblem, mirrorPercent, type HTTPRouteRule } from "./filters.ts";
import type { ListenerAttachment, ParentAttachment } from "./parents.ts";

/** Route kinds whose rules go onto HTTP and HTTPS virtual hosts. */
export type HTTPLikeKind = "HTTPRoute" | "GRPCRoute";

/**
 * What the two kinds' rules have in common. A GRPCRouteRule is one of these (its filters are a subset
 * of HTTPRoute's, and it has no timeouts or retry).
 */
export type CommonRule = Pick<
  HTTPRouteRule,
  "name" | "filters" | "backendRefs" | "timeouts" | "retry" | "sessionPersistence"
>;

/** The route fields the shared code reads. */
export interface HTTPLikeRoute {
  metadata: { name: string; namespace?: string; creationTimestamp?: string };
}

type Keyless<T> = Omit<T, keyof RouteIdentity | "ruleIndex" | "matchIndex">;

/** What the precedence comparator of the route's kind needs about one match, besides its position. */
export type MatchOrder =
  ({ kind: "HTTPRoute" } & Keyless<MatchCandidate>) | ({ kind: "GRPCRoute" } & Keyless<GRPCMatchCandidate>);

/** One match of one rule: the IR match and its precedence key. */
export interface MatchDraft {
  match: IRHTTPMatch;
  order: MatchOrder;
  /**
   * The match cannot be expressed (a malformed regular expression): it is left out of the IR, and its
   * rule is invalid. Its index stays taken, so the other matches keep their IR ids.
   */
  unusable?: true;
}

/** One IR rule with what the precedence comparator needs to order it. */
export interface RuleEntry {
  candidate: RouteMatchCandidate;
  rule: IRHTTPRule;
}

/** Where the translated rules go: per listener id, per hostname. Filled by {@link emitRoute}. */
export type RuleSink = (listenerId: string, hostname: string, entry: RuleEntry) => void;

export interface RuleDraft {
  index: number;
  rule: CommonRule;
  matches: MatchDraft[];
  backends: IRWeightedBackend[];
  mirrors: Map<number, IRMirror | undefined>;
  /** ExternalAuth filters whose service resolved, by filter index. */
  externalAuths: Map<number, IRExternalAuth>;
  /** Why the rule cannot be served as written (it then answers with an error). */
  invalid?: string;
  /** A rule-level filter cannot be applied (unresolved ExtensionRef): the rule answers with an error. */
  failClosed?: boolean;
  timeouts?: IRHTTPRule["timeouts"];
  retry?: IRHTTPRule["retry"];
  sessionPersistence?: IRSessionPersistence;
}

export interface RouteResult {
  /** Conditions added to every parent (ResolvedRefs, PartiallyInvalid), and whether Accepted turns False. */
  conditions: ConditionSpec[];
  rejected?: ConditionSpec;
  drafts: RuleDraft[];
}

/** How one kind of route feeds {@link translateRules}. */
export interface RulesInput<R extends CommonRule> {
  kind: HTTPLikeKind;
  namespace: string;
  /** The route's name (with kind and namespace, it names a rule's default session). */
  name: string;
  rules: readonly R[];
  /** Backend protocols the kind can use (HTTP routes: "http"; gRPC routes: "grpc", i.e. HTTP/2). */
  family: ProtocolFamily;
  /**
   * The rule's matches; a problem pushed onto `problems` makes the rule invalid (a match the data
   * plane cannot express is marked `unusable`, see matchDrafts).
   */
  matchesOf: (rule: R, field: string, problems: string[], validators: DataplaneValidators) => MatchDraft[];
  /** What the data plane can express (called while each rule is built). */
  validators: DataplaneValidators;
}

type RouteRefFailure = { reason: cond.RouteRefReason; message: string };

/** Translates the listener-independent parts of a route's rules and registers their backends. */
export function translateRules<R extends CommonRule>(
  snapshot: Snapshot,
  input: RulesInput<R>,
  backends: Map<string, IRBackend>,
): RouteResult {
  const from: RefSource = { group: GATEWAY_GROUP, kind: input.kind, namespace: input.namespace };
  const refFailures: RouteRefFailure[] = [];
  const resolved = new Map<string, IRBackend>();
  const drafts: RuleDraft[] = input.rules.map((rule, index) => {
    const field = `spec.rules[${index}]`;
    const problems: string[] = [];
    const matches = input.matchesOf(rule, field, problems, input.validators);
    const draft: RuleDraft = {
      index,
      rule,
      matches,
      backends: [],
      mirrors: new Map(),
      externalAuths: new Map(),
    };
    for (const [i, f] of (rule.filters ?? []).entries()) {
      problems.push(...filterProblems(input.validators, f, `${field}.filters[${i}]`, false));
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
      const mfield = `${field}.filters[${i}].requestMirror.backendRef`;
      const r = resolveBackendRef(snapshot, from, f.requestMirror.backendRef, input.family, mfield);
      if (r.ok) {
        resolved.set(r.backend.id, r.backend);
        draft.mirrors.set(i, { backend: r.backend.id, percent: mirrorPercent(f.requestMirror) });
      } else {
        if (r.policyFailure !== true) refFailures.push(r);
        draft.mirrors.set(i, undefined);
      }
    }

    // An authorization service that cannot be resolved must not let requests through: the rule
    // answers with an error (fail closed), and ResolvedRefs says why.
    for (const [i, f] of (rule.filters ?? []).entries()) {
      if (f.type !== "ExternalAuth" || f.externalAuth === undefined) continue;
      const afield = `${field}.filters[${i}].externalAuth.backendRef`;
      const family = f.externalAuth.protocol === "GRPC" ? "grpc" : "http";
      const r = resolveBackendRef(snapshot, from, f.externalAuth.backendRef, family, afield);
      if (r.ok) {
        resolved.set(r.backend.id, r.backend);
        draft.externalAuths.set(i, externalAuth(f.externalAuth, r.backend.id));
      } else {
        if (r.policyFailure !== true) refFailures.push(r);
        draft.failClosed = true;
      }
    }

    for (const [i, ref] of (rule.backendRefs ?? []).entries()) {
      const bfield = `${field}.backendRefs[${i}]`;
      const weight = ref.weight ?? 1;
      // A backendRef-level filter that cannot be applied fails the requests sent to that backend.
      let unusable = false;
      for (const [j, f] of (ref.filters ?? []).entries()) {
        const valueProblems = filterProblems(input.validators, f, `${bfield}.filters[${j}]`, true);
        if (valueProblems.length > 0) {
          unusable = true;
          problems.push(...valueProblems);
        }
        const problem = filterProblem(f, `${bfield}.filters[${j}]`, true);
        if (problem === undefined) continue;
        unusable = true;
        if (problem.unresolvedRef) refFailures.push({ reason: "InvalidKind", message: problem.message });
        else problems.push(problem.message);
      }
      const r = resolveBackendRef(snapshot, from, ref, input.family, bfield);
      if (!r.ok && r.policyFailure !== true) refFailures.push(r);
      if (!r.ok || unusable) {
        draft.backends.push({ weight, filters: [], invalid: true });
        continue;
      }
      resolved.set(r.backend.id, r.backend);
      draft.backends.push({ backend: r.backend.id, weight, filters: [] });
    }

    addTimingAndPersistence(draft, field, problems, input.validators, () => defaultSessionName(input, index));
    if (problems.length > 0) draft.invalid = problems.join("; ");
    return draft;
  });

  // Register only the backends of rules that will forward traffic (rules answering an error use none).
  for (const d of drafts) {
    if (d.invalid !== undefined || d.failClosed === true) continue;
    const ids = [
      ...d.backends.map((b) => b.backend),
      ...[...d.mirrors.values()].map((m) => m?.backend),
      ...[...d.externalAuths.values()].map((a) => a.backend),
    ];
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
  const result: RouteResult = { conditions, drafts };
  if (invalid.length > 0) {
    const message = invalid.map((d) => d.invalid).join("; ");
    if (invalid.length === drafts.length) result.rejected = cond.routeUnsupportedValue(message);
    else {
      // The spec wants the message of a rule-dropping implementation to start with "Dropped Rule".
      // The dropped rule keeps its matches and answers with an error, as a filter that cannot be
      // applied "MUST NOT be skipped" (HTTPRouteFilter.type, GRPCRouteFilter.type).
      const rules = invalid.map((d) => `spec.rules[${d.index}]`).join(", ");
      const status = input.kind === "GRPCRoute" ? "gRPC status UNAVAILABLE" : "HTTP 500";
      conditions.push(
        cond.routePartiallyInvalid(
          `Dropped Rule ${rules} (requests ${invalid.length === 1 ? "it matches get" : "they match get"} ${status}): ${message}`,
        ),
      );
    }
  }
  return result;
}

/**
 * The session name of a rule without `sessionName`: "If SessionName is not specified, then a unique
 * cookie name should be generated" (GEP-1619), so rules never share sessions by accident. Stable
 * while the route keeps its name and the rule its place.
 */
export function defaultSessionName(
  route: { kind: string; namespace: string; name: string },
  index: number,
): string {
  const id = `${route.kind}\0${route.namespace}\0${route.name}\0${index}`;
  return `gh-session-${createHash("sha256").update(id).digest("hex").slice(0, 12)}`;
}

/** Timeouts and retry (HTTPRoute only) and session persistence (both kinds). */
function addTimingAndPersistence(
  draft: RuleDraft,
  field: string,
  problems: string[],
  validators: DataplaneValidators,
  defaultName: () => string,
): void {
  const { rule } = draft;
  const timeouts = rule.timeouts;
  if (timeouts !== undefined) {
    const request = timeouts.request !== undefined ? parseDuration(timeouts.request) : undefined;
    const backendRequest =
      timeouts.backendRequest !== undefined ? parseDuration(timeouts.backendRequest) : undefined;
    if (request !== undefined && backendRequest !== undefined && request !== 0 && backendRequest > request) {
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
    // v1.6.1 has no idle timeout (removed from the API: GEP-1619 "Alternatives"). An absolute timeout
    // of zero disables it, as the zero duration does for a route's timeouts; a Permanent cookie's
    // lifetime is the absolute timeout, so it cannot be zero.
    const absolute = sp.absoluteTimeout !== undefined ? parseDuration(sp.absoluteTimeout) : undefined;
    const type = sp.type ?? "Cookie";
    const lifetime = sp.cookieConfig?.lifetimeType ?? "Session";
    if (type === "Cookie" && lifetime === "Permanent" && absolute === 0)
      problems.push(
        `${field}.sessionPersistence.absoluteTimeout (${sp.absoluteTimeout}) is the lifetime of a Permanent cookie and must not be zero`,
      );
    draft.sessionPersistence = {
      type,
      name: sp.sessionName ?? defaultName(),
      lifetime,
      ...(absolute !== undefined && absolute > 0 ? { absoluteTimeoutMs: absolute } : {}),
    };
  }
  problems.push(
    ...behaviourProblems(
      validators,
      field,
      rule.retry === undefined || draft.retry === undefined
        ? undefined
        : { ...draft.retry, codes: rule.retry.codes ?? [] },
      draft.sessionPersistence,
    ),
  );
}

/**
 * Header matches without later entries of an equivalent (case-insensitive) name: "If multiple entries
 * specify equivalent header names, only the first entry with an equivalent name MUST be considered for
 * a match. Subsequent entries with an equivalent header name MUST be ignored." (HTTPHeaderMatch.name
 * and GRPCHeaderMatch.name say the same.)
 */
export function firstPerName<T extends { name: string }>(headers: readonly T[]): T[] {
  const seen = new Set<string>();
  return headers.filter((h) => {
    const key = h.name.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Emits the IR rules of an accepted route on each programmed listener it attached to; returns the
 * number of such listeners (0: the route is served nowhere).
 */
export function emitRoute(
  kind: HTTPLikeKind,
  route: HTTPLikeRoute,
  result: RouteResult,
  attachments: readonly ParentAttachment[],
  sink: RuleSink,
): number {
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
  const identity = routeIdentityOf(route);
  for (const { listener, hostnames } of targets) {
    const protocol = listener.listener.protocol === "HTTPS" ? "HTTPS" : "HTTP";
    for (const draft of result.drafts) {
      draft.matches.forEach(({ match, order, unusable }, matchIndex) => {
        if (unusable === true) return;
        const ctx = {
          listenerProtocol: protocol,
          listenerPort: listener.listener.port,
          prefix: match.path.type === "PathPrefix" ? match.path.value : undefined,
          mirrors: draft.mirrors,
          externalAuths: draft.externalAuths,
        } as const;
        const rule = buildRule(kind, identity, draft, match, matchIndex, ctx);
        const candidate: RouteMatchCandidate = { ...order, ...identity, ruleIndex: draft.index, matchIndex };
        for (const hostname of hostnames) sink(listener.id, hostname, { candidate, rule });
      });
    }
  }
  return targets.length;
}

function buildRule(
  kind: HTTPLikeKind,
  identity: RouteIdentity,
  draft: RuleDraft,
  match: IRHTTPMatch,
  matchIndex: number,
  ctx: Parameters<typeof convertFilters>[1],
): IRHTTPRule {
  const { routeNamespace: namespace, routeName: name } = identity;
  const base: IRHTTPRule = {
    id: `${kind.toLowerCase()}/${namespace}/${name}/rule/${draft.index}/match/${matchIndex}`,
    route: { kind, namespace, name },
    ruleIndex: draft.index,
    matchIndex,
    ...(draft.rule.name !== undefined ? { ruleName: draft.rule.name } : {}),
    match,
    filters: [],
    backends: [],
    ...(kind === "GRPCRoute" ? { grpc: true } : {}),
  };
  // No backends and no redirect: the data plane answers with an error.
  if (draft.invalid !== undefined || draft.failClosed === true) return base;
  const filters = convertFilters(draft.rule.filters ?? [], ctx);
  if ("error" in filters) return base;
  const backends: IRWeightedBackend[] = [];
  for (const [i, b] of draft.backends.entries()) {
    const ref = draft.rule.backendRefs?.[i];
    const bf = convertFilters(ref?.filters ?? [], ctx);
    backends.push(
      "error" in bf || b.invalid === true
        ? { weight: b.weight, filters: [], invalid: true }
        : { ...b, filters: bf.filters },
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
