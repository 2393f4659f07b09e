// Per-rule data and lines that do not depend on the frontend: backend choices (weights maps),
// timeouts map, filter lines, and the session persistence pin line.
import type { IRHTTPRule, IRL4Route, IRListener, IRTLSRoute } from "../../../ir/types.ts";
import type { BackendSet, Profile } from "./backends.ts";
import { ERROR_BACKEND } from "./fast.ts";
import { filterLines, type FilterLines } from "./filters.ts";
import type { RenderContext } from "./model.ts";
import type { RuleInstance } from "./routing.ts";
import { pinLines, sessionProfile } from "./session.ts";
import { addChoices, MAP_TIMEOUTS, ruleTimeoutMs } from "./weights.ts";

export interface PreparedRule {
  instance: RuleInstance;
  /** Number of weighted entries (choice lines needed); 0 when the rule never routes. */
  choices: number;
  /** The frontend lines reading the session's backendRef (session persistence). */
  pin?: string[];
  /**
   * For fast routing (fast.ts): the HAProxy backend of a rule that matches a PathPrefix only and goes
   * to a single backend with no per-choice work (ERROR_BACKEND when none is valid). Its rule-level
   * filters are allowed (they key on txn.gh_rule, which fast routing sets when any rule has some).
   */
  fast?: string;
  filters: FilterLines;
  backendFilters: FilterLines[];
}

/**
 * The retry settings of a rule's backend variant. `attempts` (default 1) is HAProxy's `retries`: both
 * count retries after the first try. Connection errors and the codes are always retried. A backend
 * request that times out is retried (`response-timeout`) only when the rule has a backendRequest
 * timeout and every try can time out within the request timeout ((attempts + 1) × backendRequest ≤
 * request): HAProxy 2.6 has no timeout on the whole request, and the request timeout must bound the
 * tries together. Otherwise a timeout ends the request (504).
 */
export function retryProfile(rule: Pick<IRHTTPRule, "retry" | "timeouts">): Profile["retry"] {
  const retry = rule.retry;
  if (retry === undefined) return undefined;
  const attempts = retry.attempts ?? 1;
  const profile: NonNullable<Profile["retry"]> = {
    attempts,
    codes: [...new Set(retry.codes)].sort((a, b) => a - b),
  };
  const backendMs = rule.timeouts?.backendRequestMs;
  const requestMs = rule.timeouts?.requestMs;
  if (
    attempts > 0 &&
    backendMs !== undefined &&
    backendMs > 0 &&
    (requestMs === undefined || requestMs === 0 || requestMs >= (attempts + 1) * backendMs)
  ) {
    profile.timeout = true;
  }
  return profile;
}

function ruleProfile(backends: BackendSet, id: string, rule: IRHTTPRule): Profile {
  const profile = backends.httpProfile(id, rule.grpc === true);
  const retry = retryProfile(rule);
  if (retry !== undefined) profile.retry = retry;
  const sp = rule.sessionPersistence;
  if (sp !== undefined) Object.assign(profile, sessionProfile(sp, rule.match));
  return profile;
}

export function prepareRule(ctx: RenderContext, backends: BackendSet, r: RuleInstance): PreparedRule {
  const rule = r.rule;
  const redirects = rule.filters.some((f) => f.type === "RequestRedirect");
  const sp = rule.sessionPersistence;
  // backendRef filters and persistence read the per-choice state (txn.gh_choice): no direct lookup.
  const direct = sp === undefined && rule.backends.every((wb) => wb.filters.length === 0);
  const choices = redirects
    ? 0
    : addChoices(
        ctx,
        r.rid,
        rule.backends,
        (wb) => backends.proxy(wb.backend ?? "", ruleProfile(backends, wb.backend ?? "", rule)),
        sp === undefined ? { direct } : { tagFor: (wb) => backends.tag(wb.backend ?? "") },
      );
  // Mirrored copies go to the mirror backend's plain profile (no retries, no persistence).
  const mirrorProxy = (id: string): string =>
    backends.proxy(id, backends.httpProfile(id, rule.grpc === true));
  const timeout = ruleTimeoutMs(rule.timeouts);
  if (timeout !== undefined) ctx.map(MAP_TIMEOUTS).add(r.rid, timeout);
  const prepared: PreparedRule = {
    instance: r,
    choices,
    filters: filterLines(rule.filters, {
      cond: `{ var(txn.gh_rule) -m str ${r.rid} }`,
      id: r.rid,
      acl: r.rid,
      mirrorProxy,
    }),
    backendFilters: rule.backends.map((wb, k) =>
      filterLines(wb.filters, {
        cond: `{ var(txn.gh_choice) -m str ${r.rid}/${k} }`,
        id: `${r.rid}/${k}`,
        acl: `${r.rid}_b${k}`,
        mirrorProxy,
      }),
    ),
  };
  if (sp !== undefined && choices > 0) prepared.pin = pinLines(r.rid, sp);
  const fast = fastBackend(rule, timeout, (id) => backends.proxy(id, ruleProfile(backends, id, rule)));
  if (fast !== undefined) prepared.fast = fast;
  return prepared;
}

/** See PreparedRule.fast. */
function fastBackend(
  rule: IRHTTPRule,
  timeoutMs: number | undefined,
  proxyOf: (backend: string) => string,
): string | undefined {
  const m = rule.match;
  if (m.path.type !== "PathPrefix" || m.headers.length > 0 || m.queryParams.length > 0) return undefined;
  if (m.method !== undefined || timeoutMs !== undefined) return undefined;
  if (rule.sessionPersistence !== undefined || rule.backends.some((wb) => wb.filters.length > 0))
    return undefined;
  const drawn = rule.backends.filter((wb) => wb.weight > 0);
  if (drawn.length > 1) return undefined;
  const only = drawn[0];
  if (only?.backend === undefined || only.invalid === true) return ERROR_BACKEND;
  return proxyOf(only.backend);
}

export function l4RouteId(ctx: RenderContext, listener: IRListener, route: IRL4Route | IRTLSRoute): string {
  return ctx.shortId(
    "t",
    `${listener.protocol}\0${listener.id}\0${route.route.kind}\0${route.route.namespace}/${route.route.name}`,
  );
}

/** Registers the choices of a TCP/TLS route; returns its entry count. */
export function prepareL4Route(
  ctx: RenderContext,
  backends: BackendSet,
  tid: string,
  route: IRL4Route | IRTLSRoute,
): number {
  return addChoices(ctx, tid, route.backends, (wb) =>
    backends.proxy(wb.backend ?? "", { mode: "tcp", h2: false }),
  );
}
