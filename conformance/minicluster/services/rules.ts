// The mini-cluster's kube-proxy, pure part: Services + EndpointSlices → the service ports to
// program (`servicePorts`) → one nftables table (`renderRuleset`), applied in one transaction.
//
// Like kube-proxy's nftables mode: every ClusterIP:port and load-balancer IP:port jumps to a chain
// per service port, which picks one ready endpoint at random (`numgen random mod N`) and DNATs to
// it. Masquerade (SNAT to the node's bridge address) for hairpin traffic (a pod reaching itself
// through its Service) and for traffic from outside the bridge subnet; without br_netfilter
// (`masqueradeAll`) for all service traffic, so that replies always come back through the node.
// A service port without ready endpoints is rejected (TCP reset / ICMP port unreachable).
import { createHash } from "node:crypto";
import { cidrContains, parseCidr, type Cidr } from "../net.ts";
import { SERVICE_NAME_LABEL, type EndpointSlice, type Service } from "./types.ts";

export interface Endpoint {
  ip: string;
  port: number;
}

/** One port of one Service, with every address that leads to it and its ready endpoints. */
export interface ServicePortRule {
  /** `namespace/name:port/protocol` (port: the port's name, or its number when unnamed). */
  id: string;
  protocol: "tcp" | "udp";
  /** The ClusterIP first, then load-balancer ingress IPs. */
  addresses: string[];
  port: number;
  /** Ready endpoints, sorted, without duplicates. */
  endpoints: Endpoint[];
}

export interface ServicePortsOptions {
  /**
   * The API server, for the `kubernetes` Service in `default` when no EndpointSlice lists it (the
   * mini-cluster's API server runs with `--endpoint-reconciler-type=none`).
   */
  apiserver?: Endpoint;
  /** Load-balancer ingress IPs are programmed only inside this range (never someone else's address). */
  loadBalancerRange?: Cidr;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function isIPv4(text: string | undefined): text is string {
  const m = text === undefined ? null : IPV4.exec(text);
  return m !== null && m.slice(1).every((part) => Number(part) <= 255);
}

function compareEndpoints(a: Endpoint, b: Endpoint): number {
  const ka = a.ip
    .split(".")
    .map((p) => p.padStart(3, "0"))
    .join(".");
  const kb = b.ip
    .split(".")
    .map((p) => p.padStart(3, "0"))
    .join(".");
  return ka === kb ? a.port - b.port : ka < kb ? -1 : 1;
}

/** Ready endpoints of a service port, from the Service's IPv4 EndpointSlices. */
export function readyEndpoints(
  slices: readonly EndpointSlice[],
  portName: string,
  protocol: string,
): Endpoint[] {
  const seen = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.addressType !== "IPv4") continue;
    const port = (slice.ports ?? []).find(
      (p) => (p.name ?? "") === portName && (p.protocol ?? "TCP") === protocol,
    );
    if (port?.port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      // conditions.ready unset means ready (the EndpointSlice API's rule).
      if (endpoint.conditions?.ready === false) continue;
      const ip = endpoint.addresses[0];
      if (!isIPv4(ip)) continue;
      seen.set(`${ip}:${port.port}`, { ip, port: port.port });
    }
  }
  return [...seen.values()].sort(compareEndpoints);
}

/** Every TCP/UDP port of every Service with a ClusterIP, with its addresses and ready endpoints. */
export function servicePorts(
  services: readonly Service[],
  slices: readonly EndpointSlice[],
  options: ServicePortsOptions = {},
): ServicePortRule[] {
  const byService = new Map<string, EndpointSlice[]>();
  for (const slice of slices) {
    const name = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    if (name === undefined || slice.metadata.deletionTimestamp !== undefined) continue;
    const key = `${slice.metadata.namespace ?? "default"}/${name}`;
    byService.set(key, [...(byService.get(key) ?? []), slice]);
  }
  const rules: ServicePortRule[] = [];
  for (const service of services) {
    const spec = service.spec;
    if (spec.type === "ExternalName" || !isIPv4(spec.clusterIP)) continue; // headless, IPv6, none
    const ns = service.metadata.namespace ?? "default";
    const key = `${ns}/${service.metadata.name}`;
    const ingress =
      spec.type === "LoadBalancer"
        ? (service.status?.loadBalancer?.ingress ?? [])
            .map((i) => i.ip)
            .filter(isIPv4)
            .filter(
              (ip) => options.loadBalancerRange !== undefined && cidrContains(options.loadBalancerRange, ip),
            )
        : [];
    const addresses = [...new Set([spec.clusterIP, ...ingress])];
    for (const port of spec.ports ?? []) {
      const protocol = port.protocol ?? "TCP";
      if (protocol !== "TCP" && protocol !== "UDP") continue; // SCTP: not programmed
      let endpoints = readyEndpoints(byService.get(key) ?? [], port.name ?? "", protocol);
      if (
        endpoints.length === 0 &&
        key === "default/kubernetes" &&
        port.name === "https" &&
        options.apiserver !== undefined
      ) {
        endpoints = [options.apiserver];
      }
      rules.push({
        id: `${key}:${port.name !== undefined && port.name !== "" ? port.name : String(port.port)}/${protocol.toLowerCase()}`,
        protocol: protocol === "TCP" ? "tcp" : "udp",
        addresses,
        port: port.port,
        endpoints,
      });
    }
  }
  return rules.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export interface RulesetOptions {
  /** nftables table (family ip), e.g. `gatehouse_mc_default`. */
  table: string;
  /** The node's bridge: pods' traffic arrives there. */
  bridge: string;
  /** The bridge subnet (pods and the node). */
  nodeSubnet: string;
  /** The node's address: an endpoint there (the API server, hostNetwork pods) needs no hairpin SNAT. */
  nodeIP: string;
  /** Masquerade every service connection (when bridged replies do not pass conntrack: no br_netfilter). */
  masqueradeAll: boolean;
}

/** Masquerade mark (the bit kube-proxy uses). */
export const MASQ_MARK = "0x00004000";

const NAME = /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/;

function chainId(id: string): string {
  return createHash("sha256").update(id).digest("hex").slice(0, 12);
}

/** A comment for nft: only the characters of Kubernetes names survive (never a quote or a newline). */
function comment(id: string): string {
  const safe = id.replace(/[^a-zA-Z0-9._:/-]/g, "_").slice(0, 120);
  return ` comment "${safe}"`;
}

/**
 * The whole table as an `nft -f` script: create, delete, create again with every chain, so that
 * the kernel replaces it in one transaction (no moment without rules).
 */
export function renderRuleset(rules: readonly ServicePortRule[], options: RulesetOptions): string {
  const { table, bridge } = options;
  if (!NAME.test(table.replace(/_/g, "-"))) throw new Error(`bad nftables table name ${table}`);
  if (!/^[a-zA-Z0-9._-]{1,15}$/.test(bridge)) throw new Error(`bad interface name ${bridge}`);
  const subnet = parseCidr(options.nodeSubnet);
  const lines: string[] = [];
  const out = (line: string) => lines.push(line);
  out(`table ip ${table}`);
  out(`delete table ip ${table}`);
  out(`table ip ${table} {`);
  out(`  chain prerouting {`);
  out(`    type nat hook prerouting priority -100; policy accept;`);
  out(`    jump services`);
  out(`  }`);
  out(`  chain output {`);
  out(`    type nat hook output priority -100; policy accept;`);
  out(`    jump services`);
  out(`  }`);
  out(`  chain postrouting {`);
  out(`    type nat hook postrouting priority 100; policy accept;`);
  out(`    meta mark & ${MASQ_MARK} == 0 return`);
  out(`    meta mark set meta mark ^ ${MASQ_MARK}`);
  out(`    masquerade fully-random`);
  out(`  }`);
  // Pods' traffic is forwarded only back onto the bridge (service traffic after DNAT); nothing
  // that arrives on the bridge is routed off the machine.
  out(`  chain forward {`);
  out(`    type filter hook forward priority 0; policy accept;`);
  out(`    jump no_endpoints`);
  out(`    iifname "${bridge}" oifname != "${bridge}" drop`);
  out(`  }`);
  out(`  chain output_filter {`);
  out(`    type filter hook output priority 0; policy accept;`);
  out(`    jump no_endpoints`);
  out(`  }`);

  const services: string[] = [];
  const noEndpoints: string[] = [];
  const chains: string[] = [];
  for (const rule of rules) {
    const id = chainId(rule.id);
    const match = (address: string) => `ip daddr ${address} ${rule.protocol} dport ${rule.port}`;
    if (rule.endpoints.length === 0) {
      const reject = rule.protocol === "tcp" ? "reject with tcp reset" : "reject";
      for (const address of rule.addresses)
        noEndpoints.push(`    ${match(address)} ${reject}${comment(rule.id)}`);
      continue;
    }
    for (const address of rule.addresses)
      services.push(`    ${match(address)} jump svc_${id}${comment(rule.id)}`);
    chains.push(`  chain svc_${id} {`);
    if (options.masqueradeAll) chains.push(`    meta mark set meta mark | ${MASQ_MARK}`);
    else
      chains.push(
        `    ip saddr != ${subnet.network}/${subnet.prefix} meta mark set meta mark | ${MASQ_MARK}`,
      );
    if (rule.endpoints.length === 1) {
      chains.push(`    jump ep_${id}_0`);
    } else {
      const map = rule.endpoints.map((_, i) => `${i} : jump ep_${id}_${i}`).join(", ");
      chains.push(`    numgen random mod ${rule.endpoints.length} vmap { ${map} }`);
    }
    chains.push(`  }`);
    rule.endpoints.forEach((endpoint, i) => {
      chains.push(`  chain ep_${id}_${i} {`);
      if (endpoint.ip !== options.nodeIP)
        chains.push(`    ip saddr ${endpoint.ip} meta mark set meta mark | ${MASQ_MARK}`); // hairpin
      chains.push(`    meta l4proto ${rule.protocol} dnat to ${endpoint.ip}:${endpoint.port}`);
      chains.push(`  }`);
    });
  }
  out(`  chain services {`);
  lines.push(...services);
  out(`  }`);
  out(`  chain no_endpoints {`);
  lines.push(...noEndpoints);
  out(`  }`);
  lines.push(...chains);
  out(`}`);
  return `${lines.join("\n")}\n`;
}

/** The script that removes the table (nothing when it does not exist: `table` first creates it). */
export function deleteScript(table: string): string {
  return `table ip ${table}\ndelete table ip ${table}\n`;
}
