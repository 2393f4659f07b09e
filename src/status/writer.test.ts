import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeKubeApi } from "../provider/kubernetes/testing/fake.ts";
import type { KubeObject } from "../resources/meta.ts";
import { buildSnapshot, type Snapshot } from "../resources/snapshot.ts";
import type { Condition, StatusEntry } from "./types.ts";
import { KubernetesStatusWriter } from "./writer.ts";

const OURS = "gatehouse.dev/gateway-controller";
const GW = "/apis/gateway.networking.k8s.io/v1";
const T0 = "2025-01-01T00:00:00Z";
const T1 = "2025-06-01T12:00:00Z";

const cond = (type: string, status: Condition["status"], t: string, observedGeneration = 1): Condition => ({
  type,
  status,
  reason: type,
  message: "",
  observedGeneration,
  lastTransitionTime: t,
});

function route(name: string, parents: unknown[] = []): KubeObject {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace: "default", generation: 1 },
    spec: { parentRefs: [{ name: "gw" }] },
    status: { parents },
  };
}

const gateway: KubeObject = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "gw", namespace: "default", generation: 1 },
  spec: { gatewayClassName: "gh", listeners: [] },
};

/** Stores objects in the fake API and returns the snapshot an informer would show. */
function setup(api: FakeKubeApi, objects: KubeObject[]): Snapshot {
  const stored = objects.map((o) => {
    const plural = o.kind === "Gateway" ? "gateways" : "httproutes";
    return api.put(`${GW}/namespaces/default/${plural}/${o.metadata.name}`, o) as unknown as KubeObject;
  });
  return buildSnapshot(stored.map((object) => ({ object, source: {} }))).snapshot;
}

const gatewayStatus = (t: string, programmed: Condition["status"] = "True"): StatusEntry => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "gw", namespace: "default" },
  status: { conditions: [cond("Accepted", "True", t), cond("Programmed", programmed, t)], listeners: [] },
});

const routeStatus = (name: string, t: string): StatusEntry => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "HTTPRoute",
  metadata: { name, namespace: "default" },
  status: {
    parents: [{ parentRef: { name: "gw" }, controllerName: OURS, conditions: [cond("Accepted", "True", t)] }],
  },
});

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe("KubernetesStatusWriter", () => {
  test("fenced: each request carries the term's signal and what is left of it; once it ends, nothing more is sent", async () => {
    const api = new FakeKubeApi();
    const snapshot = setup(api, [gateway, route("r1"), route("r2")]);
    const term = new AbortController();
    const fence = { signal: term.signal, remainingMs: () => 4_000 };
    let puts = 0;
    api.intercept = (method) => {
      if (method !== "PUT") return undefined;
      puts++;
      // The API server never answers; only the end of the term ends the request.
      return new Promise((_resolve, reject) =>
        term.signal.addEventListener("abort", () => reject(new Error("aborted"))),
      );
    };
    const writer = new KubernetesStatusWriter({ api, controllerName: OURS, concurrency: 1 });
    const pass = writer.write(
      [gatewayStatus(T0), routeStatus("r1", T0), routeStatus("r2", T0)],
      snapshot,
      fence,
    );
    await flush();
    assert.equal(puts, 1);
    const put = api.requests.find((r) => r.method === "PUT");
    assert.equal(put?.options?.signal, term.signal);
    assert.equal(put?.options?.timeoutMs, 4_000);
    term.abort();
    const report = await pass;
    assert.deepEqual(report.fenced.sort(), [
      "Gateway default/gw",
      "HTTPRoute default/r1",
      "HTTPRoute default/r2",
    ]);
    assert.deepEqual(report.failed, []);
    assert.deepEqual(report.written, []);
    assert.equal(puts, 1, "no request after the term ended");
  });

  test("a term with no time left sends nothing", async () => {
    const api = new FakeKubeApi();
    const snapshot = setup(api, [gateway]);
    const writer = new KubernetesStatusWriter({ api, controllerName: OURS });
    const report = await writer.write([gatewayStatus(T0)], snapshot, {
      signal: new AbortController().signal,
      remainingMs: () => 0,
    });
    assert.deepEqual(report.fenced, ["Gateway default/gw"]);
    assert.deepEqual(api.writes, []);
  });

  test("writes through the status subresource, then not again while nothing changes", async () => {
    const api = new FakeKubeApi();
    const snapshot = setup(api, [gateway]);
    const writer = new KubernetesStatusWriter({ api, controllerName: OURS });
    const first = await writer.write([gatewayStatus(T0)], snapshot);
    assert.deepEqual(first.written, ["Gateway default/gw"]);
    assert.deepEqual(
      api.writes.map((r) => `${r.method} ${r.path}`),
      [`PUT ${GW}/namespaces/default/gateways/gw/status`],
    );
    // The snapshot still shows the old object (the watch event has not arrived): no 409, no write.
    const second = await writer.write([gatewayStatus(T1)], snapshot);
    assert.deepEqual(second.written, []);
    assert.equal(second.unchanged, 1);
    assert.equal(api.writes.length, 1);
    // The new object arrives: still nothing to write, and the first time is kept.
    const fresh = setupFromApi(api);
    assert.equal((await writer.write([gatewayStatus(T1)], fresh)).written.length, 0);
    const stored = api.get(`${GW}/namespaces/default/gateways/gw`) as { status: { conditions: Condition[] } };
    assert.deepEqual(
      stored.status.conditions.map((c) => c.lastTransitionTime),
      [T0, T0],
    );
  });

  test("a changed status is written, keeping the time of conditions that did not change", async () => {
    const api = new FakeKubeApi();
    const writer = new KubernetesStatusWriter({ api, controllerName: OURS });
    await writer.write([gatewayStatus(T0)], setup(api, [gateway]));
    await writer.write([gatewayStatus(T1, "False")], setupFromApi(api));
    const stored = api.get(`${GW}/namespaces/default/gateways/gw`) as { status: { conditions: Condition[] } };
    assert.deepEqual(stored.status.conditions, [
      cond("Accepted", "True", T0),
      cond("Programmed", "False", T1),
    ]);
  });

  test("409 Conflict: GET the object again, merge again, write again", async () => {
    const api = new FakeKubeApi();
    const snapshot = setup(api, [
      route("r", [{ parentRef: { name: "x" }, controllerName: "other", conditions: [] }]),
    ]);
    // Another controller updates the route after our snapshot was taken.
    const path = `${GW}/namespaces/default/httproutes/r`;
    const now = api.get(path) as KubeObject & { status: { parents: unknown[] } };
    api.put(path, {
      ...now,
      status: {
        parents: [
          ...now.status.parents,
          { parentRef: { name: "y" }, controllerName: "third", conditions: [] },
        ],
      },
    });
    const writer = new KubernetesStatusWriter({ api, controllerName: OURS });
    const report = await writer.write([routeStatus("r", T0)], snapshot);
    assert.equal(report.conflicts, 1);
    assert.deepEqual(report.written, ["HTTPRoute default/r"]);
    const stored = api.get(path) as { status: { parents: Array<{ controllerName: string }> } };
    assert.deepEqual(
      stored.status.parents.map((p) => p.controllerName),
      ["other", "third", OURS],
    );
  });

  test("gives up after maxAttempts conflicts and reports the failure", async () => {
    const api = new FakeKubeApi();
    const snapshot = setup(api, [route("r")]);
    const path = `${GW}/namespaces/default/httproutes/r`;
    api.intercept = (method, p) => {
      // Someone else writes between every GET and our PUT.
      if (method === "PUT" && p === `${path}/status`) api.put(path, api.get(path) as Record<string, unknown>);
      return undefined;
    };
    const writer = new KubernetesStatusWriter({ api, controllerName: OURS, maxAttempts: 3 });
    const report = await writer.write([routeStatus("r", T0)], snapshot);
    assert.equal(report.failed.length, 1);
    assert.equal(report.conflicts, 2);
  });

  test("our entries are removed from routes the translator no longer reports; other routes are left alone", async () => {
    const api = new FakeKubeApi();
    const snapshot = setup(api, [
      route("stale", [
        { parentRef: { name: "gw" }, controllerName: OURS, conditions: [cond("Accepted", "True", T0)] },
        { parentRef: { name: "x" }, controllerName: "other", conditions: [] },
      ]),
      route("foreign", [{ parentRef: { name: "x" }, controllerName: "other", conditions: [] }]),
    ]);
    const writer = new KubernetesStatusWriter({ api, controllerName: OURS });
    const report = await writer.write([], snapshot);
    assert.deepEqual(report.written, ["HTTPRoute default/stale"]);
    const stale = api.get(`${GW}/namespaces/default/httproutes/stale`) as { status: { parents: unknown[] } };
    assert.deepEqual(stale.status.parents, [
      { parentRef: { name: "x" }, controllerName: "other", conditions: [] },
    ]);
  });

  test("objects deleted meanwhile (404) are reported missing, not failed", async () => {
    const api = new FakeKubeApi();
    const snapshot = setup(api, [gateway]);
    api.objects.clear();
    const report = await new KubernetesStatusWriter({ api, controllerName: OURS }).write(
      [gatewayStatus(T0)],
      snapshot,
    );
    assert.deepEqual(report.missing, ["Gateway default/gw"]);
    assert.deepEqual(report.failed, []);
  });

  test("other errors are reported as failures", async () => {
    const api = new FakeKubeApi();
    const snapshot = setup(api, [gateway]);
    api.intercept = () => {
      throw Object.assign(new Error("connection refused"), { statusCode: undefined });
    };
    const report = await new KubernetesStatusWriter({ api, controllerName: OURS }).write(
      [gatewayStatus(T0)],
      snapshot,
    );
    assert.equal(report.failed.length, 1);
  });
});

function setupFromApi(api: FakeKubeApi): Snapshot {
  const objects = [...api.objects.values()].map((o) => ({
    object: structuredClone(o) as unknown as KubeObject,
    source: {},
  }));
  return buildSnapshot(objects).snapshot;
}
