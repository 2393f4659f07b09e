// InferencePools (Gateway API Inference Extension v1.6.0) through a real HAProxy in `serve` mode:
// pools whose endpoints are static Pods (status.podIP) of the YAML, every target port an endpoint;
// h2c pools; a picker without endpoints is unavailable (FailOpen balances, FailClose answers 503; the
// picker itself: epp.test.ts); a Pod
// turning unready leaves the pool; the pool's status says how it is routed.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { keepAliveAgent } from "./client.ts";
import { many, useHarness, type Harness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, NS, service, type Obj } from "./resources.ts";

const poolRef = (name: string): Obj => ({
  group: "inference.networking.k8s.io",
  kind: "InferencePool",
  name,
});

function pool(name: string, app: string, ports: number[], extra: Obj = {}): Obj {
  return {
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name, namespace: NS },
    spec: { selector: { matchLabels: { app } }, targetPorts: ports.map((number) => ({ number })), ...extra },
  };
}

function pod(name: string, app: string, ip: string, ready = true): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, labels: { app } },
    status: {
      phase: "Running",
      podIP: ip,
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
    },
  };
}

const route = (name: string, host: string, backend: Obj): Obj =>
  httpRoute(name, { hostnames: [host], rules: [{ backendRefs: [backend] }] });

/**
 * Model servers as Pods would have them: one port number, each Pod at its own address (random
 * 127/8 addresses, so parallel test files do not collide). Each answers with its Pod's name.
 */
const MODEL_PODS = ["model-0", "model-1", "model-2"] as const;
const modelServers: { port: number; ips: string[]; servers: Server[] } = { port: 0, ips: [], servers: [] };

async function listen(server: Server, port: number, ip: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, ip, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

before(async () => {
  for (let attempt = 0; attempt < 20 && modelServers.servers.length < MODEL_PODS.length; attempt++) {
    for (const s of modelServers.servers.splice(0)) s.close();
    modelServers.ips = [];
    const base = `127.${10 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}`;
    try {
      for (const [i, name] of MODEL_PODS.entries()) {
        const ip = `${base}.${i + 1}`;
        const server = createServer((_req, res) => res.writeHead(200, { "x-backend": name }).end(name));
        modelServers.servers.push(server);
        modelServers.port = await listen(server, i === 0 ? 0 : modelServers.port, ip);
        modelServers.ips.push(ip);
      }
    } catch {
      // That port is taken on one of the addresses: try other addresses.
    }
  }
  assert.equal(modelServers.servers.length, MODEL_PODS.length, "model servers could not bind");
});

after(() => {
  for (const s of modelServers.servers) s.close();
});

/** The pools file: which of the model Pods are ready. */
function poolFiles(h: Harness, ready: readonly boolean[]): string {
  const port = (name: string): number => h.backend(name).port;
  return docs(
    // Two model servers on one Pod, one per target port.
    pool("multi", "multi", [port("m1"), port("m2")]),
    pod("multi-0", "multi", "127.0.0.1"),
    // Three model server Pods on one port.
    pool("models", "model", [modelServers.port]),
    ...MODEL_PODS.map((name, i) => pod(name, "model", modelServers.ips[i] ?? "", ready[i] ?? false)),
    pool("h2c", "grpc", [port("h2")], { appProtocol: "kubernetes.io/h2c" }),
    pod("grpc-0", "grpc", "127.0.0.1"),
    service("epp", { port: 9002 }),
    pool("open", "multi", [port("m1")], {
      endpointPickerRef: { name: "epp", port: { number: 9002 }, failureMode: "FailOpen" },
    }),
    pool("close", "multi", [port("m1")], {
      endpointPickerRef: { name: "epp", port: { number: 9002 }, failureMode: "FailClose" },
    }),
    pool("lost-picker", "multi", [port("m1")], {
      endpointPickerRef: { name: "no-such-epp", port: { number: 9002 }, failureMode: "FailOpen" },
    }),
  );
}

const harness = useHarness({
  backends: { m1: "http", m2: "http", h2: "h2c" },
  files: (h) => ({
    "gateway.yaml": docs(gatewayClass(), gateway("gw", h.ip, [{ name: "http", port: h.port }])),
    "pools.yaml": poolFiles(h, [true, true, false]),
    "routes.yaml": docs(
      route("multi", "multi.test", poolRef("multi")),
      route("models", "models.test", poolRef("models")),
      route("h2c", "h2c.test", poolRef("h2c")),
      route("open", "open.test", poolRef("open")),
      route("close", "close.test", poolRef("close")),
      route("lost-picker", "lost.test", poolRef("lost-picker")),
      route("missing", "missing.test", poolRef("no-such-pool")),
    ),
  }),
});

/** Answering backend (x-backend, or the status) → count over `n` requests. */
async function distribution(host: string, n: number): Promise<Map<string, number>> {
  const agents = Array.from({ length: 4 }, () => keepAliveAgent());
  try {
    const results = await many(n, 4, (i) =>
      harness().get("/v1/completions", { host, agent: agents[i % 4] ?? false }),
    );
    const counts = new Map<string, number>();
    for (const r of results) {
      const backend = r.headers["x-backend"];
      const key = r.status === 200 && typeof backend === "string" ? backend : String(r.status);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  } finally {
    for (const a of agents) a.destroy();
  }
}

describe("InferencePool backends (serve mode, static Pods)", () => {
  test("every target port of a Pod is an endpoint: both model servers share the requests", async () => {
    const counts = await distribution("multi.test", 100);
    assert.deepEqual([...counts.keys()].sort(), ["m1", "m2"], JSON.stringify([...counts]));
    for (const n of counts.values()) assert.ok(n >= 20, JSON.stringify([...counts]));
  });

  test("ready Pods share the requests; an unready Pod gets none", async () => {
    const counts = await distribution("models.test", 100);
    assert.deepEqual([...counts.keys()].sort(), ["model-0", "model-1"], JSON.stringify([...counts]));
  });

  test("appProtocol kubernetes.io/h2c: the pool is reached over HTTP/2 cleartext", async () => {
    const res = await harness().get("/", { host: "h2c.test" });
    assert.equal(res.status, 200);
    assert.equal(res.echo?.backend, "h2");
  });

  test("endpoint picker unavailable: FailOpen balances, FailClose and an unresolved picker answer 503", async () => {
    const open = await harness().get("/", { host: "open.test" });
    assert.equal(open.status, 200);
    assert.equal(open.echo?.backend, "m1");
    assert.equal((await harness().get("/", { host: "close.test" })).status, 503);
    assert.equal((await harness().get("/", { host: "lost.test" })).status, 503);
  });

  test("a backendRef to a pool that does not exist answers 500", async () => {
    assert.equal((await harness().get("/", { host: "missing.test" })).status, 500);
  });

  test("the pools' status says how requests are routed", async () => {
    const text = JSON.stringify(await harness().status());
    assert.match(text, /requests are load-balanced over the pool's 2 ready endpoints/);
    assert.match(
      text,
      /Requests are routed by the endpoint picker \(Service default\/epp port 9002, 0 ready endpoints\)[^"]*failureMode FailClose: when the picker is unavailable, requests are answered 503/,
    );
    assert.match(text, /InvalidExtensionRef/);
    assert.match(text, /endpointPickerRef: Service default\/no-such-epp not found/);
  });

  test("Pods changing readiness change the pool's endpoints without a reload", async () => {
    const h = harness();
    const reloads = await h.metric('gatehouse_reloads_total{result="success"}');
    const applied = await h.write({ "pools.yaml": poolFiles(h, [false, true, true]) });
    assert.equal(applied.result, "success");
    assert.equal(applied.method, "runtime");
    assert.equal(await h.metric('gatehouse_reloads_total{result="success"}'), reloads);
    const counts = await distribution("models.test", 100);
    assert.deepEqual([...counts.keys()].sort(), ["model-1", "model-2"], JSON.stringify([...counts]));
  });
});
