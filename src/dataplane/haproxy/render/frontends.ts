// Frontend sections. HTTP: host/path → listener → virtual host → rule (first-match chain) → 404 |
// rule filters → weighted choice → 500 | backendRef filters → use_backend; responses get the rule's
// and the choice's response filters. TCP: one route per TCP listener; TLS ports route by SNI
// (passthrough) or hand terminated traffic to internal frontends over unix sockets.
import { comment, word } from "./escape.ts";
import { listenerSelection, tlsRouteSelection, vhostSelection } from "./hosts.ts";
import type { RenderContext, Section } from "./model.ts";
import type { HttpFrontend, ListenerRef, TcpFrontend } from "./plan.ts";
import type { RouteChain } from "./routing.ts";
import type { PreparedRule } from "./rules.ts";
import { choiceLines, INVALID_BACKEND, MAP_TIMEOUTS } from "./weights.ts";

function listenerComments(listeners: readonly ListenerRef[]): string[] {
  return listeners.map(
    (r) =>
      `# ${comment(`listener ${r.listener.id} (${r.listener.protocol} ${r.listener.hostname ?? "*"}) = ${r.lid}`)}`,
  );
}

export function httpFrontend(
  ctx: RenderContext,
  fe: HttpFrontend,
  chain: RouteChain,
  rules: readonly PreparedRule[],
): Section {
  const lids = new Set(fe.listeners.map((r) => r.lid));
  const mine = rules.filter((p) => lids.has(listenerIdOf(fe, p)));
  const lines = ["mode http", `bind ${fe.bind}`, ...listenerComments(fe.listeners)];
  lines.push(`http-request set-var(txn.gh_host) ${word("req.hdr(host),lower,regsub(:[0-9]+$,)")}`);
  lines.push("http-request set-var(txn.gh_path) path");
  lines.push("http-request set-var(txn.gh_ps) path,concat(/)");
  lines.push(...listenerSelection(ctx, fe.name, fe.listeners, "http-request", "txn.gh_host", "txn.gh_lst"));
  if (fe.tls) {
    // The listener chosen by SNI must be the one chosen by Host (connection reuse across names).
    lines.push("http-request set-var(txn.gh_sni) ssl_fc_sni,lower");
    lines.push(...listenerSelection(ctx, fe.name, fe.listeners, "http-request", "txn.gh_sni", "txn.gh_slst"));
    lines.push(
      "http-request return status 421 content-type text/plain string 'misdirected request' if { var(txn.gh_lst) -m found } { ssl_fc_sni -m found } !{ var(txn.gh_slst),strcmp(txn.gh_lst) eq 0 }",
    );
  }
  lines.push(...vhostSelection(ctx));
  lines.push(
    `http-request set-var(txn.gh_rk) ${word("var(txn.gh_vh),concat(#,txn.gh_path)")} if { var(txn.gh_vh) -m found }`,
  );
  lines.push("http-request set-var(txn.gh_rkp) var(txn.gh_rk),concat(/) if { var(txn.gh_rk) -m found }");
  lines.push(...chain.lines(ctx, lids));
  lines.push("http-request return status 404 default-errorfiles if !{ var(txn.gh_rule) -m found }");
  for (const p of mine) {
    if (p.filters.request.length === 0) continue;
    lines.push(`# ${comment(`${p.instance.rid} filters: ${p.instance.rule.id}`)}`, ...p.filters.request);
  }
  lines.push(
    `http-request set-var(txn.gh_to) ${word(`var(txn.gh_rule),map_str_int(${ctx.mapPath(MAP_TIMEOUTS)})`)}`,
  );
  const slots = Math.max(0, ...mine.map((p) => p.choices));
  const pins = mine.flatMap((p) => (p.pin === undefined ? [] : [p.pin]));
  lines.push(...choiceLines(ctx, "http-request", slots, pins));
  lines.push("http-request return status 500 default-errorfiles if !{ var(txn.gh_be) -m found }");
  lines.push(
    `http-request return status 500 default-errorfiles if { var(txn.gh_be) -m str ${INVALID_BACKEND} }`,
  );
  for (const p of mine) {
    for (const [k, f] of p.backendFilters.entries()) {
      if (f.request.length === 0) continue;
      lines.push(`# ${comment(`${p.instance.rid}/${k} backendRef filters`)}`, ...f.request);
    }
  }
  for (const p of mine) {
    lines.push(...p.filters.response);
    for (const f of p.backendFilters) lines.push(...f.response);
  }
  lines.push("use_backend %[var(txn.gh_be)]");
  return { header: `frontend ${fe.name}`, lines };
}

function listenerIdOf(fe: HttpFrontend, p: PreparedRule): string {
  return fe.listeners.find((r) => r.listener === p.instance.listener)?.lid ?? "";
}

export interface L4Prepared {
  /** listener lid → route id of its effective TCP route. */
  tcpRoute: Map<string, string>;
  /** route id → entry count. */
  choices: Map<string, number>;
  /** listener lid → route ids of its TLS routes. */
  tlsRoutes: Map<string, string[]>;
}

export function tcpFrontend(ctx: RenderContext, fe: TcpFrontend, l4: L4Prepared): Section {
  const action = "tcp-request content";
  const lines = ["mode tcp", `bind ${fe.bind}`, ...listenerComments(fe.listeners)];
  const routeIds: string[] = [];
  if (fe.role === "tcp") {
    const lid = fe.listeners[0]?.lid ?? "";
    const tid = l4.tcpRoute.get(lid);
    if (tid !== undefined) {
      lines.push(`${action} set-var(txn.gh_rule) str(${tid})`);
      routeIds.push(tid);
    }
  } else {
    if (fe.role === "sni") {
      lines.push("tcp-request inspect-delay 5s");
      lines.push(`${action} reject if !{ req.ssl_hello_type 1 }`);
      lines.push(`${action} set-var(txn.gh_sni) req.ssl_sni,lower`);
    } else {
      lines.push(`${action} set-var(txn.gh_sni) ssl_fc_sni,lower`);
    }
    lines.push(...listenerSelection(ctx, fe.name, fe.listeners, action, "txn.gh_sni", "txn.gh_lst"));
    for (const r of fe.listeners) {
      if (!fe.loops.has(r.lid)) routeIds.push(...(l4.tlsRoutes.get(r.lid) ?? []));
    }
    if (fe.listeners.some((r) => !fe.loops.has(r.lid))) lines.push(...tlsRouteSelection(ctx));
  }
  const slots = Math.max(0, ...routeIds.map((id) => l4.choices.get(id) ?? 0));
  if (slots > 0) lines.push(...choiceLines(ctx, action, slots, []));
  // Terminated listeners of a shared TLS port: hand the connection to their internal frontend
  // (last, so it overrides any route choice made with the same SNI).
  for (const r of fe.listeners) {
    const loop = fe.loops.get(r.lid);
    if (loop !== undefined)
      lines.push(`${action} set-var(txn.gh_be) str(${loop}) if { var(txn.gh_lst) -m str ${r.lid} }`);
  }
  lines.push(`${action} reject if !{ var(txn.gh_be) -m found }`);
  lines.push(`${action} reject if { var(txn.gh_be) -m str ${INVALID_BACKEND} }`);
  lines.push("use_backend %[var(txn.gh_be)]");
  return { header: `frontend ${fe.name}`, lines };
}
