// What the UDP forwarder should serve, computed from the IR (pure). One socket per (address, port),
// exactly like HAProxy's frontends (see ../haproxy/render/plan.ts): a Gateway with spec.addresses
// listens on each of them, one without listens on every interface (address ""). Each UDP listener
// forwards to its effective UDPRoute: the first of `udpRoutes` (the oldest; the IR keeps the others
// for status accounting only).
import { isIPv6 } from "node:net";
import type { IR, IREndpoint, IRObjectRef } from "../../ir/types.ts";

/** One weighted share of a route: a resolved backend, or an invalid backendRef (`backend` absent). */
export interface UdpShare {
  weight: number;
  backend?: { id: string; endpoints: readonly IREndpoint[] };
}

export interface UdpRoutePlan {
  route: IRObjectRef;
  shares: UdpShare[];
}

export interface UdpListenerPlan {
  /** `address|port`: identifies the socket across applies. */
  key: string;
  /** "" = every interface. */
  address: string;
  port: number;
  /** The IR listener served here (`namespace/gateway/listener`). */
  listenerId: string;
  /** The effective route; absent when no route is attached (every datagram is dropped). */
  route?: UdpRoutePlan;
}

/** A listener that cannot be served (another one of ours holds or overlaps its address and port). */
export interface UdpListenerProblem {
  listenerId: string;
  address: string;
  port: number;
  message: string;
}

export interface UdpPlan {
  listeners: UdpListenerPlan[];
  problems: UdpListenerProblem[];
}

export function planUdp(ir: IR): UdpPlan {
  const backends = new Map(ir.backends.map((b) => [b.id, b]));
  const candidates: UdpListenerPlan[] = [];
  for (const g of ir.gateways) {
    const addresses = g.addresses.length === 0 ? [""] : [...new Set(g.addresses.map(normalizeAddress))];
    for (const l of g.listeners) {
      if (l.protocol !== "UDP") continue;
      const effective = l.udpRoutes?.[0];
      const route: UdpRoutePlan | undefined =
        effective === undefined
          ? undefined
          : {
              route: effective.route,
              shares: effective.backends.map((wb): UdpShare => {
                const b = wb.backend === undefined || wb.invalid ? undefined : backends.get(wb.backend);
                return b === undefined || b.protocol !== "udp"
                  ? { weight: wb.weight }
                  : {
                      weight: wb.weight,
                      backend: {
                        id: b.id,
                        endpoints: b.endpoints.map((e) => ({
                          address: normalizeAddress(e.address),
                          port: e.port,
                        })),
                      },
                    };
              }),
            };
      for (const address of addresses) {
        candidates.push({
          key: `${address}|${l.port}`,
          address,
          port: l.port,
          listenerId: l.id,
          ...(route !== undefined ? { route } : {}),
        });
      }
    }
  }
  // Two listeners on one address and port, or one on every interface and one on a single address
  // with the same port, cannot both have the datagrams: neither is served (as HAProxy's renderer
  // treats TCP listeners sharing a port), and both say why.
  const problems: UdpListenerProblem[] = [];
  const byPort = new Map<number, UdpListenerPlan[]>();
  for (const c of candidates) byPort.set(c.port, [...(byPort.get(c.port) ?? []), c]);
  const clashing = new Set<UdpListenerPlan>();
  for (const [port, list] of byPort) {
    for (const a of list) {
      const other = list.find(
        (b) =>
          b !== a &&
          b.listenerId !== a.listenerId &&
          (b.address === a.address || b.address === "" || a.address === ""),
      );
      if (other === undefined) continue;
      clashing.add(a);
      problems.push({
        listenerId: a.listenerId,
        address: a.address,
        port,
        message: `UDP port ${port} on ${describeAddress(a.address)} is also used by listener ${other.listenerId} on ${describeAddress(other.address)}`,
      });
    }
  }
  const listeners = candidates.filter((c) => !clashing.has(c));
  // One socket per key (the same listener listed twice would be a duplicate address: keep one).
  const seen = new Set<string>();
  return {
    listeners: listeners.filter((l) => (seen.has(l.key) ? false : (seen.add(l.key), true))),
    problems,
  };
}

/** Canonical text of an IP address (IPv6 compressed and lower-case); anything else unchanged. */
export function normalizeAddress(address: string): string {
  if (!isIPv6(address)) return address;
  try {
    return new URL(`udp://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
}

export function describeAddress(address: string): string {
  return address === "" ? "every interface" : address;
}

/** `host:port`, with brackets around IPv6 hosts; `*:port` for every interface. */
export function formatHostPort(address: string, port: number): string {
  if (address === "") return `*:${port}`;
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
