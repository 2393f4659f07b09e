// Per-rule traffic counters kept by HAProxy itself (RenderOptions.ruleCounters).
//
// One stick table, `gh_rule_stats`, keyed by the rule id (`txn.gh_rule`, the `r…` id of one IR rule
// on one listener and virtual host): every HTTP frontend tracks the matched rule in `sc0` as soon as
// it is known (before filters, so redirects and 500s of rules without a backend count too), and
// HAProxy counts, per entry, requests (`http_req_cnt`), bytes both ways (`bytes_in_cnt`,
// `bytes_out_cnt`) and, from `http-after-response` (which also sees the responses HAProxy makes
// itself: redirects, 500, 503, 504), responses by status class in `gpc(0..4)` = 1xx..5xx.
// `show table gh_rule_stats` on the runtime API reads them; `ruleCounterIdentities` maps the keys
// back to Gateway API names (gateway, listener, route, rule, backends) — see
// src/observability/route-metrics.ts. Requests that match no rule (404) are not tracked.
//
// The table has no expiry (entries are counters, not sessions) and is sized for many more rules than
// a configuration has; when full, HAProxy drops the oldest entries first. A reload starts a new,
// empty table: the reader turns the per-worker counts into monotonic totals.
import type { IR } from "../../../ir/types.ts";
import { word } from "./escape.ts";
import { RenderContext, type RenderOptions, type Section } from "./model.ts";
import { planFrontends } from "./plan.ts";
import { RouteChain } from "./routing.ts";

export const RULE_STATS_TABLE = "gh_rule_stats";
/** Entries the table can hold (keys are 13-character rule ids). */
export const RULE_STATS_SIZE = 262_144;
/** Status classes counted in gpc(0..4). */
export const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;

/** The stick table's section (a backend section holding only the table). */
export function ruleStatsSections(ctx: RenderContext): Section[] {
  if (ctx.options.ruleCounters !== true) return [];
  return [
    {
      header: `backend ${RULE_STATS_TABLE}`,
      lines: [
        `stick-table type string len 16 size ${RULE_STATS_SIZE} store http_req_cnt,bytes_in_cnt,bytes_out_cnt,gpc(${STATUS_CLASSES.length})`,
      ],
    },
  ];
}

/**
 * The line tracking the matched rule; place it where `txn.gh_rule` is set and before any filter.
 * `key` is the sample giving the rule id (default the variable; fast routing passes its map lookup
 * when nothing else needs the variable: one `set-var` less, ≈ 760 instructions per request).
 */
export function ruleTrackLines(ctx: RenderContext, key = "var(txn.gh_rule)"): string[] {
  if (ctx.options.ruleCounters !== true) return [];
  // No rule id (no match): the key fetch fails and nothing is tracked, so no condition is needed.
  return [`http-request track-sc0 ${word(key)} table ${RULE_STATS_TABLE}`];
}

/**
 * The response line counting the status class of tracked requests: one `http-after-response` rule
 * whose condition is an OR of `{ status <class> } { sc_inc_gpc(<i>,0) -m found }` pairs, the common
 * classes first. HAProxy stops at the first pair that holds, so each response increments exactly
 * one counter and costs one rule (five rules, one per class, cost 1,840 more instructions per
 * request: bench/results/routing-cost.md). `sc_inc_gpc` is a fetch with a side effect:
 * `http-after-response` has no `sc-inc-gpc` action in 2.6; the action itself does nothing.
 */
export function statusClassLines(ctx: RenderContext): string[] {
  if (ctx.options.ruleCounters !== true) return [];
  const order = [1, 2, 3, 4, 0]; // 2xx, 3xx, 4xx, 5xx, then 1xx (101 Switching Protocols)
  const pairs = order.map((i) => `{ status ${i + 1}00:${i + 1}99 } { sc_inc_gpc(${i},0) -m found }`);
  return [`http-after-response unset-var(txn.gh_n) if ${pairs.join(" || ")}`];
}

/** Gateway API identity of one counted rule id. */
export interface RuleCounterIdentity {
  gateway: string;
  listener: string;
  hostname: string;
  routeKind: string;
  routeNamespace: string;
  routeName: string;
  /** The rule's name, else its index. */
  rule: string;
  /** Services (`namespace/name:port`) of the rule's valid backendRefs, sorted. */
  backends: string[];
  /** IRHTTPRule.id */
  irRule: string;
}

/**
 * Rule id → identity, computed the way `render` names rules (same ids for the same IR; pure). Use
 * the options the configuration was rendered with.
 */
export function ruleCounterIdentities(ir: IR, options: RenderOptions): Map<string, RuleCounterIdentity> {
  const ctx = new RenderContext(options);
  const plan = planFrontends(ctx, ir.gateways);
  // The HTTP(S) listeners in the order `render` gives them to RouteChain (ids are claimed in order).
  const seen = new Set<string>();
  const refs = plan.frontends
    .flatMap((fe) => fe.listeners)
    .filter((r) => r.listener.protocol === "HTTP" || r.listener.protocol === "HTTPS")
    .filter((r) => !seen.has(r.lid) && seen.add(r.lid) !== undefined);
  const gatewayOf = new Map<string, string>();
  for (const g of ir.gateways) for (const l of g.listeners) gatewayOf.set(l.id, `${g.namespace}/${g.name}`);
  const services = new Map(
    ir.backends.map((b) => [b.id, `${b.source.namespace}/${b.source.name}:${b.port}`]),
  );
  const out = new Map<string, RuleCounterIdentity>();
  for (const i of new RouteChain(ctx, refs).rules) {
    const r = i.rule;
    const backends = [
      ...new Set(
        r.backends.flatMap((b) =>
          b.invalid === true || b.weight === 0 ? [] : [services.get(b.backend) ?? b.backend],
        ),
      ),
    ].sort();
    out.set(i.rid, {
      gateway: gatewayOf.get(i.listener.id) ?? "",
      listener: i.listener.name,
      hostname: i.hostname,
      routeKind: r.route.kind,
      routeNamespace: r.route.namespace,
      routeName: r.route.name,
      rule: r.ruleName ?? String(r.ruleIndex),
      backends,
      irRule: r.id,
    });
  }
  return out;
}
