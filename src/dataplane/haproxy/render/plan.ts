// Groups listeners into HAProxy frontends: one per (address, port) across all gateways. A port with
// TLS listeners gets a TCP frontend that routes by SNI; its terminating listeners are served by
// internal frontends reached over a unix socket (PROXY protocol keeps the client address).
import type { IRGateway, IRListener } from "../../../ir/types.ts";
import type { RenderIssue } from "./errors.ts";
import type { RenderContext } from "./model.ts";

export interface ListenerRef {
  gateway: IRGateway;
  listener: IRListener;
  /** IR path, e.g. `gateways[0].listeners[2]` */
  path: string;
  /** Short id used in map keys and values. */
  lid: string;
}

/** An HTTP-mode frontend (plain HTTP, HTTPS, or the internal HTTPS side of a TLS port). */
export interface HttpFrontend {
  kind: "http";
  name: string;
  /** The `bind` arguments after the address (ssl, crt-list, accept-proxy). */
  bind: string;
  /** TLS termination: crt-list file (relative) and the listeners' certificates. */
  tls: boolean;
  listeners: ListenerRef[];
}

/** A TCP-mode frontend: TCP listener, TLS passthrough/SNI router, or internal TLS terminator. */
export interface TcpFrontend {
  kind: "tcp";
  name: string;
  bind: string;
  /** "tcp": one TCP listener; "sni": routes by req.ssl_sni; "terminate": routes by ssl_fc_sni. */
  role: "tcp" | "sni" | "terminate";
  listeners: ListenerRef[];
  /** role "sni": listeners served by an internal frontend → loop backend name. */
  loops: Map<string, string>;
  tls: boolean;
}

export type Frontend = HttpFrontend | TcpFrontend;

export interface LoopBackend {
  name: string;
  socket: string;
}

export interface Plan {
  frontends: Frontend[];
  loops: LoopBackend[];
  issues: RenderIssue[];
}

/** `bind` address: `:80`, `10.0.0.1:80`, `[2001:db8::1]:80`. */
export function bindAddress(address: string, port: number): string {
  if (address === "") return `:${port}`;
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function addressTag(address: string): string {
  return address === "" ? "any" : address.replace(/:/g, "-");
}

export function listenerId(ctx: RenderContext, l: IRListener): string {
  return ctx.shortId("l", `listener\0${l.id}`);
}

/**
 * Client certificate validation with mode AllowInsecureFallback accepts a missing or invalid
 * certificate. HAProxy can ignore verification errors only for a whole bind line
 * (`ca-ignore-err`/`crt-ignore-err` are not crt-list options), so a frontend whose verifying
 * listeners all use AllowInsecureFallback gets those options on its bind and `verify optional` in
 * its rows; where it shares a bind with AllowValidOnly listeners (whose failures must still fail),
 * its rows use `verify none`: every client is accepted, without being asked for a certificate.
 */
export function ignoresClientCertErrors(listeners: readonly ListenerRef[]): boolean {
  const modes = listeners.flatMap((r) => {
    const cv = r.listener.tls?.clientValidation;
    return cv !== undefined && cv.caCertificates.length > 0 ? [cv.mode] : [];
  });
  return modes.length > 0 && modes.every((m) => m === "AllowInsecureFallback");
}

/** Bind options for a TLS frontend serving `listeners` (see ignoresClientCertErrors). */
export function tlsBindOptions(listeners: readonly ListenerRef[]): string {
  return ignoresClientCertErrors(listeners) ? " ca-ignore-err all crt-ignore-err all" : "";
}

export function planFrontends(ctx: RenderContext, gateways: readonly IRGateway[]): Plan {
  const groups = new Map<string, { address: string; port: number; listeners: ListenerRef[] }>();
  for (const [gi, g] of gateways.entries()) {
    const addresses = g.addresses.length === 0 ? [""] : [...new Set(g.addresses)];
    for (const [li, l] of g.listeners.entries()) {
      if (l.protocol === "UDP") continue; // UDP is served by the UDP forwarder, not HAProxy.
      for (const address of addresses) {
        const key = `${address}|${l.port}`;
        let group = groups.get(key);
        if (group === undefined) groups.set(key, (group = { address, port: l.port, listeners: [] }));
        group.listeners.push({
          gateway: g,
          listener: l,
          path: `gateways[${gi}].listeners[${li}]`,
          lid: listenerId(ctx, l),
        });
      }
    }
  }
  const plan: Plan = { frontends: [], loops: [], issues: [] };
  for (const group of groups.values()) {
    const name = ctx.claim(
      "proxy",
      `fe_${addressTag(group.address)}_${group.port}`,
      `frontend\0${group.address}\0${group.port}`,
    );
    const address = bindAddress(group.address, group.port);
    const byProtocol = (p: string): ListenerRef[] => group.listeners.filter((r) => r.listener.protocol === p);
    const http = byProtocol("HTTP");
    const https = byProtocol("HTTPS");
    const tls = byProtocol("TLS");
    const tcp = byProtocol("TCP");
    const kinds = [http, https, tls, tcp].filter((list) => list.length > 0).length;
    const conflict = (message: string): void => {
      for (const r of group.listeners) plan.issues.push({ path: r.path, subject: r.listener.id, message });
    };
    if (http.length > 0) {
      if (kinds > 1) conflict(`port ${group.port} mixes HTTP with other protocols on ${address}`);
      else plan.frontends.push({ kind: "http", name, bind: address, tls: false, listeners: http });
    } else if (tcp.length > 0) {
      if (kinds > 1 || tcp.length > 1)
        conflict(`port ${group.port} on ${address} has a TCP listener sharing it`);
      else
        plan.frontends.push({
          kind: "tcp",
          name,
          bind: address,
          role: "tcp",
          listeners: tcp,
          loops: new Map(),
          tls: false,
        });
    } else if (tls.length === 0) {
      plan.frontends.push({
        kind: "http",
        name,
        bind: `${address} ssl crt-list ${ctx.abs(`tls/${name}.crtlist`)}${tlsBindOptions(https)}`,
        tls: true,
        listeners: https,
      });
    } else {
      const loops = new Map<string, string>();
      const internal = (
        suffix: string,
        listeners: ListenerRef[],
      ): { bind: string; name: string } | undefined => {
        if (listeners.length === 0) return undefined;
        const inner = ctx.claim(
          "proxy",
          `${name}_${suffix}`,
          `frontend\0${group.address}\0${group.port}\0${suffix}`,
        );
        const socket = ctx.abs(`sock/${inner}.sock`);
        const loop = ctx.claim("proxy", `gh_loop_${inner}`, `loop\0${inner}`);
        plan.loops.push({ name: loop, socket });
        for (const r of listeners) loops.set(r.lid, loop);
        return {
          name: inner,
          bind: `unix@${socket} accept-proxy ssl crt-list ${ctx.abs(`tls/${inner}.crtlist`)}${tlsBindOptions(listeners)}`,
        };
      };
      const terminated = tls.filter((r) => r.listener.tls?.mode === "Terminate");
      plan.frontends.push({
        kind: "tcp",
        name,
        bind: address,
        role: "sni",
        listeners: [...https, ...tls],
        loops,
        tls: false,
      });
      const h = internal("https", https);
      if (h !== undefined)
        plan.frontends.push({ kind: "http", name: h.name, bind: h.bind, tls: true, listeners: https });
      const t = internal("tls", terminated);
      if (t !== undefined) {
        plan.frontends.push({
          kind: "tcp",
          name: t.name,
          bind: t.bind,
          role: "terminate",
          listeners: terminated,
          loops: new Map(),
          tls: true,
        });
      }
    }
  }
  return plan;
}

/**
 * Listener precedence for selection by hostname: exact hostnames, then wildcards by decreasing
 * length (most specific first), then listeners without a hostname. Stable: ties keep IR order.
 */
export function bySpecificity(listeners: readonly ListenerRef[]): ListenerRef[] {
  const rank = (r: ListenerRef): number => {
    const h = r.listener.hostname;
    if (h === undefined || h === "*") return 0;
    return h.startsWith("*.") ? 1 : 2;
  };
  return [...listeners].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    if (ra !== rb) return rb - ra;
    return (b.listener.hostname?.length ?? 0) - (a.listener.hostname?.length ?? 0);
  });
}
