// IR validation: the invariants the data plane relies on. The translator's output must always pass;
// the data plane checks again before applying (an IR read from elsewhere gets the same guarantee).
import type { IR, IRHTTPFilter, IRListener, IRWeightedBackend } from "./types.ts";

const HOSTNAME = /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/;

/** Returns every violated invariant as `path: problem`; empty when the IR is valid. */
export function validateIR(ir: IR): string[] {
  const problems: string[] = [];
  const backendIds = new Set<string>();
  for (const [i, b] of ir.backends.entries()) {
    const at = `backends[${i}]`;
    if (backendIds.has(b.id)) problems.push(`${at}: duplicate backend id ${b.id}`);
    backendIds.add(b.id);
    if (!validPort(b.port)) problems.push(`${at}.port: ${b.port} is not a port`);
    for (const [j, e] of b.endpoints.entries()) {
      if (!validPort(e.port)) problems.push(`${at}.endpoints[${j}].port: ${e.port} is not a port`);
    }
  }
  const checkBackends = (at: string, list: readonly IRWeightedBackend[]): void => {
    for (const [k, wb] of list.entries()) {
      const p = `${at}.backends[${k}]`;
      if (!Number.isInteger(wb.weight) || wb.weight < 0)
        problems.push(`${p}.weight: ${wb.weight} is not a weight`);
      if (wb.invalid === true) {
        // The type rules this out; an IR read from elsewhere (JSON) gets the same check at runtime.
        const named: unknown = (wb as { backend?: unknown }).backend;
        if (named !== undefined)
          problems.push(`${p}: an invalid entry names backend ${JSON.stringify(named)}`);
      } else if (wb.backend === undefined || !backendIds.has(wb.backend)) {
        problems.push(`${p}.backend: ${JSON.stringify(wb.backend)} is not in backends`);
      }
      checkFilters(p, wb.filters);
    }
  };
  const checkFilters = (at: string, filters: readonly IRHTTPFilter[]): void => {
    for (const [k, f] of filters.entries()) {
      if (f.type === "RequestMirror" && !backendIds.has(f.mirror.backend)) {
        problems.push(`${at}.filters[${k}].mirror.backend: ${f.mirror.backend} is not in backends`);
      }
      if (f.type === "RequestMirror" && !(f.mirror.percent >= 0 && f.mirror.percent <= 100)) {
        problems.push(`${at}.filters[${k}].mirror.percent: ${f.mirror.percent} is outside 0..100`);
      }
      if (f.type === "ExternalAuth") {
        if (!backendIds.has(f.auth.backend))
          problems.push(`${at}.filters[${k}].auth.backend: ${f.auth.backend} is not in backends`);
        const size = f.auth.forwardBodyMaxSize;
        if (!Number.isInteger(size) || size < 0 || size > 65535)
          problems.push(`${at}.filters[${k}].auth.forwardBodyMaxSize: ${size} is outside 0..65535`);
      }
    }
  };
  const gatewayIds = new Set<string>();
  for (const [gi, g] of ir.gateways.entries()) {
    const gat = `gateways[${gi}]`;
    if (gatewayIds.has(g.id)) problems.push(`${gat}: duplicate gateway id ${g.id}`);
    gatewayIds.add(g.id);
    const listenerIds = new Set<string>();
    for (const [li, l] of g.listeners.entries()) {
      const lat = `${gat}.listeners[${li}]`;
      if (listenerIds.has(l.id)) problems.push(`${lat}: duplicate listener id ${l.id}`);
      listenerIds.add(l.id);
      if (!validPort(l.port)) problems.push(`${lat}.port: ${l.port} is not a port`);
      problems.push(...protocolShape(lat, l));
      const ruleIds = new Set<string>();
      for (const [vi, vh] of (l.virtualHosts ?? []).entries()) {
        const vat = `${lat}.virtualHosts[${vi}]`;
        if (!HOSTNAME.test(vh.hostname))
          problems.push(`${vat}.hostname: ${JSON.stringify(vh.hostname)} is not a hostname`);
        for (const [ri, r] of vh.rules.entries()) {
          const rat = `${vat}.rules[${ri}]`;
          if (ruleIds.has(`${vh.hostname}|${r.id}`)) problems.push(`${rat}: duplicate rule id ${r.id}`);
          ruleIds.add(`${vh.hostname}|${r.id}`);
          checkFilters(rat, r.filters);
          checkBackends(rat, r.backends);
        }
      }
      for (const [ri, r] of [
        ...(l.tlsRoutes ?? []),
        ...(l.tcpRoutes ?? []),
        ...(l.udpRoutes ?? []),
      ].entries()) {
        checkBackends(`${lat}.routes[${ri}]`, r.backends);
      }
    }
  }
  return problems;
}

/**
 * The shape each protocol's listener must have. The IR type says the same; an IR read from
 * elsewhere (JSON) gets the check at runtime, hence the loose view of the listener.
 */
function protocolShape(at: string, listener: IRListener): string[] {
  const l = listener as Partial<
    Record<"virtualHosts" | "tls" | "tlsRoutes" | "tcpRoutes" | "udpRoutes", unknown>
  > & {
    protocol: string;
    tls?: { certificates?: unknown[] };
  };
  const out: string[] = [];
  const http = l.protocol === "HTTP" || l.protocol === "HTTPS";
  if (http !== (l.virtualHosts !== undefined))
    out.push(`${at}: virtualHosts must be present exactly for HTTP/HTTPS`);
  if ((l.protocol === "HTTPS" || l.protocol === "TLS") !== (l.tls !== undefined)) {
    out.push(`${at}: tls must be present exactly for HTTPS/TLS`);
  }
  if (l.protocol === "HTTPS" && l.tls !== undefined && (l.tls.certificates ?? []).length === 0) {
    out.push(`${at}.tls.certificates: an HTTPS listener needs a certificate`);
  }
  for (const [field, protocol] of [
    ["tlsRoutes", "TLS"],
    ["tcpRoutes", "TCP"],
    ["udpRoutes", "UDP"],
  ] as const) {
    if (l.protocol !== protocol && l[field] !== undefined)
      out.push(`${at}: ${field} on a ${l.protocol} listener`);
  }
  return out;
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}
