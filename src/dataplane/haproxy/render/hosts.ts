// Hostname → listener → virtual host (and SNI → TLS route), as data: exact hostnames in `map_str`
// maps, `*.suffix` wildcards in `map_end` maps keyed `.suffix@<scope>` (so a wildcard matches one
// or more labels but never the bare suffix, and the most specific wildcard comes first in the file),
// and a catch-all per scope. Keys carry their scope (`@<frontend>` for listeners, `@<listener>` for
// virtual hosts and TLS routes), so one set of map files serves every frontend.
import type { IRListener, IRVirtualHost } from "../../../ir/types.ts";
import { word } from "./escape.ts";
import { memo } from "./memo.ts";
import { shortName, type RenderContext } from "./model.ts";
import { bySpecificity, type ListenerRef } from "./plan.ts";

export const MAP_LISTENERS = "listeners";
export const MAP_LISTENERS_WILDCARD = "listeners-wildcard";
export const MAP_VHOSTS = "vhosts";
export const MAP_VHOSTS_WILDCARD = "vhosts-wildcard";
export const MAP_VHOSTS_ANY = "vhosts-any";
export const MAP_TLS_ROUTES = "tls-routes";
export const MAP_TLS_ROUTES_WILDCARD = "tls-routes-wildcard";
export const MAP_TLS_ROUTES_ANY = "tls-routes-any";

/**
 * The request's hostname for routing: Host (HTTP/2 `:authority`) lowercased, port dropped. `field(1,:)`
 * is cheaper than a regex; it differs only for IP literals (`[::1]:80`), which no route hostname
 * matches either way (hostnames are DNS names).
 */
export const HOST_EXPR = "req.hdr(host),lower,field(1,:)";

/**
 * How a frontend's chain names its listener: `key` appends `@<listener>` to a hostname expression,
 * `value` is the listener id. A frontend with one catch-all listener uses the id as a literal (no
 * variable, no lookup); otherwise the listener selected into `txn.gh_lst`.
 */
export interface ListenerKey {
  key: string;
  value: string;
}

export const SELECTED_LISTENER: ListenerKey = { key: "concat(@,txn.gh_lst)", value: "var(txn.gh_lst)" };

/** The literal listener of a frontend with a single catch-all listener, or undefined. */
export function literalListener(listeners: readonly ListenerRef[]): ListenerKey | undefined {
  const only = listeners.length === 1 ? listeners[0] : undefined;
  const h = only?.listener.hostname;
  if (only === undefined || (h !== undefined && h !== "*")) return undefined;
  return { key: `concat(@${only.lid})`, value: `str(${only.lid})` };
}

/** `*.example.com` → `.example.com`; exact hostnames unchanged. */
function suffix(hostname: string): string {
  return hostname.slice(1);
}

/**
 * Lines selecting the listener of a frontend from the hostname in `input` (a variable holding the
 * lowercased Host without port, or the SNI) into `output`; fills the listener maps for `fe`.
 */
export function listenerSelection(
  ctx: RenderContext,
  feName: string,
  listeners: readonly ListenerRef[],
  action: string,
  input: string,
  output: string,
): string[] {
  const exact = ctx.map(MAP_LISTENERS);
  const wildcard = ctx.map(MAP_LISTENERS_WILDCARD);
  let catchAll: string | undefined;
  let hasExact = false;
  let hasWildcard = false;
  for (const r of bySpecificity(listeners)) {
    const h = r.listener.hostname;
    if (h === undefined || h === "*") {
      catchAll ??= r.lid;
    } else if (h.startsWith("*.")) {
      wildcard.add(`${suffix(h)}@${feName}`, r.lid);
      hasWildcard = true;
    } else {
      exact.add(`${h}@${feName}`, r.lid);
      hasExact = true;
    }
  }
  const lines: string[] = [];
  const key = `var(${input}),concat(@${feName})`;
  if (hasExact)
    lines.push(`${action} set-var(${output}) ${word(`${key},map_str(${ctx.mapPath(MAP_LISTENERS)})`)}`);
  if (hasWildcard) {
    lines.push(
      `${action} set-var(${output}) ${word(`${key},map_end(${ctx.mapPath(MAP_LISTENERS_WILDCARD)})`)} if !{ var(${output}) -m found }`,
    );
  }
  if (catchAll !== undefined)
    lines.push(`${action} set-var(${output}) str(${catchAll}) if !{ var(${output}) -m found }`);
  return lines;
}

export function vhostId(ctx: RenderContext, listener: IRListener, vh: IRVirtualHost): string {
  // shortId("v", identity), with the identity and its digest remembered per virtual host (memo.ts).
  let known = memo.vhostIds.get(vh);
  if (known === undefined || known.listener !== listener.id) {
    const identity = `vhost\0${listener.id}\0${vh.hostname}`;
    known = { listener: listener.id, identity, name: shortName("v", identity) };
    memo.vhostIds.set(vh, known);
  }
  return ctx.claim("id", known.name, known.identity);
}

/** Fills the virtual-host maps for one HTTP/HTTPS listener (virtual hosts are in IR order). */
export function addVirtualHosts(ctx: RenderContext, r: ListenerRef): void {
  for (const vh of r.listener.virtualHosts ?? []) {
    const vid = vhostId(ctx, r.listener, vh);
    if (vh.hostname === "*") ctx.map(MAP_VHOSTS_ANY).add(r.lid, vid);
    else if (vh.hostname.startsWith("*."))
      ctx.map(MAP_VHOSTS_WILDCARD).add(`${suffix(vh.hostname)}@${r.lid}`, vid);
    else ctx.map(MAP_VHOSTS).add(`${vh.hostname}@${r.lid}`, vid);
  }
}

/**
 * Lines selecting the virtual host (txn.gh_vh) from the hostname expression `host` within the
 * listener `listener`: exact, then wildcard (only on a miss), then the listener's catch-all.
 */
export function vhostSelection(ctx: RenderContext, host: string, listener: ListenerKey): string[] {
  const key = `${host},${listener.key}`;
  return [
    `http-request set-var(txn.gh_vh) ${word(`${key},map_str(${ctx.mapPath(MAP_VHOSTS)})`)}`,
    `http-request set-var(txn.gh_vh) ${word(`${key},map_end(${ctx.mapPath(MAP_VHOSTS_WILDCARD)})`)} if !{ var(txn.gh_vh) -m found }`,
    `http-request set-var(txn.gh_vh) ${word(`${listener.value},map_str(${ctx.mapPath(MAP_VHOSTS_ANY)})`)} if !{ var(txn.gh_vh) -m found }`,
  ];
}

/**
 * Fills the TLS-route maps for one TLS listener: SNI hostname → route id (`tid(routeIndex)`).
 * Exact names first-come; wildcards ordered by decreasing length (most specific first); `*` any.
 */
export function addTLSRoutes(ctx: RenderContext, r: ListenerRef, tid: (index: number) => string): void {
  const wildcards: Array<{ key: string; id: string; length: number }> = [];
  for (const [i, route] of (r.listener.tlsRoutes ?? []).entries()) {
    for (const h of route.hostnames) {
      if (h === "*") ctx.map(MAP_TLS_ROUTES_ANY).add(r.lid, tid(i));
      else if (h.startsWith("*."))
        wildcards.push({ key: `${suffix(h)}@${r.lid}`, id: tid(i), length: h.length });
      else ctx.map(MAP_TLS_ROUTES).add(`${h}@${r.lid}`, tid(i));
    }
  }
  wildcards.sort((a, b) => b.length - a.length);
  for (const w of wildcards) ctx.map(MAP_TLS_ROUTES_WILDCARD).add(w.key, w.id);
}

/** Lines selecting the TLS route (txn.gh_rule) from txn.gh_sni within listener txn.gh_lst. */
export function tlsRouteSelection(ctx: RenderContext): string[] {
  const key = "var(txn.gh_sni),concat(@,txn.gh_lst)";
  const action = "tcp-request content";
  return [
    `${action} set-var(txn.gh_rule) ${word(`${key},map_str(${ctx.mapPath(MAP_TLS_ROUTES)})`)} if { var(txn.gh_lst) -m found }`,
    `${action} set-var(txn.gh_rule) ${word(`${key},map_end(${ctx.mapPath(MAP_TLS_ROUTES_WILDCARD)})`)} if !{ var(txn.gh_rule) -m found } { var(txn.gh_lst) -m found }`,
    `${action} set-var(txn.gh_rule) ${word(`var(txn.gh_lst),map_str(${ctx.mapPath(MAP_TLS_ROUTES_ANY)})`)} if !{ var(txn.gh_rule) -m found } { var(txn.gh_lst) -m found }`,
  ];
}
