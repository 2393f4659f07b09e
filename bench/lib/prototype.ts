// Prototypes of renderer changes, measured without touching the renderer: the configuration that
// `gatehouse serve` rendered (and its map files) is copied and rewritten, then run by a standalone
// `haproxy -db` next to the real thing. Each rewrite is what a renderer change would emit for this
// IR; a rewrite whose expected lines are not found throws (the renderer changed: update it).
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Variant {
  name: string;
  description: string;
  config: string;
}

/** Lines of the first `frontend fe_*` section (the Gateway's HTTP frontend). */
function frontendRange(lines: string[]): [number, number] {
  const start = lines.findIndex((l) => /^frontend fe_/.test(l));
  if (start < 0) throw new Error("prototype: no `frontend fe_*` section in the rendered config");
  let end = start + 1;
  while (end < lines.length && !/^\S/.test(lines[end] ?? "")) end++;
  return [start, end];
}

/**
 * The rendered config as a standalone HAProxy: no master-worker, no stats socket, no exporter
 * frontend; the Gateway's frontend bound to `port`; maps and error files copied to `dir`.
 */
export function standaloneCopy(rendered: string, port: number, dir: string): string {
  const gen = /(\/\S+\/g\d+)\/(?:maps|errors)\//.exec(rendered)?.[1];
  if (gen === undefined) throw new Error("prototype: no generation directory in the rendered config");
  cpSync(gen, join(dir, "gen"), { recursive: true });
  const out: string[] = [];
  let skipping = false;
  for (const line of rendered.split(gen).join(join(dir, "gen")).split("\n")) {
    if (/^\S/.test(line)) skipping = line.startsWith("frontend gh_metrics");
    if (skipping) continue;
    if (/^\s+(master-worker|stats socket|stats timeout)\b/.test(line)) continue;
    out.push(line);
  }
  const [start, end] = frontendRange(out);
  let bound = false;
  for (let i = start; i < end; i++) {
    if (/^\s+bind \S+/.test(out[i] ?? "")) {
      out[i] = `  bind 127.0.0.1:${port}`;
      bound = true;
    }
  }
  if (!bound) throw new Error("prototype: the Gateway frontend has no bind line");
  return out.join("\n");
}

/**
 * The rendered config with the whole routing chain (every `http-request` rule and `use_backend` of
 * the Gateway frontend, the backends' `set-timeout`) replaced by `default_backend <backend>`: what
 * everything except the chain costs (defaults, X-Forwarded-For, server slots, master-worker aside).
 */
export function withoutChain(config: string, backend: string): string {
  const lines = config.split("\n");
  const [start, end] = frontendRange(lines);
  const front = lines.slice(start, end).filter((l) => !/^\s+(http-request|use_backend) /.test(l));
  if (!lines.some((l) => l === `backend ${backend}`)) throw new Error(`prototype: no backend ${backend}`);
  return [...lines.slice(0, start), ...front, `  default_backend ${backend}`, ...lines.slice(end)]
    .filter((l) => !/http-request set-timeout server var\(txn\.gh_to\)/.test(l))
    .join("\n");
}

/** Whether any line reads the variable (`var(name)` other than in `set-var(name)`, or `concat(...,name)`). */
function readsVar(lines: readonly string[], name: string): boolean {
  const escaped = name.replace(/\./g, "\\.");
  const read = new RegExp(`(?<!set-)var\\(${escaped}\\)|concat\\([^)]*,${escaped}[,)]`);
  return lines.some((l) => read.test(l));
}

function parseMap(file: string): Array<[string, string]> {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const i = l.indexOf(" ");
      return [l.slice(0, i), l.slice(i + 1).trim()];
    });
}

/**
 * The "lean chain" a renderer could emit for the same IR (see bench/README.md, "Closing the gap"):
 *  1. keys built in one step with `set-var-fmt` (`<vhost>#<path>/`) instead of gh_path → gh_rk →
 *     gh_rkp (three variables, two concatenations);
 *  2. `txn.gh_ps` not set when no ACL step reads it (only header/query/method rules do);
 *  3. a frontend with a single catch-all listener uses the listener id as a literal
 *     (`concat(@<lid>)`) instead of setting and reading `txn.gh_lst`;
 *  4. rules with a single backend (with weight > 0) are resolved by one lookup in a `direct.map`
 *     (`rid → backend`); the weighted draw (gh_wt, rand, per-slot bounds, choices.map) only runs
 *     for the others;
 *  5. `txn.gh_to` and the backends' `set-timeout` only when some rule has a timeout;
 *  6. the normalised Host computed inside the virtual-host lookups rather than stored in
 *     `txn.gh_host` first, when nothing else reads that variable.
 */
export interface LeanOptions {
  fmtKeys?: boolean;
  dropPs?: boolean;
  literalListener?: boolean;
  direct?: boolean;
  dropTimeouts?: boolean;
  inlineHost?: boolean;
}

const ALL: Required<LeanOptions> = {
  fmtKeys: true,
  dropPs: true,
  literalListener: true,
  direct: true,
  dropTimeouts: true,
  inlineHost: true,
};

export function leanChain(config: string, options: LeanOptions = ALL): string {
  const opt = {
    ...Object.fromEntries(Object.keys(ALL).map((k) => [k, false])),
    ...options,
  } as Required<LeanOptions>;
  const lines = config.split("\n");
  const [start, end] = frontendRange(lines);
  const front = lines.slice(start, end);
  const find = (re: RegExp, what: string): number => {
    const i = front.findIndex((l) => re.test(l));
    if (i < 0) throw new Error(`prototype: expected ${what} in the Gateway frontend`);
    return i;
  };
  const mapDir = /(\/\S+\/gen)\/maps\//.exec(config)?.[1];
  if (mapDir === undefined) throw new Error("prototype: map directory not found");
  const listenerComments = front.filter((l) => /^\s+# listener /.test(l));
  const lstLine = find(
    /set-var\(txn\.gh_lst\) str\((\w+)\) if !\{ var\(txn\.gh_lst\) -m found \}$/,
    "a catch-all listener",
  );
  const lid = /str\((\w+)\)/.exec(front[lstLine] ?? "")?.[1] ?? "";
  const singleListener =
    opt.literalListener &&
    listenerComments.length === 1 &&
    !front.some((l) => /listeners(-wildcard)?\.map/.test(l));
  const usesPs = !opt.dropPs || readsVar(config.split("\n"), "txn.gh_ps");
  const timeouts =
    !opt.dropTimeouts || readFileSync(join(mapDir, "maps", "timeouts.map"), "utf8").trim() !== "";
  const hostLine = find(/set-var\(txn\.gh_host\) /, "the Host normalisation");
  const hostExpr = /set-var\(txn\.gh_host\) '?([^']+?)'?$/.exec(front[hostLine] ?? "")?.[1] ?? "";
  const hostReaders = config.split("\n").filter((l) => readsVar([l], "txn.gh_host"));
  const inlineHost =
    opt.inlineHost && hostExpr !== "" && hostReaders.every((l) => /set-var\(txn\.gh_vh\) /.test(l));

  // direct.map: rules whose weights leave exactly one choice.
  const weights = parseMap(join(mapDir, "maps", "weights.map"));
  const choices = new Map(parseMap(join(mapDir, "maps", "choices.map")));
  const perRule = new Map<string, string[]>();
  for (const [key] of weights) {
    const slash = key.indexOf("/");
    if (slash < 0) continue;
    const rid = key.slice(0, slash);
    perRule.set(rid, [...(perRule.get(rid) ?? []), key]);
  }
  const direct: string[] = [];
  for (const [rid, keys] of perRule) {
    const only = keys.length === 1 ? choices.get(keys[0] ?? "") : undefined;
    if (only !== undefined) direct.push(`${rid} ${only}`);
  }
  const directMap = join(mapDir, "maps", "direct.map");
  writeFileSync(directMap, direct.join("\n") + "\n");

  const out: string[] = [];
  for (const line of front) {
    if (opt.fmtKeys && /set-var\(txn\.gh_path\) path$/.test(line)) continue;
    if (inlineHost && /set-var\(txn\.gh_host\) /.test(line)) continue;
    if (/set-var\(txn\.gh_ps\) /.test(line)) {
      if (usesPs) out.push(line);
      continue;
    }
    if (singleListener && /set-var\(txn\.gh_lst\) str\(/.test(line)) continue;
    let l = line;
    if (singleListener) {
      l = l
        .replace("concat(@,txn.gh_lst)", `concat(@${lid})`)
        .replace("var(txn.gh_lst),map_str(", `str(${lid}),map_str(`);
    }
    if (inlineHost && /set-var\(txn\.gh_vh\) /.test(l) && l.includes("var(txn.gh_host)")) {
      const m = /^(\s+http-request set-var\(txn\.gh_vh\) )'?var\(txn\.gh_host\)([^' ]*)'?(.*)$/.exec(l);
      if (m === null) throw new Error(`prototype: unexpected virtual-host line: ${l}`);
      out.push(`${m[1] ?? ""}'${hostExpr}${m[2] ?? ""}'${m[3] ?? ""}`);
      continue;
    }
    if (opt.fmtKeys && /set-var\(txn\.gh_rk\) /.test(l)) {
      const readers = config.split("\n").filter((x) => !/set-var\(txn\.gh_rkp\) /.test(x));
      if (readsVar(readers, "txn.gh_rk"))
        out.push(
          "  http-request set-var-fmt(txn.gh_rk) '%[var(txn.gh_vh)]#%[path]' if { var(txn.gh_vh) -m found }",
        );
      continue;
    }
    if (opt.fmtKeys && /set-var\(txn\.gh_rkp\) /.test(l)) {
      out.push(
        "  http-request set-var-fmt(txn.gh_rkp) '%[var(txn.gh_vh)]#%[path]/' if { var(txn.gh_vh) -m found }",
      );
      continue;
    }
    if (/set-var\(txn\.gh_to\) /.test(l)) {
      if (timeouts) out.push(l);
      continue;
    }
    if (opt.direct && /set-var\(txn\.gh_wt\) /.test(l)) {
      out.push(
        `  http-request set-var(txn.gh_be) var(txn.gh_rule),map_str(${directMap}) if { var(txn.gh_rule) -m found }`,
      );
      out.push(
        l.replace(
          " if { var(txn.gh_rule) -m found }",
          " if { var(txn.gh_rule) -m found } !{ var(txn.gh_be) -m found }",
        ),
      );
      continue;
    }
    out.push(l);
  }
  const result = [...lines.slice(0, start), ...out, ...lines.slice(end)];
  return (
    timeouts ? result : result.filter((l) => !/http-request set-timeout server var\(txn\.gh_to\)/.test(l))
  ).join("\n");
}

/** The hand-written reference plus `option forwardfor` (Gatehouse always adds X-Forwarded-For). */
export function withForwardFor(handwritten: string): string {
  return handwritten.replace("  mode http\n", "  mode http\n  option forwardfor\n");
}

/**
 * The floor of a map-based Host+path router, for scale: one key (`<host>@<listener>#<path>/`) built
 * with `set-var-fmt`, one `map_beg` lookup straight to the HAProxy backend, `use_backend`. Only for
 * inputs with exact hostnames, PathPrefix rules and one backend per rule (throws otherwise); it drops
 * semantics Gatehouse needs in general (wildcard hosts, precedence across steps, weights, filters).
 */
export function floorRouter(config: string): string {
  const lines = config.split("\n");
  const [start, end] = frontendRange(lines);
  const front = lines.slice(start, end);
  const mapDir = /(\/\S+\/gen)\/maps\//.exec(config)?.[1];
  if (mapDir === undefined) throw new Error("prototype: map directory not found");
  const maps = join(mapDir, "maps");
  const lid = /set-var\(txn\.gh_lst\) str\((\w+)\)/.exec(front.join("\n"))?.[1];
  if (lid === undefined) throw new Error("prototype: no catch-all listener");
  const prefixMaps = front.flatMap((l) => /map_beg\((\S+routes-\d+-prefix\.map)\)/.exec(l)?.[1] ?? []);
  if (front.some((l) => /routes-\d+-(exact|regex)\.map/.test(l)) || prefixMaps.length !== 1)
    throw new Error("prototype: floor router needs exactly one prefix map and no exact/regex maps");
  if (readFileSync(join(maps, "vhosts-wildcard.map"), "utf8").trim() !== "")
    throw new Error("prototype: floor router needs exact hostnames only");
  const vhosts = parseMap(join(maps, "vhosts.map"));
  const weights = parseMap(join(maps, "weights.map"));
  const choices = new Map(parseMap(join(maps, "choices.map")));
  const backendOf = (rid: string): string => {
    const keys = weights.filter(([k]) => k.startsWith(`${rid}/`));
    const be = keys.length === 1 ? choices.get(keys[0]?.[0] ?? "") : undefined;
    if (be === undefined) throw new Error(`prototype: rule ${rid} does not have exactly one backend`);
    return be;
  };
  const entries: string[] = [];
  for (const [key, rule] of parseMap(prefixMaps[0] ?? "")) {
    const [vid, path] = key.split("#");
    for (const [hostKey, v] of vhosts)
      if (v === vid) entries.push(`${hostKey}#${path ?? ""} ${backendOf(rule)}`);
  }
  const combined = join(maps, "floor.map");
  writeFileSync(combined, entries.join("\n") + "\n");
  const head = front.filter((l) => /^\s+(mode|bind|#)/.test(l));
  const body = [
    `  http-request set-var-fmt(txn.gh_k) '%[req.hdr(host),lower,regsub(:[0-9]+$,)]@${lid}#%[path]/'`,
    `  http-request set-var(txn.gh_be) var(txn.gh_k),map_beg(${combined})`,
    "  http-request return status 404 default-errorfiles if !{ var(txn.gh_be) -m found }",
    "  use_backend %[var(txn.gh_be)]",
  ];
  return [...lines.slice(0, start), front[0] ?? "", ...head, ...body, ...lines.slice(end)]
    .filter((l) => !/http-request set-timeout server var\(txn\.gh_to\)/.test(l))
    .join("\n");
}
