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

function parseMap(file: string): Array<[string, string]> {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const i = l.indexOf(" ");
      return [l.slice(0, i), l.slice(i + 1).trim()];
    });
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
  const lid = /# listener .* = (\w+)$/.exec(front.join("\n"))?.[1];
  if (lid === undefined || front.filter((l) => /# listener /.test(l)).length !== 1)
    throw new Error("prototype: floor router needs a frontend with one listener");
  const prefixMaps = front.flatMap((l) => /map_beg\((\S+routes-\d+-prefix\.map)\)/.exec(l)?.[1] ?? []);
  if (front.some((l) => /routes-\d+-(exact|regex)\.map/.test(l)) || prefixMaps.length !== 1)
    throw new Error("prototype: floor router needs exactly one prefix map and no exact/regex maps");
  if (readFileSync(join(maps, "vhosts-wildcard.map"), "utf8").trim() !== "")
    throw new Error("prototype: floor router needs exact hostnames only");
  const vhosts = parseMap(join(maps, "vhosts.map"));
  const direct = new Map(parseMap(join(maps, "direct.map")));
  const backendOf = (rid: string): string => {
    const be = direct.get(rid);
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
