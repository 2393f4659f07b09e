// Gateway status addresses in standalone mode: a Gateway without spec.addresses listens on every
// interface, so its status lists the host's addresses (non-loopback first).

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
