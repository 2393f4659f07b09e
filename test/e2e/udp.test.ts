// UDPRoute end to end: YAML files → translate → the UDP forwarder (and HAProxy for the HTTP
// listener next to it) → UDP echo backends on loopback. Weighted shares, sticky flows across route
// changes, a port held by another process reported in the listener's status and bound once free,
// removed listeners closed, UDP changes taken without reloading HAProxy, metrics.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { after, before, test } from "node:test";
import type { Condition, StatusEntry } from "../../src/status/types.ts";
import {
  startUdpEcho,
  udpClient,
  type EchoReply,
  type UdpClient,
  type UdpEcho,
} from "../../src/dataplane/udp/testing.ts";
import { useHarness, type Harness } from "./harness.ts";
import { docs, gatewayClass, httpRoute, NS, ref, service, type Obj } from "./resources.ts";

const echoes: Record<string, UdpEcho> = {};
before(async () => {
  for (const name of ["u1", "u2", "u3"]) echoes[name] = await startUdpEcho(name);
});
after(async () => {
  for (const e of Object.values(echoes)) await e.close();
});

function echo(name: string): UdpEcho {
  const e = echoes[name];
  if (e === undefined) throw new Error(`no UDP echo ${name}`);
  return e;
}

/** UDP ports on the harness address (the harness reserves them as TCP ports; UDP is free too). */
const udpPort = (h: Harness, i: number): number => h.ports[i] ?? 0;

function udpGateway(h: Harness, listeners: Array<{ name: string; port: number }>): Obj {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: "gw", namespace: NS },
    spec: {
      gatewayClassName: "gatehouse",
      addresses: [{ type: "IPAddress", value: h.ip }],
      listeners: [
        { name: "http", port: h.port, protocol: "HTTP" },
        ...listeners.map((l) => ({ name: l.name, port: l.port, protocol: "UDP" })),
      ],
    },
  };
}

function udpService(name: string): Obj {
  const e = echo(name);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: NS, annotations: { "gatehouse.dev/endpoints": `127.0.0.1:${e.port}` } },
    spec: { ports: [{ port: 53, protocol: "UDP" }] },
  };
}

function udpRoute(name: string, sectionName: string, backends: Array<[string, number]>): Obj {
  return {
    apiVersion: "gateway.networking.k8s.io/v1alpha2",
    kind: "UDPRoute",
    metadata: { name, namespace: NS },
    spec: {
      parentRefs: [{ name: "gw", sectionName }],
      rules: [{ backendRefs: backends.map(([backend, weight]) => ({ name: backend, port: 53, weight })) }],
    },
  };
}

const harness = useHarness({
  backends: { web: "http" },
  ports: 4,
  files: (h) => ({
    "base.yaml": docs(
      gatewayClass(),
      service("web", { endpoints: [h.backend("web").endpoint] }),
      httpRoute("web", {
        parentRefs: [{ name: "gw", sectionName: "http" }],
        rules: [{ backendRefs: [ref("web")] }],
      }),
      udpService("u1"),
      udpService("u2"),
      udpService("u3"),
    ),
    "gateway.yaml": docs(udpGateway(h, [{ name: "dns", port: udpPort(h, 1) }])),
    "route.yaml": docs(
      udpRoute("dns", "dns", [
        ["u1", 70],
        ["u2", 30],
        ["u3", 0],
      ]),
    ),
  }),
});

function listenerConditions(status: { objects: StatusEntry[] }, listener: string): Condition[] {
  const gw = status.objects.find((o) => o.kind === "Gateway" && o.metadata.name === "gw");
  const listeners =
    (gw?.status["listeners"] as Array<{ name: string; conditions: Condition[] }> | undefined) ?? [];
  return listeners.find((l) => l.name === listener)?.conditions ?? [];
}

async function ask(h: Harness, port: number, payload: string, timeoutMs = 1000) {
  const c = await udpClient(h.ip, port);
  try {
    return await c.ask(payload, timeoutMs);
  } finally {
    await c.close();
  }
}

test("datagrams reach the UDPRoute's backends by weight; weight 0 gets none; status says Programmed", async () => {
  const h = harness();
  const status = await h.status();
  const route = status.objects.find((o) => o.kind === "UDPRoute");
  const parents = (route?.status["parents"] as Array<{ conditions: Condition[] }> | undefined) ?? [];
  assert.equal(parents[0]?.conditions.find((c) => c.type === "Accepted")?.status, "True");
  assert.equal(listenerConditions(status, "dns").find((c) => c.type === "Programmed")?.status, "True");

  const counts: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    const reply = await ask(h, udpPort(h, 1), `q${i}`);
    assert.ok(reply !== undefined, `datagram ${i} answered`);
    assert.equal(reply.payload, `q${i}`);
    counts[reply.backend] = (counts[reply.backend] ?? 0) + 1;
  }
  assert.equal(counts["u3"], undefined);
  assert.ok((counts["u1"] ?? 0) >= 50 && (counts["u1"] ?? 0) <= 90, JSON.stringify(counts));
  assert.ok((await h.metric('gatehouse_udp_datagrams_total{direction="to_backend"}')) >= 100);
  assert.ok((await h.metric('gatehouse_udp_datagrams_total{direction="to_client"}')) >= 100);
  // HTTP on the same Gateway is served by HAProxy as usual.
  assert.equal((await h.get("/")).status, 200);
});

test("a route change applies to new flows without reloading HAProxy; a flow whose endpoint stays keeps it", async (t) => {
  const h = harness();
  const reloads = await h.masterReloads();
  // A flow on u1 (70 % of new flows): each new client port is a new flow.
  let found: { c: UdpClient; first: EchoReply } | undefined;
  for (let i = 0; found === undefined && i < 50; i++) {
    const c = await udpClient(h.ip, udpPort(h, 1));
    t.after(() => c.close());
    const reply = await c.ask("start");
    if (reply?.backend === "u1") found = { c, first: reply };
  }
  assert.ok(found !== undefined);
  const { c, first } = found;

  // u1 stays in the route (weight 1), u2 gets nearly everything: the open flow stays on u1.
  const applied = await h.write({
    "route.yaml": docs(
      udpRoute("dns", "dns", [
        ["u1", 1],
        ["u2", 1000],
      ]),
    ),
  });
  assert.equal(applied.method, "runtime");
  assert.equal(await h.masterReloads(), reloads);
  const same = await c.ask("after");
  assert.equal(same?.backend, "u1");
  assert.equal(same?.fromPort, first.fromPort);
  assert.equal((await ask(h, udpPort(h, 1), "new flow"))?.backend, "u2");

  // u1 leaves the route: its flow is closed, the same client now reaches u2.
  await h.write({ "route.yaml": docs(udpRoute("dns", "dns", [["u2", 1]])) });
  assert.equal((await c.ask("moved"))?.backend, "u2");
});

test("a UDP port held by another process: the listener is not Programmed, then served once free", async () => {
  const h = harness();
  const port = udpPort(h, 2);
  const holder: Socket = createSocket("udp4");
  await new Promise<void>((resolve) => holder.bind(port, h.ip, resolve));
  let released = false;
  const release = (): Promise<void> =>
    released
      ? Promise.resolve()
      : new Promise((resolve) => ((released = true), holder.close(() => resolve())));
  try {
    await h.write({
      "gateway.yaml": docs(
        udpGateway(h, [
          { name: "dns", port: udpPort(h, 1) },
          { name: "busy", port },
        ]),
      ),
      "busy.yaml": docs(udpRoute("busy", "busy", [["u3", 1]])),
    });
    const programmed = listenerConditions(await h.status(), "busy").find((c) => c.type === "Programmed");
    assert.equal(programmed?.status, "False");
    assert.equal(programmed?.reason, "Pending");
    assert.match(
      programmed?.message ?? "",
      new RegExp(`UDP ${h.ip.replace(/\./g, "\\.")}:${port}: the address is in use`),
    );
    // The other listeners are unaffected.
    assert.equal(
      listenerConditions(await h.status(), "dns").find((c) => c.type === "Programmed")?.status,
      "True",
    );
    assert.ok((await ask(h, udpPort(h, 1), "still"))?.backend !== undefined);

    await release();
    // The serve loop retries (1 s, then doubling): the listener comes up without a new input.
    await h.waitFor(
      "the busy listener to be Programmed",
      async () =>
        listenerConditions(await h.status(), "busy").find((c) => c.type === "Programmed")?.status === "True",
      10_000,
      100,
    );
    assert.equal((await ask(h, port, "free"))?.backend, "u3");
  } finally {
    await release();
  }
});

test("a removed UDP listener stops answering and releases its port", async () => {
  const h = harness();
  const port = udpPort(h, 3);
  await h.write({
    "gateway.yaml": docs(
      udpGateway(h, [
        { name: "dns", port: udpPort(h, 1) },
        { name: "extra", port },
      ]),
    ),
    "busy.yaml": docs(udpRoute("extra", "extra", [["u3", 1]])),
  });
  assert.equal((await ask(h, port, "here"))?.backend, "u3");
  await h.write({ "gateway.yaml": docs(udpGateway(h, [{ name: "dns", port: udpPort(h, 1) }])) });
  assert.equal(await ask(h, port, "gone", 300), undefined);
  const s = createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.bind(port, h.ip, resolve);
  });
  await new Promise<void>((resolve) => s.close(() => resolve()));
  assert.equal(await h.metric("gatehouse_udp_listeners"), 1);
});
