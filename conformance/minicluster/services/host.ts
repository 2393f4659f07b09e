// The host side of the mini-cluster's service proxy: the nftables table (replaced in one `nft -f`
// transaction), routes that make the service CIDR and load-balancer IPs reachable from the host
// through the bridge, and forwarding on the bridge only (net.ipv4.conf.<bridge>.forwarding; the
// global net.ipv4.ip_forward is left alone). Everything is removed by `teardown`; the routes and
// per-bridge sysctls also vanish with the bridge.
import { readFile, writeFile } from "node:fs/promises";
import { ip } from "../net.ts";
import { run } from "../proc.ts";
import { deleteScript } from "./rules.ts";

/** Routes we add carry this protocol number (`ip route ... proto 211`), so we find them again. */
export const ROUTE_PROTO = "211";

export interface HostNetworkOptions {
  table: string;
  bridge: string;
  nodeIP: string;
  serviceCIDR: string;
  /** For tests: the node is this network namespace instead of the host's. */
  netns?: string;
}

/** `file args`, inside `netns` when given. */
function inNetns(netns: string | undefined, file: string, args: string[]): [string, string[]] {
  return netns === undefined ? [file, args] : ["ip", ["netns", "exec", netns, file, ...args]];
}

export async function nft(script: string, netns?: string): Promise<void> {
  const [file, args] = inNetns(netns, "nft", ["-f", "-"]);
  await run(file, args, { input: script, timeoutMs: 15_000 });
}

export async function tableExists(table: string, netns?: string): Promise<boolean> {
  try {
    const [file, args] = inNetns(netns, "nft", ["list", "table", "ip", table]);
    await run(file, args, { timeoutMs: 15_000 });
    return true;
  } catch {
    return false;
  }
}

/** Removes the table if it exists (idempotent). */
export async function deleteTable(table: string, netns?: string): Promise<void> {
  await nft(deleteScript(table), netns);
}

/** True when bridged IPv4 traffic passes iptables/nftables hooks (br_netfilter loaded and on). */
export async function bridgeNetfilter(): Promise<boolean> {
  try {
    return (await readFile("/proc/sys/net/bridge/bridge-nf-call-iptables", "utf8")).trim() === "1";
  } catch {
    return false;
  }
}

async function sysctl(path: string, value: string, netns: string | undefined): Promise<void> {
  if (netns === undefined) await writeFile(`/proc/sys/net/ipv4/conf/${path}`, value);
  else
    await run("ip", [
      "netns",
      "exec",
      netns,
      "sysctl",
      "-q",
      "-w",
      `net.ipv4.conf.${path.replace("/", ".")}=${value}`,
    ]);
}

export class HostNetwork {
  readonly #options: HostNetworkOptions;
  #routes = new Set<string>();

  constructor(options: HostNetworkOptions) {
    this.#options = options;
  }

  #ip(...args: string[]): Promise<string> {
    return this.#options.netns === undefined ? ip(...args) : ip("-n", this.#options.netns, ...args);
  }

  /** Forwarding on the bridge, no ICMP redirects, the service CIDR routed to the bridge. */
  async setup(): Promise<void> {
    const { bridge, nodeIP, serviceCIDR } = this.#options;
    await sysctl(`${bridge}/forwarding`, "1", this.#options.netns);
    await sysctl(`${bridge}/send_redirects`, "0", this.#options.netns);
    await this.#ip("route", "replace", serviceCIDR, "dev", bridge, "src", nodeIP, "proto", ROUTE_PROTO);
    // Load-balancer routes a previous run of ours left (same bridge) are reconciled by `apply`.
    const existing = JSON.parse(
      await this.#ip("-j", "route", "show", "dev", bridge, "proto", ROUTE_PROTO),
    ) as Array<{
      dst?: string;
    }>;
    for (const route of existing) {
      if (route.dst !== undefined && /^\d+\.\d+\.\d+\.\d+$/.test(route.dst)) this.#routes.add(route.dst);
    }
  }

  /** Replaces the table with `script`, then routes exactly `loadBalancerIPs` (each a /32) to the bridge. */
  async apply(script: string, loadBalancerIPs: readonly string[]): Promise<void> {
    await nft(script, this.#options.netns);
    const { bridge, nodeIP } = this.#options;
    const wanted = new Set(loadBalancerIPs);
    for (const address of wanted) {
      if (this.#routes.has(address)) continue;
      await this.#ip("route", "replace", `${address}/32`, "dev", bridge, "src", nodeIP, "proto", ROUTE_PROTO);
      this.#routes.add(address);
    }
    for (const address of [...this.#routes]) {
      if (wanted.has(address)) continue;
      await this.#ip("route", "del", `${address}/32`, "dev", bridge, "proto", ROUTE_PROTO).catch(
        () => undefined,
      );
      this.#routes.delete(address);
    }
  }

  /** Removes the table, the routes and the bridge's forwarding; collects errors. */
  async teardown(): Promise<void> {
    const { bridge, table, serviceCIDR } = this.#options;
    const errors: string[] = [];
    await deleteTable(table, this.#options.netns).catch((error: unknown) => errors.push(String(error)));
    for (const address of this.#routes) {
      await this.#ip("route", "del", `${address}/32`, "dev", bridge, "proto", ROUTE_PROTO).catch(
        () => undefined,
      );
    }
    this.#routes.clear();
    await this.#ip("route", "del", serviceCIDR, "dev", bridge, "proto", ROUTE_PROTO).catch(() => undefined);
    await sysctl(`${bridge}/forwarding`, "0", this.#options.netns).catch(() => undefined); // the bridge may be gone
    if (errors.length > 0) throw new Error(`service proxy teardown: ${errors.join("; ")}`);
  }
}
