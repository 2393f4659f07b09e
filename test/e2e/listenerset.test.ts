// ListenerSets through a real HAProxy (serve mode): a Gateway that allows ListenerSets from its own
// namespace gets a second port from a ListenerSet; a route naming the ListenerSet is served there and
// not on the Gateway's own listener; a ListenerSet listener that takes the Gateway listener's port
// and hostname is Conflicted while the Gateway keeps serving; deleting the ListenerSet removes its
// listener.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { StatusDocument } from "../../src/admin/state.ts";
import { useHarness, type Harness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, NS, ref, service, type Obj } from "./resources.ts";

const GROUP = "gateway.networking.k8s.io/v1";

const harness = useHarness({
  backends: { main: "http", team: "http" },
  ports: 2,
  files: (h) => {
    const gw = gateway("gw", h.ip, [{ name: "http", port: h.ports[0] ?? 0, hostname: "main.test" }]);
    (gw["spec"] as Obj)["allowedListeners"] = { namespaces: { from: "Same" } };
    return {
      "gateway.yaml": docs(
        gatewayClass(),
        gw,
        service("main", { endpoints: [h.backend("main").endpoint] }),
        service("team", { endpoints: [h.backend("team").endpoint] }),
        httpRoute("main", { rules: [{ backendRefs: [ref("main")] }] }),
      ),
      "listenerset.yaml": listenerSetFile(h),
    };
  },
});

function listenerSetFile(h: Harness): string {
  return docs(
    {
      apiVersion: GROUP,
      kind: "ListenerSet",
      metadata: { name: "team", namespace: NS },
      spec: {
        parentRef: { name: "gw" },
        listeners: [
          { name: "team", port: h.ports[1] ?? 0, protocol: "HTTP", hostname: "team.test" },
          { name: "steal", port: h.ports[0] ?? 0, protocol: "HTTP", hostname: "main.test" },
        ],
      },
    },
    httpRoute("team", {
      parentRefs: [{ kind: "ListenerSet", name: "team" }],
      rules: [{ backendRefs: [ref("team")] }],
    }),
  );
}

interface Condition {
  type: string;
  status: string;
  reason: string;
}

function listenerConditions(status: StatusDocument, listener: string): Condition[] {
  const set = status.objects.find((o) => o.kind === "ListenerSet" && o.metadata.name === "team");
  assert.ok(set !== undefined, "ListenerSet team not in /status");
  const listeners = set.status["listeners"] as Array<{ name: string; conditions: Condition[] }>;
  return listeners.find((l) => l.name === listener)?.conditions ?? [];
}

describe("ListenerSet", () => {
  test("its listener serves the routes that name it; a conflicting one loses, the Gateway serves on", async () => {
    const h = harness();
    const team = await h.get("/", { host: "team.test", port: h.ports[1] ?? 0 });
    assert.equal(team.status, 200);
    assert.equal(team.echo?.backend, "team");
    const main = await h.get("/", { host: "main.test", port: h.ports[0] ?? 0 });
    assert.equal(main.echo?.backend, "main");
    // The route naming the ListenerSet is not on the Gateway's own listener.
    assert.equal((await h.get("/", { host: "team.test", port: h.ports[0] ?? 0 })).status, 404);

    const status = await h.status();
    const conflicted = listenerConditions(status, "steal").find((c) => c.type === "Conflicted");
    assert.equal(conflicted?.status, "True");
    assert.equal(conflicted.reason, "HostnameConflict");
    assert.equal(listenerConditions(status, "team").find((c) => c.type === "Programmed")?.status, "True");
    const gw = status.objects.find((o) => o.kind === "Gateway" && o.metadata.name === "gw");
    assert.equal(gw?.status["attachedListenerSets"], 1);
  });

  test("deleting the ListenerSet removes its listener", async (t) => {
    const h = harness();
    t.after(() => h.write({ "listenerset.yaml": listenerSetFile(h) }));
    await h.write({ "listenerset.yaml": null });
    await assert.rejects(h.get("/", { host: "team.test", port: h.ports[1] ?? 0, timeoutMs: 2000 }));
    assert.equal((await h.get("/", { host: "main.test", port: h.ports[0] ?? 0 })).echo?.backend, "main");
  });
});
