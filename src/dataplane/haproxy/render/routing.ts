// Route selection: a first-match chain over the rules of the matched virtual host, in IR order.
//
// Path-only rules live in map files keyed `<vhost>#<path>`: Exact in `map_str`, PathPrefix in
// `map_beg` keyed `<vhost>#<prefix>/` and looked up with `<vhost>#<path>/` (so `/foo` matches `/foo`,
// `/foo/`, `/foo/bar` but not `/foobar`, and a trailing slash in the prefix does not matter), and
// RegularExpression in `map_reg` keyed `^<vhost>#(?:<re>)$`. Rules with header, query or method
// conditions (or a path that cannot be a map key) are explicit ACL-conditioned lines. Every step is
// `set-var(txn.gh_rule) ... if !{ var(txn.gh_rule) -m found }`, so the first step that matches wins.
//
// Consecutive rules of one kind share a map step only when that preserves IR order: `map_str` keys
// are distinct paths; `map_beg` is a longest-prefix tree, so a run of prefixes is cut wherever a
// longer prefix follows a shorter one. Steps are aligned across virtual hosts (a virtual host's
// groups occupy increasing step positions), so the number of map lookups stays small and adding a
// path-only rule usually only changes map files.
import type { IRHTTPRule, IRListener } from "../../../ir/types.ts";
import { arg, comment, word } from "./escape.ts";
import { vhostId } from "./hosts.ts";
import { memo } from "./memo.ts";
import { shortName, type RenderContext } from "./model.ts";
import type { ListenerRef } from "./plan.ts";
import { mapKeySafe } from "./syntax.ts";

export interface RuleInstance {
  rid: string;
  vid: string;
  rule: IRHTTPRule;
  listener: IRListener;
  hostname: string;
  /** IR path of the rule. */
  path: string;
}

type MapKind = "exact" | "prefix" | "regex";

interface MapStep {
  kind: MapKind;
  /** Listener ids with entries in this step (a frontend renders only steps of its listeners). */
  users: Set<string>;
  entries: Array<[string, string]>;
  file?: string;
}

interface CondStep {
  kind: "cond";
  users: Set<string>;
  rule: RuleInstance;
}

type Step = MapStep | CondStep;

interface Group {
  kind: MapKind | "cond";
  rules: RuleInstance[];
  keys: string[];
}

const MAP_FETCH: Record<MapKind, string> = { exact: "map_str", prefix: "map_beg", regex: "map_reg" };
const LOOKUP_VAR: Record<MapKind, string> = { exact: "txn.gh_rk", prefix: "txn.gh_rkp", regex: "txn.gh_rk" };
/** Lookup keys (log-format): the virtual host id, `#`, the path, and for prefixes a final `/`. */
const LOOKUP_KEYS: ReadonlyArray<[string, string]> = [
  ["txn.gh_rk", "%[var(txn.gh_vh)]#%[path]"],
  ["txn.gh_rkp", "%[var(txn.gh_vh)]#%[path]/"],
];

export function ruleId(ctx: RenderContext, listener: IRListener, hostname: string, rule: IRHTTPRule): string {
  // shortId("r", identity), with the identity and its digest remembered per rule object (memo.ts).
  let known = memo.ruleIds.get(rule);
  if (known === undefined || known.listener !== listener.id || known.hostname !== hostname) {
    const identity = `rule\0${listener.id}\0${hostname}\0${rule.id}`;
    known = { listener: listener.id, hostname, identity, name: shortName("r", identity) };
    memo.ruleIds.set(rule, known);
  }
  return ctx.claim("id", known.name, known.identity);
}

/** Trailing slashes are not significant in a PathPrefix value. */
export function normalizePrefix(value: string): string {
  return value.replace(/\/+$/, "");
}

function pathOnly(rule: IRHTTPRule): boolean {
  const m = rule.match;
  return m.headers.length === 0 && m.queryParams.length === 0 && m.method === undefined;
}

/** The map kind and key of a path-only rule, or undefined when it must be an ACL line. */
function mapKey(r: RuleInstance): { kind: MapKind; key: string } | undefined {
  if (!pathOnly(r.rule)) return undefined;
  const p = r.rule.match.path;
  let kind: MapKind;
  let key: string;
  if (p.type === "Exact") [kind, key] = ["exact", `${r.vid}#${p.value}`];
  else if (p.type === "PathPrefix") [kind, key] = ["prefix", `${r.vid}#${normalizePrefix(p.value)}/`];
  else [kind, key] = ["regex", `^${r.vid}#(?:${p.value})$`];
  return mapKeySafe(key) ? { kind, key } : undefined;
}

function groupRules(rules: readonly RuleInstance[]): Group[] {
  const groups: Group[] = [];
  for (const r of rules) {
    const mk = mapKey(r);
    if (mk === undefined) {
      groups.push({ kind: "cond", rules: [r], keys: [] });
      continue;
    }
    const last = groups.at(-1);
    const lastKey = last?.keys.at(-1);
    const fits =
      last !== undefined &&
      last.kind === mk.kind &&
      (mk.kind !== "prefix" || lastKey === undefined || mk.key.length <= lastKey.length);
    if (fits) {
      last.rules.push(r);
      last.keys.push(mk.key);
    } else {
      groups.push({ kind: mk.kind, rules: [r], keys: [mk.key] });
    }
  }
  return groups;
}

/** The route chain of all HTTP listeners: rule instances and aligned steps. */
export class RouteChain {
  readonly rules: RuleInstance[] = [];
  private readonly steps: Step[] = [];

  constructor(ctx: RenderContext, listeners: readonly ListenerRef[]) {
    for (const ref of listeners) {
      for (const [vi, vh] of (ref.listener.virtualHosts ?? []).entries()) {
        const vid = vhostId(ctx, ref.listener, vh);
        const instances = vh.rules.map((rule, ri): RuleInstance => ({
          rid: ruleId(ctx, ref.listener, vh.hostname, rule),
          vid,
          rule,
          listener: ref.listener,
          hostname: vh.hostname,
          path: `${ref.path}.virtualHosts[${vi}].rules[${ri}]`,
        }));
        this.rules.push(...instances);
        this.align(ref.lid, groupRules(instances));
      }
    }
    let n = 0;
    for (const s of this.steps) {
      if (s.kind !== "cond") s.file = `routes-${String(n++).padStart(2, "0")}-${s.kind}`;
    }
    for (const s of this.steps) {
      if (s.kind === "cond") continue;
      const m = ctx.map(s.file ?? "");
      for (const [k, v] of s.entries) m.add(k, v);
    }
  }

  private align(lid: string, groups: readonly Group[]): void {
    let p = 0;
    for (const g of groups) {
      if (g.kind === "cond") {
        const rule = g.rules[0];
        if (rule === undefined) continue;
        this.steps.splice(p, 0, { kind: "cond", users: new Set([lid]), rule });
        p++;
        continue;
      }
      let q = this.steps.findIndex((s, i) => i >= p && s.kind === g.kind);
      if (q < 0) {
        this.steps.splice(p, 0, { kind: g.kind, users: new Set(), entries: [] });
        q = p;
      }
      const step = this.steps[q] as MapStep;
      step.users.add(lid);
      // Within a group, a repeated key is unreachable (the earlier rule always wins): keep the first.
      const seen = new Set<string>();
      for (const [i, key] of g.keys.entries()) {
        const r = g.rules[i];
        if (r === undefined || seen.has(key)) continue;
        seen.add(key);
        step.entries.push([key, r.rid]);
      }
      p = q + 1;
    }
  }

  /** The steps a frontend serving `lids` evaluates. */
  private stepsOf(lids: ReadonlySet<string>): Step[] {
    return this.steps.filter((s) => [...s.users].some((u) => lids.has(u)));
  }

  /**
   * The chain lines of a frontend serving `listeners` (their lids), starting with the lookup keys
   * its map steps read (`<vhost>#<path>`, `<vhost>#<path>/`), each built in one `set-var-fmt`.
   */
  lines(ctx: RenderContext, lids: ReadonlySet<string>): string[] {
    const out: string[] = [];
    const steps = this.stepsOf(lids);
    const vars = new Set(steps.flatMap((s) => (s.kind === "cond" ? [] : [LOOKUP_VAR[s.kind]])));
    for (const [name, format] of LOOKUP_KEYS) {
      if (vars.has(name))
        out.push(`http-request set-var-fmt(${name}) ${word(format)} if { var(txn.gh_vh) -m found }`);
    }
    const notFound = "!{ var(txn.gh_rule) -m found }";
    for (const s of steps) {
      if (s.kind !== "cond") {
        const fetch = `var(${LOOKUP_VAR[s.kind]}),${MAP_FETCH[s.kind]}(${ctx.mapPath(s.file ?? "")})`;
        out.push(`http-request set-var(txn.gh_rule) ${word(fetch)} if ${notFound}`);
        continue;
      }
      const r = s.rule;
      out.push(`# ${comment(`${r.rid}: ${r.rule.id} on ${r.hostname}`)}`);
      const { acls, names } = matchAcls(r);
      out.push(...acls);
      out.push(
        `http-request set-var(txn.gh_rule) str(${r.rid}) if ${notFound} { var(txn.gh_vh) -m str ${r.vid} } ${names.join(" ")}`.trimEnd(),
      );
    }
    return out;
  }
}

/** Named ACLs for one rule's match (user strings only ever appear as ACL patterns after `--`). */
function matchAcls(r: RuleInstance): { acls: string[]; names: string[] } {
  const acls: string[] = [];
  const names: string[] = [];
  const add = (suffix: string, fetch: string, pattern: string): void => {
    const name = `${r.rid}_${suffix}`;
    acls.push(`acl ${name} ${word(fetch)} ${pattern}`);
    names.push(name);
  };
  const exact = (value: string): string => (value === "" ? "-m len 0" : `-m str -- ${word(value)}`);
  const regex = (value: string): string => `-m reg -- ${word(`^(?:${value})$`)}`;
  const p = r.rule.match.path;
  if (p.type === "Exact") add("path", "path", exact(p.value));
  else if (p.type === "RegularExpression") add("path", "path", regex(p.value));
  else if (normalizePrefix(p.value) !== "")
    add("path", "path,concat(/)", `-m beg -- ${word(`${normalizePrefix(p.value)}/`)}`);
  for (const [i, h] of r.rule.match.headers.entries()) {
    add(`h${i}`, `req.fhdr(${arg(h.name)})`, h.type === "Exact" ? exact(h.value) : regex(h.value));
  }
  for (const [i, q] of r.rule.match.queryParams.entries()) {
    add(`q${i}`, `url_param(${arg(q.name)})`, q.type === "Exact" ? exact(q.value) : regex(q.value));
  }
  if (r.rule.match.method !== undefined) add("method", "method", word(r.rule.match.method));
  return { acls, names };
}
