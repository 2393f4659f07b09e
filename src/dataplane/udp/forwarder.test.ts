// The forwarder on real loopback sockets (node:dgram), with UDP echo backends. The clock is injected
// for idle expiry; the random source for deterministic choices where a test needs them.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { after, test } from "node:test";
import type { IR, IRBackend, IRWeightedBackend } from "../../ir/types.ts";
import { createMetrics, type Metrics } from "../../observability/metrics.ts";
import { UdpForwarder, type UdpForwarderOptions } from "./forwarder.ts";
import { udpMetrics } from "./metrics.ts";
import { nodeUdpSockets } from "./sockets.ts";
import { startUdpEcho, udpClient, type UdpClient, type UdpEcho } from "./testing.ts";

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function echo(name: string, address = "127.0.0.1"): Promise<UdpEcho> {
  const e = await startUdpEcho(name, address);
  cleanups.push(() => e.close());
  return e;
}

async function client(address: string, port: number): Promise<UdpClient> {
  const c = await udpClient(address, port);
  cleanups.push(() => c.close());
  return c;
}

function backendOf(e: UdpEcho, ...more: UdpEcho[]): IRBackend {
  return {
    id: `service/test/${e.name}/${e.port}`,
    source: { kind: "Service", namespace: "test", name: e.name },
    port: e.port,
    protocol: "udp",
    endpoints: [e, ...more].map((x) => ({ address: x.address, port: x.port })),
  };
}

interface ListenerSpec {
  name: string;
  port: number;
  address?: string;
  /** Weighted backends of the effective route; absent: no route attached. */
  backends?: Array<{ backend?: IRBackend; weight: number }>;
}

function irOf(listeners: ListenerSpec[]): IR {
  const backends = new Map<string, IRBackend>();
  return {
    gateways: listeners.map((l) => ({
      id: `test/gw-${l.name}`,
      namespace: "test",
      name: `gw-${l.name}`,
      gatewayClassName: "gatehouse",
      addresses: [l.address ?? "127.0.0.1"],
      listeners: [
        {
          id: `test/gw-${l.name}/${l.name}`,
          name: l.name,
          port: l.port,
          protocol: "UDP",
          udpRoutes:
            l.backends === undefined
              ? []
              : [
                  {
                    route: { kind: "UDPRoute", namespace: "test", name: `route-${l.name}` },
                    backends: l.backends.map((b): IRWeightedBackend => {
                      if (b.backend === undefined) return { weight: b.weight, filters: [], invalid: true };
                      backends.set(b.backend.id, b.backend);
                      return { backend: b.backend.id, weight: b.weight, filters: [] };
                    }),
                  },
                ],
        },
      ],
    })),
    backends: [...backends.values()],
  };
}

function forwarder(options: Partial<UdpForwarderOptions> = {}): { fw: UdpForwarder; metrics: Metrics } {
  const metrics = createMetrics({ defaultMetrics: false });
  const fw = new UdpForwarder({ sockets: nodeUdpSockets, metrics: udpMetrics(metrics), ...options });
  cleanups.push(() => fw.close());
  return { fw, metrics };
}

async function value(
  metric: { get(): Promise<{ values: Array<{ labels: object; value: number }> }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  const v = values.find((x) =>
    Object.entries(labels).every(([k, want]) => (x.labels as Record<string, unknown>)[k] === want),
  );
  return v?.value ?? 0;
}

/** A free UDP port on `address` a moment ago. */
async function freeUdpPort(address = "127.0.0.1"): Promise<number> {
  const s = createSocket(address.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((r) => s.bind(0, address, r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test("forwards each client's datagrams and returns the replies to that client", async () => {
  const a = await echo("a");
  const port = await freeUdpPort();
  const { fw, metrics } = forwarder();
  const result = await fw.apply(
    irOf([{ name: "dns", port, backends: [{ backend: backendOf(a), weight: 1 }] }]),
  );
  assert.deepEqual(result.failures, []);
  assert.equal(result.changed, true);
  const c1 = await client("127.0.0.1", port);
  const c2 = await client("127.0.0.1", port);
  const [r1, r2] = await Promise.all([c1.ask("one"), c2.ask("two")]);
  assert.equal(r1?.payload, "one");
  assert.equal(r2?.payload, "two");
  // One upstream socket per client.
  assert.notEqual(r1?.fromPort, r2?.fromPort);
  assert.equal((await c1.ask("again"))?.fromPort, r1?.fromPort);
  assert.equal(fw.flowCount, 2);
  assert.equal(await value(metrics.udpDatagrams, { direction: "to_backend" }), 3);
  assert.equal(await value(metrics.udpDatagrams, { direction: "to_client" }), 3);
  assert.equal(
    await value(metrics.udpBytes, { direction: "to_backend" }),
    "one".length + "two".length + "again".length,
  );
  assert.equal(await value(metrics.udpFlowsActive), 2);
  assert.equal(await value(metrics.udpListeners), 1);
});

test("a flow sticks to its endpoint; new flows follow the weights; weight 0 gets nothing", async () => {
  const v1 = await echo("v1");
  const v2 = await echo("v2");
  const v3 = await echo("v3");
  const port = await freeUdpPort();
  const { fw } = forwarder();
  await fw.apply(
    irOf([
      {
        name: "w",
        port,
        backends: [
          { backend: backendOf(v1), weight: 70 },
          { backend: backendOf(v2), weight: 30 },
          { backend: backendOf(v3), weight: 0 },
        ],
      },
    ]),
  );
  const sticky = await client("127.0.0.1", port);
  const first = await sticky.ask("x");
  for (let i = 0; i < 10; i++) assert.equal((await sticky.ask(`x${i}`))?.backend, first?.backend);

  const counts: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    const c = await udpClient("127.0.0.1", port);
    const r = await c.ask("hello");
    await c.close();
    assert.ok(r !== undefined, "every flow gets an answer");
    counts[r.backend] = (counts[r.backend] ?? 0) + 1;
  }
  assert.equal(counts["v3"], undefined);
  // 100 draws at p = 0.7: outside [50, 90] has probability below 1e-6.
  assert.ok((counts["v1"] ?? 0) >= 50 && (counts["v1"] ?? 0) <= 90, JSON.stringify(counts));
  assert.equal(v3.received.length, 0);
});

test("no route, an invalid backendRef and a backend without endpoints drop the datagrams", async () => {
  const [p1, p2, p3] = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
  const empty: IRBackend = { ...backendOf(await echo("unused")), endpoints: [] };
  const { fw, metrics } = forwarder();
  const result = await fw.apply(
    irOf([
      { name: "noroute", port: p1 },
      { name: "invalid", port: p2, backends: [{ weight: 1 }] },
      { name: "empty", port: p3, backends: [{ backend: empty, weight: 1 }] },
    ]),
  );
  assert.deepEqual(result.failures, []);
  for (const port of [p1, p2, p3]) {
    const c = await client("127.0.0.1", port);
    assert.equal(await c.ask("lost", 200), undefined);
  }
  assert.equal(await value(metrics.udpDrops, { reason: "no_route" }), 1);
  assert.equal(await value(metrics.udpDrops, { reason: "invalid_backend" }), 1);
  assert.equal(await value(metrics.udpDrops, { reason: "no_endpoint" }), 1);
  assert.equal(fw.flowCount, 0);
});

test("reconfiguring keeps flows whose endpoint stays, moves the others, binds and closes listeners", async () => {
  const a = await echo("a");
  const b = await echo("b");
  const [port, port2] = [await freeUdpPort(), await freeUdpPort()];
  const { fw, metrics } = forwarder();
  await fw.apply(irOf([{ name: "l", port, backends: [{ backend: backendOf(a), weight: 1 }] }]));
  const c = await client("127.0.0.1", port);
  const before = await c.ask("1");
  assert.equal(before?.backend, "a");

  // Same listener, b added with a large weight: the existing flow stays on a; new flows go to b.
  const both = irOf([
    {
      name: "l",
      port,
      backends: [
        { backend: backendOf(a), weight: 1 },
        { backend: backendOf(b), weight: 1000 },
      ],
    },
  ]);
  assert.equal((await fw.apply(both)).changed, true);
  assert.deepEqual(await c.ask("2"), { backend: "a", payload: "2", fromPort: before?.fromPort });
  const fresh = await client("127.0.0.1", port);
  assert.equal((await fresh.ask("3"))?.backend, "b");

  // The same IR again: nothing changes.
  const same = await fw.apply(both);
  assert.equal(same.changed, false);

  // a leaves the route: its flow is closed and the client's next datagram opens a flow to b.
  await fw.apply(irOf([{ name: "l", port, backends: [{ backend: backendOf(b), weight: 1 }] }]));
  assert.equal((await c.ask("4"))?.backend, "b");
  assert.equal(await value(metrics.udpFlowsClosed, { reason: "reconfigured" }), 1);

  // Another listener added, the first removed: its port is released.
  const moved = await fw.apply(
    irOf([{ name: "m", port: port2, backends: [{ backend: backendOf(b), weight: 1 }] }]),
  );
  assert.deepEqual(moved.failures, []);
  assert.equal(await c.ask("5", 200), undefined);
  assert.deepEqual(
    fw.listeners().map((l) => [l.listenerId, l.port]),
    [["test/gw-m/m", port2]],
  );
  const reuse = createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    reuse.once("error", reject);
    reuse.bind(port, "127.0.0.1", resolve);
  });
  reuse.close();
  assert.equal((await (await client("127.0.0.1", port2)).ask("6"))?.backend, "b");
});

test("a port in use is reported (Pending) without affecting the other listeners, and bound once free", async () => {
  const a = await echo("a");
  const [busy, fine] = [await freeUdpPort(), await freeUdpPort()];
  const holder = createSocket("udp4");
  await new Promise<void>((r) => holder.bind(busy, "127.0.0.1", r));
  const { fw } = forwarder();
  const ir = irOf([
    { name: "busy", port: busy, backends: [{ backend: backendOf(a), weight: 1 }] },
    { name: "fine", port: fine, backends: [{ backend: backendOf(a), weight: 1 }] },
  ]);
  const result = await fw.apply(ir);
  assert.deepEqual(
    result.failures.map((f) => [f.listenerId, f.reason, f.message]),
    [
      [
        "test/gw-busy/busy",
        "Pending",
        `cannot listen on UDP 127.0.0.1:${busy}: the address is in use by another process`,
      ],
    ],
  );
  assert.equal((await (await client("127.0.0.1", fine)).ask("ok"))?.backend, "a");

  await new Promise<void>((r) => holder.close(() => r()));
  const retried = await fw.apply(ir);
  assert.deepEqual(retried.failures, []);
  assert.equal(retried.changed, true);
  assert.equal((await (await client("127.0.0.1", busy)).ask("now"))?.backend, "a");
});

test("idle flows expire; the next datagram opens a new flow", async () => {
  const a = await echo("a");
  const port = await freeUdpPort();
  let now = 0;
  const { fw, metrics } = forwarder({ idleTimeoutMs: 1000, now: () => now, sweepIntervalMs: 0 });
  await fw.apply(irOf([{ name: "l", port, backends: [{ backend: backendOf(a), weight: 1 }] }]));
  const c = await client("127.0.0.1", port);
  const first = await c.ask("1");
  now = 900;
  assert.equal((await c.ask("2"))?.fromPort, first?.fromPort); // activity at 900
  now = 1800;
  fw.sweep();
  assert.equal(fw.flowCount, 1);
  now = 1900;
  fw.sweep();
  assert.equal(fw.flowCount, 0);
  assert.equal(await value(metrics.udpFlowsClosed, { reason: "idle" }), 1);
  const again = await c.ask("3");
  assert.equal(again?.backend, "a");
  assert.notEqual(again?.fromPort, first?.fromPort);
});

test("beyond maxFlows the least recently active flow is evicted", async () => {
  const a = await echo("a");
  const port = await freeUdpPort();
  const { fw, metrics } = forwarder({ maxFlows: 2 });
  await fw.apply(irOf([{ name: "l", port, backends: [{ backend: backendOf(a), weight: 1 }] }]));
  const [c1, c2, c3] = [
    await client("127.0.0.1", port),
    await client("127.0.0.1", port),
    await client("127.0.0.1", port),
  ];
  const r1 = await c1.ask("1");
  await c2.ask("2");
  await c3.ask("3");
  assert.equal(fw.flowCount, 2);
  assert.equal(await value(metrics.udpFlowsClosed, { reason: "evicted" }), 1);
  const r1again = await c1.ask("1 again");
  assert.notEqual(r1again?.fromPort, r1?.fromPort, "c1's flow was evicted: a new one");
});

test("datagrams reaching a flow's upstream socket from elsewhere are dropped", async () => {
  const a = await echo("a");
  const port = await freeUdpPort();
  const { fw, metrics } = forwarder();
  await fw.apply(irOf([{ name: "l", port, backends: [{ backend: backendOf(a), weight: 1 }] }]));
  const c = await client("127.0.0.1", port);
  const r = await c.ask("hi");
  assert.ok(r !== undefined);
  const intruder = createSocket("udp4");
  cleanups.push(() => new Promise((resolve) => intruder.close(() => resolve())));
  intruder.send("spoofed", r.fromPort, "127.0.0.1");
  const deadline = Date.now() + 2000;
  while ((await value(metrics.udpDrops, { reason: "unexpected_source" })) === 0 && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(await value(metrics.udpDrops, { reason: "unexpected_source" }), 1);
  assert.deepEqual(c.replies.length, 1);
});

test("IPv6: listener and backend on ::1", async () => {
  const a = await echo("v6", "::1");
  const port = await freeUdpPort("::1");
  const { fw } = forwarder();
  const result = await fw.apply(
    irOf([{ name: "v6", port, address: "::1", backends: [{ backend: backendOf(a), weight: 1 }] }]),
  );
  assert.deepEqual(result.failures, []);
  const c = await client("::1", port);
  assert.equal((await c.ask("six"))?.backend, "v6");
});

test("a listener on every interface answers on IPv4 and IPv6 loopback", async () => {
  const a = await echo("any");
  const port = await freeUdpPort();
  const { fw } = forwarder();
  const ir = irOf([{ name: "any", port, backends: [{ backend: backendOf(a), weight: 1 }] }]);
  const gateway = ir.gateways[0];
  assert.ok(gateway !== undefined);
  gateway.addresses = [];
  assert.deepEqual((await fw.apply(ir)).failures, []);
  assert.equal((await (await client("127.0.0.1", port)).ask("v4"))?.backend, "any");
  assert.equal((await (await client("::1", port)).ask("v6"))?.backend, "any");
});

test("after close() every socket is released and apply() does nothing", async () => {
  const port = await freeUdpPort();
  const { fw } = forwarder();
  await fw.apply(irOf([{ name: "l", port }]));
  await fw.close();
  const s = createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.bind(port, "127.0.0.1", resolve);
  });
  s.close();
  assert.deepEqual(await fw.apply(irOf([{ name: "l", port }])), {
    changed: false,
    detail: "closed",
    failures: [],
  });
});
