// The mini-cluster's load-balancer allocator, pure part (test infrastructure, in the role
// cloud-provider-kind or MetalLB play on kind): which IPv4 address each Service of type
// LoadBalancer gets. Deterministic, and stable across restarts because the addresses already in
// `status.loadBalancer.ingress` are kept first.
import { cidrContains, intToIpv4, ipv4ToInt, type Cidr } from "../net.ts";
import type { Service } from "./types.ts";

export interface LoadBalancerOptions {
  /** Automatic assignment from here (default 10.245.0.0/24). */
  pool: Cidr;
  /** `spec.loadBalancerIP` is honoured inside here (default 10.245.0.0/16; contains the pool). */
  range: Cidr;
  /** Services with this `spec.loadBalancerClass` are ours too (those without a class always are). */
  loadBalancerClass: string;
}

export interface LoadBalancerRequest {
  /** namespace/name */
  key: string;
  /** `spec.loadBalancerIP`, when set. */
  requestedIP?: string;
  /** IPs in `status.loadBalancer.ingress` now. */
  currentIPs: string[];
}

export type LoadBalancerPlan = { ip: string } | { problem: string };

export function isOurs(service: Service, loadBalancerClass: string): boolean {
  if (service.spec.type !== "LoadBalancer" || service.metadata.deletionTimestamp !== undefined) return false;
  const cls = service.spec.loadBalancerClass;
  return cls === undefined || cls === "" || cls === loadBalancerClass;
}

export function requestOf(service: Service): LoadBalancerRequest {
  const requested = service.spec.loadBalancerIP;
  return {
    key: `${service.metadata.namespace ?? "default"}/${service.metadata.name}`,
    ...(requested !== undefined && requested !== "" ? { requestedIP: requested } : {}),
    currentIPs: (service.status?.loadBalancer?.ingress ?? [])
      .map((i) => i.ip)
      .filter((ip): ip is string => ip !== undefined),
  };
}

function validIPv4(text: string): boolean {
  try {
    ipv4ToInt(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * One address (or a problem) per request. Order: addresses already assigned (in the range, and
 * equal to the requested one when there is one) are kept; then requested addresses (inside the
 * range and free); then the lowest free pool address (not the pool's network or broadcast address).
 */
export function planAddresses(
  requests: readonly LoadBalancerRequest[],
  options: Pick<LoadBalancerOptions, "pool" | "range">,
): Map<string, LoadBalancerPlan> {
  const sorted = [...requests].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const plans = new Map<string, LoadBalancerPlan>();
  const owner = new Map<string, string>();
  const take = (key: string, ip: string) => {
    owner.set(ip, key);
    plans.set(key, { ip });
  };
  for (const request of sorted) {
    const keep = request.currentIPs.find(
      (ip) =>
        validIPv4(ip) &&
        cidrContains(options.range, ip) &&
        !owner.has(ip) &&
        (request.requestedIP === undefined || request.requestedIP === ip),
    );
    if (keep !== undefined) take(request.key, keep);
  }
  for (const request of sorted) {
    if (plans.has(request.key) || request.requestedIP === undefined) continue;
    const ip = request.requestedIP;
    const range = `${options.range.network}/${options.range.prefix}`;
    if (!validIPv4(ip))
      plans.set(request.key, { problem: `spec.loadBalancerIP ${ip} is not an IPv4 address` });
    else if (!cidrContains(options.range, ip))
      plans.set(request.key, { problem: `spec.loadBalancerIP ${ip} is outside ${range}` });
    else if (owner.has(ip))
      plans.set(request.key, { problem: `spec.loadBalancerIP ${ip} is in use by ${owner.get(ip) ?? "?"}` });
    else take(request.key, ip);
  }
  const first = ipv4ToInt(options.pool.network) + (options.pool.prefix < 31 ? 1 : 0);
  const last =
    ipv4ToInt(options.pool.network) + 2 ** (32 - options.pool.prefix) - (options.pool.prefix < 31 ? 2 : 1);
  let next = first;
  for (const request of sorted) {
    if (plans.has(request.key)) continue;
    while (next <= last && owner.has(intToIpv4(next))) next++;
    if (next > last) {
      plans.set(request.key, {
        problem: `the pool ${options.pool.network}/${options.pool.prefix} is exhausted`,
      });
      continue;
    }
    take(request.key, intToIpv4(next));
  }
  return plans;
}
