import assert from "node:assert/strict";
import { test } from "node:test";
import type { IR, IRBackend, IRGateway, IRListener } from "../../ir/types.ts";
import { formatHostPort, normalizeAddress, planUdp } from "./plan.ts";

const backend = (
  name: string,
  endpoints: Array<[string, number]>,
  protocol: "udp" | "tcp" = "udp",
): IRBackend => ({
  id: `service/ns/${name}/53`,
  source: { kind: "Service", namespace: "ns", name },
  port: 53,
  protocol,
  endpoints: endpoints.map(([address, port]) => ({ address, port })),
});

const udpListener = (name: string, port: number, routes: string[][] = []): IRListener => ({
  id: `ns/gw/${name}`,
  name,
  port,
  protocol: "UDP",
  udpRoutes: routes.map((backends, i) => ({
    route: { kind: "UDPRoute", namespace: "ns", name: `r${i}` },
    backends: backends.map((b) =>
      b === "!" ? { weight: 1, filters: [], invalid: true } : { backend: b, weight: 1, filters: [] },
    ),
  })),
});

const gateway = (name: string, addresses: string[], listeners: IRListener[]): IRGateway => ({
  id: `ns/${name}`,
  namespace: "ns",
  name,
  gatewayClassName: "gatehouse",
  addresses,
  listeners: listeners.map((l) => ({ ...l, id: `ns/${name}/${l.name}` })),
});

test("one socket per address and port; the first (oldest) route is the effective one", () => {
  const dns = backend("dns", [["10.0.0.1", 5353]]);
  const other = backend("other", [["10.0.0.2", 5353]]);
  const ir: IR = {
    gateways: [
      gateway("gw", ["192.0.2.1", "2001:DB8::1"], [udpListener("dns", 53, [[dns.id], [other.id]])]),
      gateway("any", [], [udpListener("x", 5000)]),
    ],
    backends: [dns, other],
  };
  const plan = planUdp(ir);
  assert.deepEqual(plan.problems, []);
  assert.deepEqual(
    plan.listeners.map((l) => [l.key, l.listenerId, l.route?.route.name]),
    [
      ["192.0.2.1|53", "ns/gw/dns", "r0"],
      ["2001:db8::1|53", "ns/gw/dns", "r0"],
      ["|5000", "ns/any/x", undefined],
    ],
  );
  assert.deepEqual(plan.listeners[0]?.route?.shares, [
    { weight: 1, backend: { id: dns.id, endpoints: [{ address: "10.0.0.1", port: 5353 }] } },
  ]);
});

test("non-UDP listeners are left to HAProxy", () => {
  const ir: IR = {
    gateways: [gateway("gw", [], [{ id: "x", name: "web", port: 80, protocol: "HTTP", virtualHosts: [] }])],
    backends: [],
  };
  assert.deepEqual(planUdp(ir), { listeners: [], problems: [] });
});

test("invalid backendRefs, unknown and non-UDP backends become shares without a backend (dropped)", () => {
  const tcp = backend("tcp", [["10.0.0.3", 53]], "tcp");
  const ir: IR = {
    gateways: [
      gateway("gw", ["192.0.2.1"], [udpListener("dns", 53, [["!", "service/ns/missing/53", tcp.id]])]),
    ],
    backends: [tcp],
  };
  assert.deepEqual(planUdp(ir).listeners[0]?.route?.shares, [{ weight: 1 }, { weight: 1 }, { weight: 1 }]);
});

test("endpoint addresses are normalised so replies can be matched to them", () => {
  const v6 = backend("v6", [["2001:DB8:0:0::5", 53]]);
  const ir: IR = { gateways: [gateway("gw", ["::1"], [udpListener("dns", 53, [[v6.id]])])], backends: [v6] };
  assert.deepEqual(planUdp(ir).listeners[0]?.route?.shares[0]?.backend?.endpoints, [
    { address: "2001:db8::5", port: 53 },
  ]);
});

test("listeners of two Gateways on one address and port clash; neither is served", () => {
  const ir: IR = {
    gateways: [
      gateway("a", ["192.0.2.1"], [udpListener("dns", 53)]),
      gateway("b", ["192.0.2.1"], [udpListener("dns", 53)]),
      gateway("c", ["192.0.2.2"], [udpListener("dns", 53)]),
    ],
    backends: [],
  };
  const plan = planUdp(ir);
  assert.deepEqual(
    plan.listeners.map((l) => l.listenerId),
    ["ns/c/dns"],
  );
  assert.deepEqual(
    plan.problems.map((p) => p.listenerId),
    ["ns/a/dns", "ns/b/dns"],
  );
  assert.match(
    plan.problems[0]?.message ?? "",
    /UDP port 53 on 192\.0\.2\.1 is also used by listener ns\/b\/dns/,
  );
});

test("a listener on every interface clashes with one on a single address and the same port", () => {
  const ir: IR = {
    gateways: [
      gateway("any", [], [udpListener("dns", 53)]),
      gateway("one", ["192.0.2.1"], [udpListener("dns", 53), udpListener("other", 54)]),
    ],
    backends: [],
  };
  const plan = planUdp(ir);
  assert.deepEqual(
    plan.listeners.map((l) => l.key),
    ["192.0.2.1|54"],
  );
  assert.match(plan.problems[0]?.message ?? "", /on every interface is also used by listener ns\/one\/dns/);
});

test("address helpers", () => {
  assert.equal(normalizeAddress("2001:DB8:0::1"), "2001:db8::1");
  assert.equal(normalizeAddress("10.0.0.1"), "10.0.0.1");
  assert.equal(formatHostPort("", 53), "*:53");
  assert.equal(formatHostPort("::1", 53), "[::1]:53");
  assert.equal(formatHostPort("10.0.0.1", 53), "10.0.0.1:53");
});
