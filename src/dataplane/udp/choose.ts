// Choosing where a new flow goes (pure; the random source is injected). A share is picked by weight
// among the route's backendRefs, then an endpoint of that backend uniformly. What cannot be
// forwarded says why, with the reason used in `gatehouse_udp_drops_total{reason}`.
import type { UdpRoutePlan } from "./plan.ts";

export interface UdpTarget {
  backendId: string;
  address: string;
  port: number;
}

/** Why a datagram was not forwarded (the `reason` label of gatehouse_udp_drops_total). */
export type UdpDropReason =
  /** The listener has no route attached. */
  | "no_route"
  /** The route has no backendRef with a weight above 0. */
  | "no_backend"
  /** The share chosen belongs to a backendRef that could not be resolved. */
  | "invalid_backend"
  /** The backend chosen has no ready endpoint. */
  | "no_endpoint"
  /** Sending failed (the kernel refused the datagram, the socket was closed meanwhile). */
  | "send_error"
  /** A datagram reached a flow's upstream socket from somewhere other than its endpoint. */
  | "unexpected_source";

export type UdpChoice = { ok: true; target: UdpTarget } | { ok: false; reason: UdpDropReason };

/** `random` returns a number in [0, 1), like Math.random. */
export function chooseTarget(route: UdpRoutePlan | undefined, random: () => number): UdpChoice {
  if (route === undefined) return { ok: false, reason: "no_route" };
  let total = 0;
  for (const s of route.shares) if (s.weight > 0) total += s.weight;
  if (total <= 0) return { ok: false, reason: "no_backend" };
  let point = random() * total;
  let chosen = undefined as (typeof route.shares)[number] | undefined;
  for (const s of route.shares) {
    if (s.weight <= 0) continue;
    chosen = s;
    if (point < s.weight) break;
    point -= s.weight;
  }
  if (chosen?.backend === undefined) return { ok: false, reason: "invalid_backend" };
  const endpoints = chosen.backend.endpoints;
  if (endpoints.length === 0) return { ok: false, reason: "no_endpoint" };
  const endpoint = endpoints[Math.min(endpoints.length - 1, Math.floor(random() * endpoints.length))];
  if (endpoint === undefined) return { ok: false, reason: "no_endpoint" };
  return {
    ok: true,
    target: { backendId: chosen.backend.id, address: endpoint.address, port: endpoint.port },
  };
}
