// Host networking of the mini-cluster, with iproute2: the node's bridge, the pods' network
// namespaces and veth pairs, free TCP ports. Only private addresses inside interfaces and
// namespaces we create; nothing is routed off the machine (no default routes in pods, no NAT).
import { createServer } from "node:net";
import { run } from "./proc.ts";

export async function ip(...args: string[]): Promise<string> {
  return run("ip", args, { timeoutMs: 15_000 });
}

interface IpAddrJson {
  ifname?: string;
  addr_info?: Array<{ local?: string; prefixlen?: number; family?: string }>;
}

export async function linkExists(name: string): Promise<boolean> {
  try {
    await ip("link", "show", "dev", name);
    return true;
  } catch {
    return false;
  }
}

/** Interfaces of the host with their IPv4 addresses. */
export async function hostAddresses(): Promise<
  Array<{ ifname: string; address: string; prefixlen: number }>
> {
  const out = JSON.parse(await ip("-j", "-4", "addr", "show")) as IpAddrJson[];
  const result: Array<{ ifname: string; address: string; prefixlen: number }> = [];
  for (const link of out) {
    for (const a of link.addr_info ?? []) {
      if (a.local !== undefined && a.prefixlen !== undefined)
        result.push({ ifname: link.ifname ?? "?", address: a.local, prefixlen: a.prefixlen });
    }
  }
  return result;
}

export function ipv4ToInt(address: string): number {
  const parts = address.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

export function intToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

export interface Cidr {
  /** Network address. */
  network: string;
  prefix: number;
}

export function parseCidr(text: string): Cidr {
  const [address, prefixText] = text.split("/");
  const prefix = Number(prefixText);
  if (address === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new Error(`not an IPv4 CIDR: ${text}`);
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: intToIpv4((ipv4ToInt(address) & mask) >>> 0), prefix };
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  const mask = cidr.prefix === 0 ? 0 : (0xffffffff << (32 - cidr.prefix)) >>> 0;
  return (ipv4ToInt(address) & mask) >>> 0 === ipv4ToInt(cidr.network);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const shorter = a.prefix <= b.prefix ? a : b;
  const other = shorter === a ? b : a;
  return cidrContains(shorter, other.network);
}

/**
 * Creates the node's bridge with `address/prefix` and brings it up. Refuses when the interface
 * exists already or another interface has an address overlapping the subnet.
 */
export async function createBridge(name: string, address: string, prefix: number): Promise<void> {
  if (await linkExists(name)) {
    throw new Error(
      `interface ${name} exists already (another mini-cluster? \`npm run minicluster -- stop\`, or pick another --bridge)`,
    );
  }
  const subnet = parseCidr(`${address}/${prefix}`);
  for (const a of await hostAddresses()) {
    if (cidrsOverlap(subnet, parseCidr(`${a.address}/${a.prefixlen}`))) {
      throw new Error(
        `${a.address}/${a.prefixlen} on ${a.ifname} overlaps ${subnet.network}/${prefix}: pick another --node-cidr`,
      );
    }
  }
  await ip("link", "add", "name", name, "type", "bridge");
  await ip("addr", "add", `${address}/${prefix}`, "dev", name);
  await ip("link", "set", name, "up");
}

export async function deleteLink(name: string): Promise<boolean> {
  if (!(await linkExists(name))) return false;
  await ip("link", "del", "dev", name);
  return true;
}

export async function listNetns(): Promise<string[]> {
  const out = await ip("netns", "list");
  return out
    .split("\n")
    .map((line) => line.trim().split(" ")[0] ?? "")
    .filter((name) => name !== "");
}

export async function deleteNetns(name: string): Promise<void> {
  try {
    await ip("netns", "del", name);
  } catch (error) {
    if (!(await listNetns()).includes(name)) return;
    throw error;
  }
}

/** Names of links whose name starts with `prefix`. */
export async function linksWithPrefix(prefix: string): Promise<string[]> {
  const out = JSON.parse(await ip("-j", "link", "show")) as Array<{ ifname?: string }>;
  return out.map((l) => l.ifname ?? "").filter((n) => n.startsWith(prefix));
}

/** True when nothing listens on host:port (checked by binding it briefly). */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A TCP port that is free on `host` right now (chosen by the kernel). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port"))));
    });
  });
}

/** `preferred` if it is free on host, otherwise a kernel-chosen free port. */
export async function pickPort(host: string, preferred: number): Promise<number> {
  return (await portFree(host, preferred)) ? preferred : freePort(host);
}
