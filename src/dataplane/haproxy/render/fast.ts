// Fast routing for the common case, at the cost of one key and one map lookup per request.
//
// A frontend qualifies when it has a single catch-all HTTP or HTTPS listener whose virtual hosts are
// exact hostnames or `*`, and whose rules all match on a PathPrefix only and go to one backend with
// no per-choice work (no backendRef filters, timeouts, session persistence, or second weighted
// entry; retries are a backend setting and allowed). Such a listener's routing table is one
// `map_beg` map, `fast.map`, keyed `<host>@<listener>#<prefix>/` → HAProxy backend:
//
// - the key of a request is `<Host, lowercased, cut at the first ':' and the first '@'>@<listener>#<path>/`.
//   Cutting at '@' matters: the Host header is not validated by HAProxy, and a client-chosen `@` would
//   otherwise let a Host name another listener's key. Hostnames in entries never contain '@', so an
//   entry can only match a key whose host part is exactly its hostname.
// - `<host>@<listener>#` (the sentinel) → gh_404: a known hostname whose paths do not match answers
//   404 instead of falling through to the `*` virtual host (hostnames are exclusive, as in the
//   general chain).
// - the `*` virtual host has keys `@<listener>#<prefix>/`, looked up with `@<listener>#<path>/` only
//   when the first lookup found nothing (a key with an empty host part is the same lookup).
// - map_beg finds the longest prefix; PathPrefix rules are in IR order only when longer prefixes come
//   first (the spec's precedence), which is checked, and `/`-terminated keys make the match
//   segment-aware like the general chain.
// - a rule whose backends are all invalid (or weigh 0) maps to gh_500.
// - rule-level filters (header modifiers, rewrites, redirects, mirrors, CORS): when a rule of the
//   listener has some, `fast-rules.map` holds the same keys → rule id (`-` for sentinels), looked up
//   into txn.gh_rule with the same key, and the rules' filter lines follow, as in the general chain.
//
// Adding or removing such a route is a map update. A rule that needs more (a header match, a second
// weighted backend, a timeout, ...) turns the frontend into the general chain: a reload.
import type { IRListener } from "../../../ir/types.ts";
import { comment, word } from "./escape.ts";
import { GRPC_REQUEST, GRPC_UNAVAILABLE, listenerComments, requestFilterLines } from "./frontends.ts";
import { literalListener } from "./hosts.ts";
import { accessLogCaptures } from "./logging.ts";
import { ruleTrackLines, statusClassLines } from "./metrics.ts";
import type { RenderContext, Section } from "./model.ts";
import type { HttpFrontend } from "./plan.ts";
import { normalizePrefix } from "./routing.ts";
import type { PreparedRule } from "./rules.ts";
import { mapKeySafe } from "./syntax.ts";

export const MAP_FAST = "fast";
export const MAP_FAST_RULES = "fast-rules";
export const NOT_FOUND_BACKEND = "gh_404";
export const ERROR_BACKEND = "gh_500";

/** The request's key host: lowercased, without port, cut at '@'. */
const KEY_HOST = "req.fhdr(host),lower,field(1,:),field(1,@)";

/** A fast.map key with its backend and the rule id (`NO_RULE` for a sentinel). */
type Entry = [key: string, backend: string, rid: string];

/** fast-rules.map's value for a sentinel: no rule matched, so no rule's filters apply. */
const NO_RULE = "-";

/** The map entries of a listener, or undefined when one of its rules needs the general chain. */
function fastEntries(listener: IRListener, lid: string, rules: readonly PreparedRule[]): Entry[] | undefined {
  const byHost = new Map<string, PreparedRule[]>();
  for (const p of rules) {
    if (p.fast === undefined) return undefined;
    const list = byHost.get(p.instance.hostname) ?? [];
    list.push(p);
    byHost.set(p.instance.hostname, list);
  }
  const entries: Entry[] = [];
  for (const vh of listener.virtualHosts ?? []) {
    if (vh.hostname !== "*" && vh.hostname.startsWith("*.")) return undefined;
    const scope = `${vh.hostname === "*" ? "" : vh.hostname}@${lid}#`;
    if (!mapKeySafe(scope)) return undefined;
    if (vh.hostname !== "*") entries.push([scope, NOT_FOUND_BACKEND, NO_RULE]);
    let previous = Number.POSITIVE_INFINITY;
    const seen = new Set<string>();
    for (const p of byHost.get(vh.hostname) ?? []) {
      const m = p.instance.rule.match.path;
      const key = `${scope}${normalizePrefix(m.value)}/`;
      // A longer prefix after a shorter one would be found first by map_beg: not IR order.
      if (key.length > previous || !mapKeySafe(key)) return undefined;
      previous = key.length;
      if (seen.has(key)) continue; // unreachable: the earlier rule always wins
      seen.add(key);
      entries.push([key, p.fast ?? ERROR_BACKEND, p.instance.rid]);
    }
  }
  return entries;
}

/**
 * The frontend section when `fe` qualifies for fast routing (filling fast.map), else undefined.
 * `rules` are all prepared HTTP rules (the frontend takes those of its listener).
 */
export function fastFrontend(
  ctx: RenderContext,
  fe: HttpFrontend,
  rules: readonly PreparedRule[],
): Section | undefined {
  // TLS too: with one catch-all listener, the SNI and the Host always name the same listener (no 421).
  const ref = fe.listeners.length === 1 ? fe.listeners[0] : undefined;
  if (ref === undefined || literalListener(fe.listeners) === undefined) return undefined;
  const mine = rules.filter((p) => p.instance.listener === ref.listener);
  const entries = fastEntries(ref.listener, ref.lid, mine);
  if (entries === undefined) return undefined;
  // Rules with filters: their lines are conditioned on txn.gh_rule, found by a second lookup of the
  // same key in fast-rules.map (the same keys, so the same longest prefix wins).
  const filtered = mine.filter((p) => p.filters.request.length > 0 || p.filters.response.length > 0);
  // The rule id in txn.gh_rule: for the filters and for the access log (its `rid`). Rule counters
  // need the id too (metrics.ts), but when nothing else does they track the lookup itself.
  const needRuleVar = filtered.length > 0 || ctx.options.accessLog !== undefined;
  const needRule = needRuleVar || ctx.options.ruleCounters === true;
  // (mapPath declares the map file: only when it is used.)
  const ruleLookup = (): string => `var(txn.gh_k),map_beg(${ctx.mapPath(MAP_FAST_RULES)})`;
  // A listener bound on several addresses has several frontends: their identical entries are added
  // once (a map file keeps the first entry of a key).
  for (const [k, backend, rid] of entries) {
    ctx.map(MAP_FAST).add(k, backend);
    if (needRule) ctx.map(MAP_FAST_RULES).add(k, rid);
  }
  const lookups: string[] = [
    `http-request set-var(txn.gh_be) ${word(`var(txn.gh_k),map_beg(${ctx.mapPath(MAP_FAST)})`)}`,
  ];
  if (needRuleVar) lookups.push(`http-request set-var(txn.gh_rule) ${word(ruleLookup())}`);
  const lines = [
    "mode http",
    `bind ${fe.bind}`,
    ...accessLogCaptures(ctx),
    ...listenerComments(fe.listeners),
    `# ${comment(`fast routing: ${MAP_FAST}.map${filtered.length > 0 ? `, rules with filters: ${MAP_FAST_RULES}.map` : needRule ? `, rule ids: ${MAP_FAST_RULES}.map` : ""}`)}`,
    `http-request set-var-fmt(txn.gh_k) ${word(`%[${KEY_HOST}]@${ref.lid}#%[path]/`)}`,
    ...lookups,
  ];
  if ((ref.listener.virtualHosts ?? []).some((vh) => vh.hostname === "*")) {
    const notFound = "!{ var(txn.gh_be) -m found }";
    lines.push(`http-request set-var-fmt(txn.gh_k) ${word(`@${ref.lid}#%[path]/`)} if ${notFound}`);
    // The rule first: the backend lookup makes the condition false.
    lines.push(...[...lookups].reverse().map((l) => `${l} if ${notFound}`));
  }
  lines.push("http-request return status 404 default-errorfiles if !{ var(txn.gh_be) -m found }");
  if (ctx.options.ruleCounters === true)
    lines.push(...(needRuleVar ? ruleTrackLines(ctx) : ruleTrackLines(ctx, ruleLookup())));
  lines.push(...requestFilterLines(filtered));
  for (const p of filtered) lines.push(...p.filters.response);
  lines.push(...statusClassLines(ctx));
  lines.push("use_backend %[var(txn.gh_be)]");
  return { header: `frontend ${fe.name}`, lines };
}

/** The backends fast.map names for "no route" and "no valid backend" (gRPC: UNAVAILABLE). */
export function statusBackends(): Section[] {
  return [
    {
      header: `backend ${NOT_FOUND_BACKEND}`,
      lines: ["mode http", "http-request return status 404 default-errorfiles"],
    },
    {
      header: `backend ${ERROR_BACKEND}`,
      lines: [
        "mode http",
        `${GRPC_UNAVAILABLE} if ${GRPC_REQUEST}`,
        "http-request return status 500 default-errorfiles",
      ],
    },
  ];
}
