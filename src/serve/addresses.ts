// Gateway status addresses in standalone mode: a Gateway without spec.addresses listens on every
// interface, so its status lists the host's addresses (non-loopback first).
import type { StatusEntry } from "../status/types.ts";

export interface InterfaceAddress {
  address: string;
  family: "IPv4" | "IPv6";
  internal: boolean;
}

/** The addresses a Gateway bound on all interfaces is reachable at, most useful first. */
export function hostAddresses(interfaces: readonly InterfaceAddress[]): string[] {
  const v4 = interfaces.filter((i) => i.family === "IPv4");
  const ordered = [...v4.filter((i) => !i.internal), ...v4.filter((i) => i.internal)];
  return [...new Set(ordered.map((i) => i.address))];
}

/** Fills status.addresses of programmed Gateways that have none (bound on all interfaces). */
export function withBoundAddresses(
  statuses: readonly StatusEntry[],
  addresses: readonly string[],
): StatusEntry[] {
  if (addresses.length === 0) return [...statuses];
  return statuses.map((entry) => {
    if (entry.kind !== "Gateway" || entry.status["addresses"] !== undefined) return entry;
    const conditions =
      (entry.status["conditions"] as Array<{ type: string; status: string }> | undefined) ?? [];
    if (!conditions.some((c) => c.type === "Programmed" && c.status === "True")) return entry;
    return {
      ...entry,
      status: { addresses: addresses.map((value) => ({ type: "IPAddress", value })), ...entry.status },
    };
  });
}
