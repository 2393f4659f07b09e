// The mini-cluster's service networking (conformance/minicluster/services/): rule generation and
// load-balancer address planning (pure), and the real thing in network namespaces (root): a node
// namespace with a bridge and three "pods" running a TCP/UDP echo, one of them unready.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { ip, parseCidr } from "../../conformance/minicluster/net.ts";
import { run } from "../../conformance/minicluster/proc.ts";
import { HostNetwork, tableExists } from "../../conformance/minicluster/services/host.ts";
import { planAddresses, requestOf, isOurs } from "../../conformance/minicluster/services/lb.ts";
import {
  readyEndpoints,
  renderRuleset,
  servicePorts,
  type RulesetOptions,
} from "../../conformance/minicluster/services/rules.ts";
import type { EndpointSlice, Service } from "../../conformance/minicluster/services/types.ts";

const ECHO = join(dirname(fileURLToPath(import.meta.url)), "fixtures/echo.ts");

function service(
  name: string,
  clusterIP: string,
  extra: Partial<Service["spec"]> = {},
  ingress: string[] = [],
): Service {
  return {
    metadata: { name, namespace: "ns" },
    spec: {
      type: "ClusterIP",
      clusterIP,
      ports: [
        { name: "http", port: 80, protocol: "TCP" },
        { name: "dns", port: 53, protocol: "UDP" },
      ],
      ...extra,
    },
    ...(ingress.length > 0 ? { status: { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } } } : {}),
  };
}

function slice(
  serviceName: string,
  endpoints: Array<[string, boolean | undefined]>,
  ports: EndpointSlice["ports"] = [
    { name: "http", port: 8080, protocol: "TCP" },
    { name: "dns", port: 8080, protocol: "UDP" },
  ],
): EndpointSlice {
  return {
    metadata: {
      name: `${serviceName}-${Math.random().toString(36).slice(2, 7)}`,
      namespace: "ns",
      labels: { "kubernetes.io/service-name": serviceName },
    },
    addressType: "IPv4",
    endpoints: endpoints.map(([address, ready]) => ({
      addresses: [address],
      ...(ready !== undefined ? { conditions: { ready } } : {}),
    })),
    ports,
  };
}

const LB_RANGE = parseCidr("10.245.0.0/16");

describe("service rules (pure)", () => {
  test("ready endpoints only, matched by port name and protocol, deduplicated across slices, sorted", () => {
    const slices = [
      slice("web", [
        ["10.244.1.10", true],
        ["10.244.1.9", undefined],
        ["10.244.1.8", false],
      ]),
      slice("web", [["10.244.1.9", true]]),
    ];
    assert.deepEqual(readyEndpoints(slices, "http", "TCP"), [
      { ip: "10.244.1.9", port: 8080 },
      { ip: "10.244.1.10", port: 8080 },
    ]);
    assert.deepEqual(readyEndpoints(slices, "http", "UDP"), []);
    assert.deepEqual(readyEndpoints(slices, "other", "TCP"), []);
  });

  test("servicePorts: ClusterIP and in-range load-balancer IPs; headless, ExternalName and SCTP skipped", () => {
    const services: Service[] = [
      service("web", "10.96.0.20", { type: "LoadBalancer" }, ["10.245.0.3", "192.0.2.1"]),
      service("headless", "None"),
      { metadata: { name: "ext", namespace: "ns" }, spec: { type: "ExternalName" } },
      {
        metadata: { name: "sctp", namespace: "ns" },
        spec: { clusterIP: "10.96.0.30", ports: [{ port: 9, protocol: "SCTP" }] },
      },
    ];
    const rules = servicePorts(
      services,
      [slice("web", [["10.244.1.9", true]]), slice("headless", [["10.244.1.5", true]])],
      {
        loadBalancerRange: LB_RANGE,
      },
    );
    assert.deepEqual(
      rules.map((r) => [r.id, r.protocol, r.addresses, r.port, r.endpoints]),
      [
        ["ns/web:dns/udp", "udp", ["10.96.0.20", "10.245.0.3"], 53, [{ ip: "10.244.1.9", port: 8080 }]],
        ["ns/web:http/tcp", "tcp", ["10.96.0.20", "10.245.0.3"], 80, [{ ip: "10.244.1.9", port: 8080 }]],
      ],
    );
  });

  test("the kubernetes Service goes to the API server when no EndpointSlice lists it", () => {
    const kubernetes: Service = {
      metadata: { name: "kubernetes", namespace: "default" },
      spec: {
        clusterIP: "10.96.0.1",
        ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: 6443 }],
      },
    };
    const apiserver = { ip: "10.244.0.1", port: 6443 };
    assert.deepEqual(servicePorts([kubernetes], [], { apiserver })[0]?.endpoints, [apiserver]);
    assert.deepEqual(servicePorts([kubernetes], [])[0]?.endpoints, []);
  });

  const options: RulesetOptions = {
    table: "gatehouse_mc_t",
    bridge: "gh-br0",
    nodeSubnet: "10.244.0.0/16",
    nodeIP: "10.244.0.1",
    masqueradeAll: false,
  };

  test("renderRuleset: one table replaced at once, random spread, hairpin mark, reject without endpoints", () => {
    const rules = servicePorts(
      [
        service("web", "10.96.0.20", { type: "LoadBalancer" }, ["10.245.0.3"]),
        service("empty", "10.96.0.21"),
      ],
      [
        slice("web", [
          ["10.244.1.9", true],
          ["10.244.1.10", true],
          ["10.244.0.1", true],
        ]),
      ],
      { loadBalancerRange: LB_RANGE },
    );
    const text = renderRuleset(rules, options);
    const lines = text.split("\n").map((l) => l.trim());
    assert.deepEqual(lines.slice(0, 3), [
      "table ip gatehouse_mc_t",
      "delete table ip gatehouse_mc_t",
      "table ip gatehouse_mc_t {",
    ]);
    const jumps = lines.filter((l) => l.startsWith("ip daddr") && l.includes(" jump svc_"));
    assert.deepEqual(
      jumps.map((l) => l.replace(/svc_[0-9a-f]+/, "svc_X")),
      [
        'ip daddr 10.96.0.20 udp dport 53 jump svc_X comment "ns/web:dns/udp"',
        'ip daddr 10.245.0.3 udp dport 53 jump svc_X comment "ns/web:dns/udp"',
        'ip daddr 10.96.0.20 tcp dport 80 jump svc_X comment "ns/web:http/tcp"',
        'ip daddr 10.245.0.3 tcp dport 80 jump svc_X comment "ns/web:http/tcp"',
      ],
    );
    assert.equal(
      lines.filter((l) => /^numgen random mod 3 vmap \{ 0 : jump ep_\w+_0, 1 : jump/.test(l)).length,
      2,
    );
    assert.ok(lines.includes("ip saddr 10.244.1.9 meta mark set meta mark | 0x00004000"));
    assert.ok(
      !lines.includes("ip saddr 10.244.0.1 meta mark set meta mark | 0x00004000"),
      "no hairpin mark for the node",
    );
    assert.ok(lines.includes("meta l4proto tcp dnat to 10.244.1.10:8080"));
    assert.ok(lines.includes("meta l4proto udp dnat to 10.244.0.1:8080"));
    assert.ok(lines.includes("ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x00004000"));
    assert.ok(
      lines.includes('ip daddr 10.96.0.21 tcp dport 80 reject with tcp reset comment "ns/empty:http/tcp"'),
    );
    assert.ok(lines.includes('ip daddr 10.96.0.21 udp dport 53 reject comment "ns/empty:dns/udp"'));
    assert.ok(lines.includes('iifname "gh-br0" oifname != "gh-br0" drop'));
    // masqueradeAll marks every connection in the service chain.
    const all = renderRuleset(rules, { ...options, masqueradeAll: true })
      .split("\n")
      .map((l) => l.trim());
    assert.ok(all.includes("meta mark set meta mark | 0x00004000"));
    assert.ok(!all.includes("ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x00004000"));
    // Same input, same text (the proxy skips applying an unchanged ruleset).
    assert.equal(renderRuleset(rules, options), text);
  });

  test("renderRuleset refuses names that could break the script", () => {
    assert.throws(() => renderRuleset([], { ...options, table: 'x"; flush ruleset' }));
    assert.throws(() => renderRuleset([], { ...options, bridge: 'br"0' }));
  });
});

describe("load-balancer addresses (pure)", () => {
  const pool = parseCidr("10.245.0.0/24");
  const range = parseCidr("10.245.0.0/16");
  const lb = (name: string, requested?: string, current: string[] = []): Service => ({
    metadata: { name, namespace: "ns" },
    spec: {
      type: "LoadBalancer",
      clusterIP: "10.96.0.9",
      ...(requested !== undefined ? { loadBalancerIP: requested } : {}),
    },
    ...(current.length > 0 ? { status: { loadBalancer: { ingress: current.map((ip) => ({ ip })) } } } : {}),
  });

  test("existing assignments are kept, requests honoured inside the range, the rest from the pool", () => {
    const plans = planAddresses(
      [
        lb("a"),
        lb("b", undefined, ["10.245.0.1"]),
        lb("c", "10.245.1.10"),
        lb("d", "192.0.2.1"),
        lb("e", "10.245.1.10"),
        lb("f"),
        lb("g", undefined, ["10.245.0.1"]), // a duplicate: b keeps it
      ].map(requestOf),
      { pool, range },
    );
    assert.deepEqual(Object.fromEntries(plans), {
      "ns/a": { ip: "10.245.0.2" },
      "ns/b": { ip: "10.245.0.1" },
      "ns/c": { ip: "10.245.1.10" },
      "ns/d": { problem: "spec.loadBalancerIP 192.0.2.1 is outside 10.245.0.0/16" },
      "ns/e": { problem: "spec.loadBalancerIP 10.245.1.10 is in use by ns/c" },
      "ns/f": { ip: "10.245.0.3" },
      "ns/g": { ip: "10.245.0.4" },
    });
  });

  test("a changed request moves the address; an exhausted pool is a problem", () => {
    const moved = planAddresses([requestOf(lb("a", "10.245.2.2", ["10.245.0.1"]))], { pool, range });
    assert.deepEqual(moved.get("ns/a"), { ip: "10.245.2.2" });
    const tiny = parseCidr("10.245.9.0/30"); // .1 and .2 usable
    const plans = planAddresses(
      ["a", "b", "c"].map((n) => requestOf(lb(n))),
      { pool: tiny, range },
    );
    assert.deepEqual(plans.get("ns/b"), { ip: "10.245.9.2" });
    assert.deepEqual(plans.get("ns/c"), { problem: "the pool 10.245.9.0/30 is exhausted" });
  });

  test("only LoadBalancer Services without a class or with ours", () => {
    const cls = "gatehouse.dev/minicluster";
    assert.ok(isOurs(lb("a"), cls));
    assert.ok(isOurs({ ...lb("a"), spec: { ...lb("a").spec, loadBalancerClass: cls } }, cls));
    assert.ok(!isOurs({ ...lb("a"), spec: { ...lb("a").spec, loadBalancerClass: "other.io/lb" } }, cls));
    assert.ok(!isOurs(service("c", "10.96.0.1"), cls));
  });
});

// --- the real thing, in network namespaces -------------------------------------------------------

const skip = process.getuid?.() !== 0 ? "needs root (network namespaces, nftables)" : false;

const NODE = "ghsvct-node";
const PODS = [
  { ns: "ghsvct-a", veth: "va", ip: "10.250.1.2", ready: true },
  { ns: "ghsvct-b", veth: "vb", ip: "10.250.1.3", ready: true },
  { ns: "ghsvct-c", veth: "vc", ip: "10.250.1.4", ready: false },
];
const NODE_IP = "10.250.0.1";
const CLUSTER_IP = "10.96.0.50";
const LB_IP = "10.245.0.7";
const TABLE = "gatehouse_mc_svctest";

async function probe(
  netns: string,
  host: string,
  port: number,
  count: number,
  proto: "tcp" | "udp",
): Promise<Record<string, number>> {
  const out = await run(
    "ip",
    ["netns", "exec", netns, process.execPath, ECHO, "probe", host, String(port), String(count), proto],
    {
      timeoutMs: 60_000,
    },
  );
  return JSON.parse(out) as Record<string, number>;
}

describe("service proxy in network namespaces", { skip }, () => {
  const servers: ChildProcess[] = [];
  let host: HostNetwork;

  const cleanup = async () => {
    for (const ns of [NODE, ...PODS.map((p) => p.ns)]) await ip("netns", "del", ns).catch(() => undefined);
  };

  before(async () => {
    await cleanup();
    await ip("netns", "add", NODE);
    await ip("-n", NODE, "link", "set", "lo", "up");
    await ip("-n", NODE, "link", "add", "br0", "type", "bridge");
    await ip("-n", NODE, "addr", "add", `${NODE_IP}/16`, "dev", "br0");
    await ip("-n", NODE, "link", "set", "br0", "up");
    for (const pod of PODS) {
      await ip("netns", "add", pod.ns);
      await ip("-n", NODE, "link", "add", pod.veth, "type", "veth", "peer", "name", "eth0", "netns", pod.ns);
      await ip("-n", NODE, "link", "set", pod.veth, "master", "br0", "up");
      // Hairpin, as the kubelet sets it (hairpin-veth): a pod reaching itself through its Service.
      await ip("-n", NODE, "link", "set", pod.veth, "type", "bridge_slave", "hairpin", "on");
      await ip("-n", pod.ns, "addr", "add", `${pod.ip}/16`, "dev", "eth0");
      await ip("-n", pod.ns, "link", "set", "eth0", "up");
      await ip("-n", pod.ns, "link", "set", "lo", "up");
      for (const cidr of ["10.96.0.0/16", "10.245.0.0/16"])
        await ip("-n", pod.ns, "route", "add", cidr, "via", NODE_IP, "dev", "eth0");
      const child = spawn(
        "ip",
        ["netns", "exec", pod.ns, process.execPath, ECHO, "serve", pod.ns.slice(-1), "8080"],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      servers.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout?.once("data", () => resolve());
        child.once("exit", (code) => reject(new Error(`echo in ${pod.ns} exited (${code ?? "signal"})`)));
      });
    }
    host = new HostNetwork({
      table: TABLE,
      bridge: "br0",
      nodeIP: NODE_IP,
      serviceCIDR: "10.96.0.0/16",
      netns: NODE,
    });
    await host.setup();
  });

  after(async () => {
    for (const child of servers) child.kill("SIGKILL");
    await host?.teardown().catch(() => undefined);
    await cleanup();
  });

  const rulesetOptions: RulesetOptions = {
    table: TABLE,
    bridge: "br0",
    nodeSubnet: "10.250.0.0/16",
    nodeIP: NODE_IP,
    masqueradeAll: false,
  };

  const apply = async (services: Service[], slices: EndpointSlice[]) => {
    const rules = servicePorts(services, slices, { loadBalancerRange: LB_RANGE });
    const lbIPs = services.flatMap((s) => (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? ""));
    await host.apply(renderRuleset(rules, rulesetOptions), lbIPs);
  };

  const echo = service("echo", CLUSTER_IP, { type: "LoadBalancer" }, [LB_IP]);
  const echoSlice = slice(
    "echo",
    PODS.map((p) => [p.ip, p.ready]),
  );

  test("ClusterIP and load-balancer IP, TCP and UDP, from the node and from pods: both ready endpoints, never the unready one", async () => {
    await apply([echo, service("empty", "10.96.0.51")], [echoSlice]);
    const cases: Array<[string, string, number, "tcp" | "udp"]> = [
      [NODE, CLUSTER_IP, 80, "tcp"],
      [NODE, CLUSTER_IP, 53, "udp"],
      [NODE, LB_IP, 80, "tcp"],
      [NODE, LB_IP, 53, "udp"],
      ["ghsvct-a", CLUSTER_IP, 80, "tcp"], // includes hairpin: a reaches itself
      ["ghsvct-a", CLUSTER_IP, 53, "udp"],
      ["ghsvct-c", LB_IP, 80, "tcp"],
    ];
    for (const [from, to, port, proto] of cases) {
      const counts = await probe(from, to, port, 30, proto);
      assert.deepEqual(
        Object.keys(counts).sort(),
        ["a", "b"],
        `${from} → ${to}:${port}/${proto}: ${JSON.stringify(counts)}`,
      );
    }
    // No ready endpoint: refused at once, not a timeout.
    assert.deepEqual(await probe("ghsvct-b", "10.96.0.51", 80, 2, "tcp"), { refused: 2 });
    assert.deepEqual(await probe(NODE, "10.96.0.51", 80, 2, "tcp"), { refused: 2 });
  });

  test("readiness changes and deletion are programmed; teardown leaves nothing", async () => {
    await apply(
      [echo],
      [
        slice(
          "echo",
          PODS.map((p) => [p.ip, p.ns === "ghsvct-c"]),
        ),
      ],
    );
    assert.deepEqual(await probe("ghsvct-a", CLUSTER_IP, 80, 10, "tcp"), { c: 10 });
    await apply([], []);
    assert.deepEqual(await probe(NODE, CLUSTER_IP, 80, 2, "tcp"), { error: 2 });
    assert.deepEqual(await probe("ghsvct-a", LB_IP, 80, 1, "tcp"), { error: 1 });
    const routes = await ip("-n", NODE, "route", "show", "proto", "211");
    assert.ok(!routes.includes(LB_IP), routes);
    await host.teardown();
    assert.equal(await tableExists(TABLE, NODE), false);
    assert.equal((await ip("-n", NODE, "route", "show", "proto", "211")).trim(), "");
  });
});
