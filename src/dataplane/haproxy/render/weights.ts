// Weighted backend choice as data. For a rule (or TCP/TLS route) id R with weighted entries k:
//   weights.map  R → total weight;  R/k → cumulative upper bound of entry k (weight-0 entries absent)
//   choices.map  R/k → HAProxy backend name (no entry for an invalid backendRef: → 500/reject)
//   pins.map     R/p<tag> → R/k for session persistence (tag identifies the IRBackend, session.ts)
//   direct.map   R → HAProxy backend name, for HTTP rules whose weights leave one choice and that
//                need no per-choice state (no backendRef filters, no persistence): one lookup
// The frontend first looks R up in direct.map; otherwise it draws `rand mod total` once and takes
// the first k whose bound exceeds the draw. Weight changes are runtime map updates. No backend
// (no entries, all weights 0, an invalid ref drawn) leaves txn.gh_be unset: HTTP answers 500, TCP
// rejects the connection.
import type { IRWeightedBackend } from "../../../ir/types.ts";
import { word } from "./escape.ts";
import type { RenderContext } from "./model.ts";

export const MAP_WEIGHTS = "weights";
export const MAP_CHOICES = "choices";
export const MAP_PINS = "pins";
export const MAP_DIRECT = "direct";
export const MAP_TIMEOUTS = "timeouts";

/**
 * Registers the choices of `key` (a rule or route id). `proxyFor` names the HAProxy backend of an
 * entry; `tagFor` (session persistence) names the IRBackend tag of an entry. With `direct`, a key
 * whose weights leave exactly one entry goes to direct.map instead. Returns the number of choice
 * lines this key needs: its entry count, or 0 when it is resolved directly with a single entry (a
 * directly resolved key with more entries keeps its lines, so re-weighting stays a map update).
 */
export function addChoices(
  ctx: RenderContext,
  key: string,
  entries: readonly IRWeightedBackend[],
  proxyFor: (wb: IRWeightedBackend, k: number) => string,
  options: { tagFor?: (wb: IRWeightedBackend) => string; direct?: boolean } = {},
): number {
  const total = entries.reduce((sum, wb) => sum + (wb.weight > 0 ? wb.weight : 0), 0);
  if (total === 0) return 0;
  const valid = (wb: IRWeightedBackend): boolean => wb.invalid !== true && wb.backend !== undefined;
  const drawn = [...entries.entries()].filter(([, wb]) => wb.weight > 0);
  const only = drawn.length === 1 ? drawn[0] : undefined;
  if (options.direct === true && only !== undefined) {
    const [k, wb] = only;
    if (valid(wb)) ctx.map(MAP_DIRECT).add(key, proxyFor(wb, k));
    return entries.length === 1 ? 0 : entries.length;
  }
  const weights = ctx.map(MAP_WEIGHTS);
  weights.add(key, total);
  let bound = 0;
  for (const [k, wb] of drawn) {
    bound += wb.weight;
    weights.add(`${key}/${k}`, bound);
  }
  // With session persistence, an entry of weight 0 keeps its choice and pin: "the persistence to a
  // single backend MUST be maintained across services, even if the weight is set to 0" (GEP-1619);
  // it has no bound, so new sessions never draw it.
  const tagFor = options.tagFor;
  for (const [k, wb] of entries.entries()) {
    if (!valid(wb) || (wb.weight <= 0 && tagFor === undefined)) continue;
    ctx.map(MAP_CHOICES).add(`${key}/${k}`, proxyFor(wb, k));
    if (tagFor !== undefined) ctx.map(MAP_PINS).add(`${key}/p${tagFor(wb)}`, `${key}/${k}`);
  }
  return entries.length;
}

/**
 * The choice lines of a frontend: `action` is `http-request` or `tcp-request content`; `slots` the
 * largest entry count of its rules; `pins` the per-rule session pin lines (HTTP only); `direct` whether
 * direct.map is consulted first (HTTP). The weighted draw only runs when direct.map had no answer.
 */
export function choiceLines(
  ctx: RenderContext,
  action: string,
  slots: number,
  pins: readonly string[],
  direct = false,
): string[] {
  const weights = ctx.mapPath(MAP_WEIGHTS);
  const lines: string[] = [];
  let undecided = "";
  if (direct) {
    lines.push(
      `${action} set-var(txn.gh_be) ${word(`var(txn.gh_rule),map_str(${ctx.mapPath(MAP_DIRECT)})`)} if { var(txn.gh_rule) -m found }`,
    );
    if (slots === 0) return lines;
    undecided = " !{ var(txn.gh_be) -m found }";
  }
  lines.push(
    `${action} set-var(txn.gh_wt) ${word(`var(txn.gh_rule),map_str_int(${weights})`)} if { var(txn.gh_rule) -m found }${undecided}`,
    `${action} set-var(txn.gh_wr) ${word("rand,mod(txn.gh_wt)")} if { var(txn.gh_wt) -m int gt 0 }`,
  );
  if (pins.length > 0) {
    lines.push(...pins);
    lines.push(
      `${action} set-var(txn.gh_choice) ${word(`var(txn.gh_rule),concat(/p,txn.gh_pin),map_str(${ctx.mapPath(MAP_PINS)})`)} if { var(txn.gh_pin) -m found }`,
    );
  }
  for (let k = 0; k < slots; k++) {
    const bound = `var(txn.gh_rule),concat(/${k}),map_str_int(${weights},0),sub(txn.gh_wr)`;
    lines.push(
      `${action} set-var(txn.gh_choice) ${word(`var(txn.gh_rule),concat(/${k})`)} if !{ var(txn.gh_choice) -m found } { var(txn.gh_wr) -m found } { ${word(bound)} -m int gt 0 }`,
    );
  }
  lines.push(
    `${action} set-var(txn.gh_be) ${word(`var(txn.gh_choice),map_str(${ctx.mapPath(MAP_CHOICES)})`)} if { var(txn.gh_choice) -m found }`,
  );
  return lines;
}

/** The effective server timeout of a rule in ms: the smaller of request and backendRequest. */
export function ruleTimeoutMs(
  timeouts: { requestMs?: number; backendRequestMs?: number } | undefined,
): number | undefined {
  const values = [timeouts?.requestMs, timeouts?.backendRequestMs].filter(
    (v): v is number => v !== undefined,
  );
  if (values.length === 0) return undefined;
  // 0 disables a timeout: when both are 0, use HAProxy's largest timeout (about 24.8 days).
  const enabled = values.filter((v) => v > 0);
  return enabled.length === 0 ? 2_147_483_647 : Math.min(...enabled);
}
