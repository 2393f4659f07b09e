// Prototypes of renderer changes, measured without touching the renderer: the configuration that
// `gatehouse serve` rendered (and its map files) is copied and rewritten, then run by a standalone
// `haproxy -db` next to the real thing. Each rewrite is what a renderer change would emit for this
// IR; a rewrite whose expected lines are not found throws (the renderer changed: update it).
import { cpSync } from "node:fs";
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

/** The hand-written reference plus `option forwardfor` (Gatehouse always adds X-Forwarded-For). */
export function withForwardFor(handwritten: string): string {
  return handwritten.replace("  mode http\n", "  mode http\n  option forwardfor\n");
}
