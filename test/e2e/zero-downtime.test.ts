// No failed request while the configuration churns: two clients (one on a keep-alive connection,
// one opening a new connection per request) hit an unchanged route while ~100 changes are applied
// (routes added and removed, endpoints changed: runtime updates; backends added and removed:
// reloads). A WebSocket opened before the reloads keeps working after them.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { useHarness } from "./harness.ts";
import { load } from "./load.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service } from "./resources.ts";
import { openWebSocket } from "./ws.ts";

const CHANGES = 100;

const harness = useHarness({
  backends: { steady: "http", p1: "http", p2: "http", extra: "http" },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("steady", { endpoints: [h.backend("steady").endpoint] }),
      httpRoute("steady", { hostnames: ["steady.test"], rules: [{ backendRefs: [ref("steady")] }] }),
      httpRoute("pool", { hostnames: ["pool.test"], rules: [{ backendRefs: [ref("pool")] }] }),
    ),
    "pool.yaml": docs(service("pool", { endpoints: [h.backend("p1").endpoint] })),
  }),
});

describe("zero downtime", () => {
  test(`no failed request over ${CHANGES} changes (runtime updates and reloads)`, async (t) => {
    const h = harness();
    const ws = await openWebSocket({ address: h.ip, port: h.port, host: "steady.test", path: "/ws" });
    assert.equal(await ws.roundTrip("before"), "steady:before");
    const reloadsBefore = await h.masterReloads();
    const traffic = load(h, ["keep-alive", "new-connection"], { host: "steady.test", backend: "steady" });
    const methods = new Map<string, number>();
    const started = performance.now();
    let pool = 1;
    try {
      for (let i = 0; i < CHANGES; i++) {
        const step = i % 10;
        let files: Record<string, string | null>;
        if (step === 9) {
          // A backend appears or disappears with a route whose filter changes the frontend: a
          // reload (a new Service alone would take a spare backend at runtime).
          files =
            i % 20 === 9
              ? {
                  "extra.yaml": docs(
                    service("extra", { endpoints: [h.backend("extra").endpoint] }),
                    httpRoute("extra", {
                      hostnames: ["extra.test"],
                      rules: [
                        {
                          backendRefs: [ref("extra")],
                          filters: [
                            {
                              type: "RequestHeaderModifier",
                              requestHeaderModifier: { set: [{ name: "x-extra", value: "1" }] },
                            },
                          ],
                        },
                      ],
                    }),
                  ),
                }
              : { "extra.yaml": null };
        } else if (step % 3 === 0) {
          files = { [`churn-${i}.yaml`]: docs(churnRoute(i)) };
        } else if (step % 3 === 1) {
          files = { [`churn-${i - 1}.yaml`]: null };
        } else {
          pool = 3 - pool;
          files = { "pool.yaml": docs(service("pool", { endpoints: [h.backend(`p${pool}`).endpoint] })) };
        }
        const applied = await h.write(files);
        assert.equal(applied.result, "success", `change ${i} failed to apply`);
        methods.set(applied.method ?? "?", (methods.get(applied.method ?? "?") ?? 0) + 1);
      }
    } finally {
      const { ok, failures } = await traffic.stop();
      const seconds = (performance.now() - started) / 1000;
      const reloads = (await h.masterReloads()) - reloadsBefore;
      t.diagnostic(
        `${CHANGES} changes in ${seconds.toFixed(1)} s (${[...methods].map(([m, n]) => `${m} ${n}`).join(", ")}; ` +
          `HAProxy reloads ${reloads}); ${ok} requests served, ${failures.length} failed`,
      );
      assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed requests`);
      assert.ok(ok > CHANGES, `only ${ok} requests were sent`);
    }
    assert.equal(methods.get("runtime"), 90, JSON.stringify([...methods]));
    assert.equal(methods.get("reload"), 10, JSON.stringify([...methods]));

    // The WebSocket opened before the reloads is still served (by the old worker).
    assert.equal(await ws.roundTrip("after"), "steady:after");
    ws.close();
  });
});

function churnRoute(i: number): Record<string, unknown> {
  return httpRoute(`churn-${i}`, {
    hostnames: ["pool.test"],
    rules: [
      { matches: [{ path: { type: "PathPrefix", value: `/churn/${i}` } }], backendRefs: [ref("pool")] },
    ],
  });
}
