import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../clock.ts";
import { providerContract } from "../contract.ts";
import type { ProviderUpdate } from "../types.ts";
import { KubernetesProvider, type ProviderLog } from "./provider.ts";
import { FakeCluster } from "./testing/cluster.ts";
import { parseAllDocuments } from "yaml";

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

const svc = (name: string, port = 80, namespace = "default") => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace },
  spec: { ports: [{ port }] },
});
const gwClass = (name: string) => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "GatewayClass",
  metadata: { name },
  spec: { controllerName: "gatehouse.dev/gateway-controller" },
});
const tcpRoute = (name: string) => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "TCPRoute",
  metadata: { name, namespace: "default" },
  spec: { parentRefs: [{ name: "gw" }], rules: [{ backendRefs: [{ name: "svc", port: 80 }] }] },
});

function recorder() {
  const lines: string[] = [];
  const log: ProviderLog = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) };
  return { lines, log };
}

async function started(
  cluster: FakeCluster,
  clock: ManualClock,
  extra: { log?: ProviderLog; discoveryRetryMs?: number } = {},
) {
  const updates: ProviderUpdate[] = [];
  const provider = new KubernetesProvider({
    api: cluster.api,
    watch: cluster.watch,
    clock,
    debounceMs: 20,
    maxDelayMs: 200,
    retryMs: 500,
    maxRetryMs: 4000,
    discoveryRetryMs: extra.discoveryRetryMs ?? 10_000,
    ...(extra.log !== undefined ? { log: extra.log } : {}),
  });
  await provider.start((u) => updates.push(u));
  return { provider, updates, last: () => updates.at(-1) };
}

/** Advances the manual clock in small steps, letting async work run in between. */
async function advance(clock: ManualClock, ms: number, step = 10): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await flush();
  }
}

const secret = (name: string, value: string, namespace = "default") => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace },
  type: "kubernetes.io/tls",
  data: { "tls.crt": value, "tls.key": value },
});
const gatewayWithCert = (name: string, certificate: string | undefined) => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name, namespace: "default" },
  spec: {
    gatewayClassName: "gh",
    listeners: [
      certificate === undefined
        ? { name: "http", port: 80, protocol: "HTTP" }
        : { name: "https", port: 443, protocol: "HTTPS", tls: { certificateRefs: [{ name: certificate }] } },
    ],
  },
});

describe("KubernetesProvider (fake API server)", () => {
  test("Secrets: only referenced ones are read (GET) and held; changes are read again; unreferenced ones are forgotten", async () => {
    const cluster = new FakeCluster();
    cluster.apply(secret("cert", "v1"));
    cluster.apply(secret("unrelated", "never-read"));
    cluster.apply(gatewayWithCert("gw", "cert"));
    const clock = new ManualClock();
    const { provider, last } = await started(cluster, clock);
    assert.deepEqual([...(last()?.snapshot.secrets.keys() ?? [])], ["default/cert"], "in the first snapshot");
    assert.deepEqual(
      (last()?.snapshot.secrets.get("default/cert") as { data?: Record<string, string> } | undefined)?.data,
      { "tls.crt": "v1", "tls.key": "v1" },
    );
    assert.deepEqual(cluster.gets, ["secrets default/cert"]);
    assert.deepEqual(provider.referencedCached, ["Secret default/cert"]);
    // The metadata watch holds no data, not even of the unrelated Secret.
    cluster.apply(secret("unrelated", "changed"));
    await advance(clock, 300);
    assert.deepEqual(
      cluster.gets,
      ["secrets default/cert"],
      "a change to an unreferenced Secret reads nothing",
    );
    // A change to the referenced one: read again, delivered.
    cluster.apply(secret("cert", "v2"));
    await advance(clock, 300);
    assert.deepEqual(cluster.gets, ["secrets default/cert", "secrets default/cert"]);
    assert.equal(
      (last()?.snapshot.secrets.get("default/cert") as { data?: Record<string, string> } | undefined)?.data?.[
        "tls.crt"
      ],
      "v2",
    );
    // The Gateway stops referencing it: it leaves the snapshot and memory.
    cluster.apply(gatewayWithCert("gw", undefined));
    await advance(clock, 300);
    assert.equal(last()?.snapshot.secrets.size, 0);
    assert.deepEqual(provider.referencedCached, []);
    // Referenced again, and deleted: gone from the snapshot (the translator reports it missing).
    cluster.apply(gatewayWithCert("gw", "cert"));
    await advance(clock, 300);
    assert.ok(last()?.snapshot.secrets.has("default/cert"));
    cluster.delete("Secret", "cert");
    await advance(clock, 300);
    assert.equal(last()?.snapshot.secrets.size, 0);
    // A Secret created after the Gateway that references it arrives too.
    cluster.apply(secret("cert", "v3"));
    await advance(clock, 300);
    assert.ok(last()?.snapshot.secrets.has("default/cert"));
    assert.ok(!cluster.gets.some((g) => g.includes("unrelated")));
    await provider.stop();
  });

  test("the first snapshot holds every kind, with apiVersion/kind set on list items", async () => {
    const cluster = new FakeCluster();
    cluster.apply(svc("web"));
    cluster.apply(gwClass("gh"));
    cluster.apply(tcpRoute("db"));
    const clock = new ManualClock();
    const { provider, updates } = await started(cluster, clock);
    assert.equal(updates.length, 1);
    const snap = updates[0]?.snapshot;
    assert.equal(updates[0]?.generation, 1);
    assert.equal(snap?.services.get("default/web")?.apiVersion, "v1");
    assert.equal(snap?.services.get("default/web")?.kind, "Service");
    assert.ok(snap?.gatewayClasses.has("gh"));
    assert.ok(snap?.tcpRoutes.has("default/db"));
    assert.ok(snap?.namespaces.has("default"), "namespaces implied by objects");
    assert.ok(provider.kinds().every((k) => k.state === "synced"));
    await provider.stop();
  });

  test("lists are paginated", async () => {
    const cluster = new FakeCluster();
    for (let i = 0; i < 7; i++) cluster.apply(svc(`s${i}`));
    cluster.pageSize = 3;
    const { provider, last } = await started(cluster, new ManualClock());
    assert.equal(last()?.snapshot.services.size, 7);
    await provider.stop();
  });

  test("a burst of changes coalesces into one snapshot after the debounce", async () => {
    const cluster = new FakeCluster();
    const clock = new ManualClock();
    const { provider, updates, last } = await started(cluster, clock);
    for (let i = 0; i < 100; i++) cluster.apply(svc(`s${i}`, 1000 + i));
    await flush();
    assert.equal(updates.length, 1, "nothing before the debounce window closes");
    await advance(clock, 30);
    assert.equal(updates.length, 2);
    assert.equal(last()?.snapshot.services.size, 100);
    assert.equal(last()?.generation, 2);
    await provider.stop();
  });

  test("a never-ending stream of changes is still delivered every maxDelayMs", async () => {
    const cluster = new FakeCluster();
    const clock = new ManualClock();
    const { provider, updates } = await started(cluster, clock);
    for (let i = 0; i < 50; i++) {
      cluster.apply(svc("s", i + 1));
      await advance(clock, 10);
    }
    // 500 ms of changes every 10 ms (never 20 ms quiet): delivered by maxDelay (200 ms) twice.
    assert.equal(updates.length, 3);
    await provider.stop();
  });

  test("a kind whose CRD is missing does not hold up the others, is logged once, and is picked up later", async () => {
    const cluster = new FakeCluster();
    cluster.served.delete("gateway.networking.k8s.io/v1/tcproutes");
    cluster.apply(svc("web"));
    const clock = new ManualClock();
    const { lines, log } = recorder();
    const { provider, updates, last } = await started(cluster, clock, { log, discoveryRetryMs: 10_000 });
    assert.ok(last()?.snapshot.services.has("default/web"));
    assert.equal(provider.kinds().find((k) => k.kind === "TCPRoute")?.state, "missing");
    await advance(clock, 25_000, 1000);
    assert.equal(lines.filter((l) => l.includes("TCPRoute")).length, 1, lines.join("\n"));
    // The CRD gets installed (at v1alpha2 only): found at the next discovery, objects delivered.
    cluster.served.add("gateway.networking.k8s.io/v1alpha2/tcproutes");
    cluster.apply({ ...tcpRoute("db"), apiVersion: "gateway.networking.k8s.io/v1alpha2" });
    const before = updates.length;
    await advance(clock, 10_000, 100);
    assert.ok(updates.length > before);
    assert.ok(last()?.snapshot.tcpRoutes.has("default/db"));
    assert.equal(
      last()?.snapshot.tcpRoutes.get("default/db")?.apiVersion,
      "gateway.networking.k8s.io/v1alpha2",
    );
    assert.deepEqual(
      provider.kinds().find((k) => k.kind === "TCPRoute"),
      { kind: "TCPRoute", state: "synced", version: "v1alpha2" },
    );
    await provider.stop();
  });

  test("410 Gone: relist, and objects deleted meanwhile disappear", async () => {
    const cluster = new FakeCluster();
    cluster.apply(svc("a"));
    cluster.apply(svc("b"));
    const clock = new ManualClock();
    const { provider, last } = await started(cluster, clock);
    assert.equal(cluster.lists.get("services"), 1);
    // The watch is closed; meanwhile b is deleted and the history compacted.
    cluster.down = true;
    cluster.closeWatches();
    cluster.delete("Service", "b");
    cluster.apply(svc("c"));
    cluster.compactedBefore = Number(cluster.resourceVersion);
    cluster.down = false;
    await advance(clock, 5000, 50);
    assert.equal(cluster.lists.get("services"), 2, "relisted once");
    assert.deepEqual([...(last()?.snapshot.services.keys() ?? [])], ["default/a", "default/c"]);
    // An ERROR 410 event on an open watch also leads to a relist.
    cluster.expireWatches();
    await advance(clock, 5000, 50);
    assert.equal(cluster.lists.get("services"), 3);
    await provider.stop();
  });

  test("API server unreachable: the last snapshot stays, retries back off, recovery catches up", async () => {
    const cluster = new FakeCluster();
    cluster.apply(svc("a"));
    const clock = new ManualClock();
    const { lines, log } = recorder();
    const { provider, updates, last } = await started(cluster, clock, { log });
    cluster.down = true;
    cluster.closeWatches(new TypeError("fetch failed"));
    await advance(clock, 3000, 50);
    assert.equal(updates.length, 1, "no snapshot while unreachable (the last one stays in effect)");
    assert.equal(provider.kinds().find((k) => k.kind === "Service")?.state, "failing");
    assert.deepEqual(
      lines.filter((l) => l.startsWith("warn")),
      [
        "warn API server: not ready or unreachable (GET /readyz: connect ECONNREFUSED); the last known objects stay in use",
      ],
      "one warning for the outage, not one per kind or per retry",
    );
    // Waiting kinds resume at the first ready /readyz probe (every 250–300 ms), not after a backoff.
    const listsBefore = cluster.lists.get("services") ?? 0;
    cluster.down = false;
    cluster.apply(svc("b"));
    await advance(clock, 700, 50);
    assert.equal(
      cluster.lists.get("services"),
      listsBefore,
      "resumed the watch from the last resourceVersion: no relist",
    );
    assert.deepEqual([...(last()?.snapshot.services.keys() ?? [])], ["default/a", "default/b"]);
    assert.ok(
      lines.some((l) => l.startsWith("info API server: working again after")),
      lines.join("\n"),
    );
    await provider.stop();
  });

  test("403 Forbidden on one kind: logged, the others are delivered", async () => {
    const cluster = new FakeCluster();
    cluster.forbidden.add("secrets");
    cluster.apply(svc("a"));
    const { lines, log } = recorder();
    const { provider, last } = await started(cluster, new ManualClock(), { log });
    assert.ok(last()?.snapshot.services.has("default/a"));
    assert.equal(provider.kinds().find((k) => k.kind === "Secret")?.state, "forbidden");
    assert.ok(lines.some((l) => l.includes("Secret: forbidden")));
    await provider.stop();
  });

  test("a CRD removed at runtime: its objects leave the snapshot after missingGraceMs", async () => {
    const cluster = new FakeCluster();
    cluster.apply(tcpRoute("db"));
    const clock = new ManualClock();
    const { provider, last } = await started(cluster, clock);
    assert.ok(last()?.snapshot.tcpRoutes.has("default/db"));
    cluster.served.delete("gateway.networking.k8s.io/v1/tcproutes");
    cluster.expireWatches();
    await advance(clock, 5000, 50);
    assert.ok(
      last()?.snapshot.tcpRoutes.has("default/db"),
      "kept during the grace period (a restarting API server 404s)",
    );
    await advance(clock, 10_000, 100);
    assert.equal(last()?.snapshot.tcpRoutes.size, 0);
    assert.equal(provider.kinds().find((k) => k.kind === "TCPRoute")?.state, "missing");
    await provider.stop();
  });

  test("start waits while the API server is unreachable, then delivers", async () => {
    const cluster = new FakeCluster();
    cluster.apply(svc("a"));
    cluster.down = true;
    const clock = new ManualClock();
    const updates: ProviderUpdate[] = [];
    const provider = new KubernetesProvider({ api: cluster.api, watch: cluster.watch, clock, retryMs: 100 });
    let resolved = false;
    const starting = provider.start((u) => updates.push(u)).then(() => (resolved = true));
    await advance(clock, 1000, 50);
    assert.equal(resolved, false);
    cluster.down = false;
    await advance(clock, 2000, 50);
    await starting;
    assert.equal(updates.length, 1);
    assert.ok(updates[0]?.snapshot.services.has("default/a"));
    await provider.stop();
  });

  test("managedFields are dropped from cached objects", async () => {
    const cluster = new FakeCluster();
    cluster.apply({
      ...svc("a"),
      metadata: { name: "a", namespace: "default", managedFields: [{ manager: "kubectl" }] },
    });
    const clock = new ManualClock();
    const { provider, last } = await started(cluster, clock);
    assert.equal(
      (last()?.snapshot.services.get("default/a")?.metadata as unknown as Record<string, unknown>)[
        "managedFields"
      ],
      undefined,
    );
    cluster.apply({
      ...svc("b"),
      metadata: { name: "b", namespace: "default", managedFields: [{ manager: "kubectl" }] },
    });
    await advance(clock, 100);
    assert.equal(
      (last()?.snapshot.services.get("default/b")?.metadata as unknown as Record<string, unknown>)[
        "managedFields"
      ],
      undefined,
    );
    await provider.stop();
  });
});

// The shared provider contract, against the fake API server (real timers).
providerContract("kubernetes (fake API server)", {
  create(sources) {
    const cluster = new FakeCluster();
    const names = new Map<string, string>();
    const set = (name: string, yaml: string | undefined): Promise<void> => {
      const previous = names.get(name);
      if (yaml === undefined) {
        if (previous !== undefined) cluster.delete("Service", previous);
        names.delete(name);
        return Promise.resolve();
      }
      for (const doc of parseAllDocuments(yaml)) {
        const obj = doc.toJS() as { metadata: { name: string } } & Record<string, unknown>;
        cluster.apply(obj);
        names.set(name, obj.metadata.name);
      }
      return Promise.resolve();
    };
    for (const [name, yaml] of Object.entries(sources)) void set(name, yaml);
    return Promise.resolve({
      provider: new KubernetesProvider({ api: cluster.api, watch: cluster.watch, debounceMs: 10 }),
      set,
      cleanup: () => Promise.resolve(),
    });
  },
});
