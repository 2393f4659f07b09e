// Frontend sections. HTTP: host/path → listener → virtual host → rule (first-match chain) → 404 |
// rule filters → weighted choice → 500 | backendRef filters → use_backend; responses get the rule's
// and the choice's response filters. TCP: one route per TCP listener; TLS ports route by SNI
// (passthrough) or hand terminated traffic to internal frontends over unix sockets.
import { comment, word } from "./escape.ts";
import {
  HOST_EXPR,
  listenerSelection,
  literalListener,
  SELECTED_LISTENER,
  tlsRouteSelection,
  vhostSelection,
} from "./hosts.ts";
import { accessLogCaptures } from "./logging.ts";
import { ruleTrackLines, statusClassLines } from "./metrics.ts";
import type { RenderContext, Section } from "./model.ts";
import type { HttpFrontend, ListenerRef, TcpFrontend } from "./plan.ts";
import type { RouteChain } from "./routing.ts";
import type { PreparedRule } from "./rules.ts";
import { choiceLines, MAP_TIMEOUTS, ruleTimeoutMs } from "./weights.ts";

/** A gRPC request (GRPCRoute rules only ever match those). */
export const GRPC_REQUEST = "{ req.hdr(content-type) -m beg application/grpc }";

/**
 * gRPC's answer when a rule has no valid backend: GRPCRoute requires status UNAVAILABLE, not HTTP
 * 500. HTTP 503 is UNAVAILABLE in gRPC's HTTP-status mapping, and `grpc-status: 14` says so
 * explicitly (HAProxy cannot send a trailers-only 200 with `content-type: application/grpc`: it
 * drops the content type of a reply without a body).
 */
export const GRPC_UNAVAILABLE =
  "http-request return status 503 hdr grpc-status 14 hdr grpc-message 'no valid backend'";

export function listenerComments(listeners: readonly ListenerRef[]): string[] {
  return listeners.map(
    (r) =>
      `# ${comment(`listener ${r.listener.id} (${r.listener.protocol} ${r.listener.hostname ?? "*"}) = ${r.lid}`)}`,
  );
}

/** The rules' request filter lines in rule order, each rule's under a comment naming it. */
export function requestFilterLines(rules: readonly PreparedRule[]): string[] {
  return rules.flatMap((p) =>
    p.filters.request.length === 0
      ? []
      : [`# ${comment(`${p.instance.rid} filters: ${p.instance.rule.id}`)}`, ...p.filters.request],
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
  const lines = [
    "mode http",
    `bind ${fe.bind}`,
    ...accessLogCaptures(ctx),
    ...listenerComments(fe.listeners),
  ];
  // A lone catch-all listener needs no selection: its id is a literal and the Host expression is
  // evaluated inside the virtual-host lookups (only the exact one on a hit). The 421 check of HTTPS
  // compares the Host's and the SNI's listeners, so TLS frontends always select.
  const literal = fe.tls ? undefined : literalListener(fe.listeners);
  let host = HOST_EXPR;
  if (literal === undefined) {
    lines.push(`http-request set-var(txn.gh_host) ${word(HOST_EXPR)}`);
    host = "var(txn.gh_host)";
    lines.push(...listenerSelection(ctx, fe.name, fe.listeners, "http-request", "txn.gh_host", "txn.gh_lst"));
  }
  if (fe.tls) {
    // The listener chosen by SNI must be the one chosen by Host (connection reuse across names).
    lines.push("http-request set-var(txn.gh_sni) ssl_fc_sni,lower");
    lines.push(...listenerSelection(ctx, fe.name, fe.listeners, "http-request", "txn.gh_sni", "txn.gh_slst"));
    lines.push(
      "http-request return status 421 content-type text/plain string 'misdirected request' if { var(txn.gh_lst) -m found } { ssl_fc_sni -m found } !{ var(txn.gh_slst),strcmp(txn.gh_lst) eq 0 }",
    );
  }
  lines.push(...vhostSelection(ctx, host, literal ?? SELECTED_LISTENER));
  lines.push(...chain.lines(ctx, lids));
  lines.push("http-request return status 404 default-errorfiles if !{ var(txn.gh_rule) -m found }");
  lines.push(...ruleTrackLines(ctx));
  lines.push(...requestFilterLines(mine));
  // Rule timeouts (read by every HTTP backend's `set-timeout`): only looked up when a rule here has one
  // (the first timeout on a frontend is then a reload, not a map update).
  if (mine.some((p) => ruleTimeoutMs(p.instance.rule.timeouts) !== undefined))
    lines.push(
      `http-request set-var(txn.gh_to) ${word(`var(txn.gh_rule),map_str_int(${ctx.mapPath(MAP_TIMEOUTS)})`)}`,
    );
  const slots = Math.max(0, ...mine.map((p) => p.choices));
  const pins = mine.flatMap((p) => p.pin ?? []);
  lines.push(...choiceLines(ctx, "http-request", slots, pins, true));
  if (mine.some((p) => p.instance.rule.grpc === true))
    lines.push(`${GRPC_UNAVAILABLE} if !{ var(txn.gh_be) -m found } ${GRPC_REQUEST}`);
  lines.push("http-request return status 500 default-errorfiles if !{ var(txn.gh_be) -m found }");
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
  lines.push(...statusClassLines(ctx));
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
  lines.push("use_backend %[var(txn.gh_be)]");
  return { header: `frontend ${fe.name}`, lines };
}
