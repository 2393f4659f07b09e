// Hot updates through a real HAProxy: routes added and removed, weights and endpoints changed. Each
// change must serve within a bounded time; the time from the file write to the first request
// answered the new way is measured and reported (test diagnostics), along with how the data plane
// took it. Endpoint changes within the server slots must never reload HAProxy (checked on the
// master's reload counter and on gatehouse_reloads_total).
import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import type { Response } from "./client.ts";
import { useHarness, type Applied, type Harness } from "./harness.ts";
import {
  docs,
  endpointSlice,
  gateway,
  gatewayClass,
  httpRoute,
  ref,
  service,
  type Obj,
} from "./resources.ts";

const prefix = (value: string): Obj => ({ path: { type: "PathPrefix", value } });
const BOUND_MS = 3000;

const harness = useHarness({
  backends: { a1: "http", a2: "http", a3: "http", a4: "http", a5: "http", b: "http", e1: "http", e2: "http" },
  serverSlots: 4,
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("b", { endpoints: [h.backend("b").endpoint] }),
    ),
    "svc-a.yaml": docs(service("a", { endpoints: [h.backend("a1").endpoint] })),
    "sliced.yaml": docs(
      service("sliced"),
      endpointSlice("sliced-e1", "sliced", h.backend("e1").port, [{ address: "127.0.0.1" }]),
      endpointSlice("sliced-e2", "sliced", h.backend("e2").port, [{ address: "127.0.0.1" }]),
    ),
    "base.yaml": docs(
      httpRoute("base", {
        hostnames: ["up.test"],
        rules: [
          { matches: [prefix("/a")], backendRefs: [ref("a")] },
          { matches: [prefix("/b")], backendRefs: [ref("b")] },
          { matches: [prefix("/sliced")], backendRefs: [ref("sliced")] },
        ],
      }),
    ),
    "weights.yaml": weights(1, 0),
  }),
});

function weights(a: number, b: number): string {
  return docs(
    httpRoute("weights", {
      hostnames: ["weights.test"],
      rules: [{ backendRefs: [ref("a", { weight: a }), ref("b", { weight: b })] }],
    }),
  );
}

interface Measured {
  applied: Applied;
  /** File written → first answer showing the change, in ms. */
  propagationMs: number;
  reloads: number;
  reloadMetric: number;
}

/**
 * Writes `files` and polls `check` until it holds; reports the propagation time and how the
 * change was applied, and how many HAProxy reloads it cost.
 */
async function measure(
  t: TestContext,
  what: string,
  files: Record<string, string | null>,
  check: (h: Harness) => Promise<boolean>,
): Promise<Measured> {
  const h = harness();
  const reloadsBefore = await h.masterReloads();
  const metricBefore = await h.metric('gatehouse_reloads_total{result="success"}');
  const started = performance.now();
  const writing = h.write(files);
  let propagationMs = -1;
  while (performance.now() - started < BOUND_MS) {
    if (await check(h).catch(() => false)) {
      propagationMs = performance.now() - started;
      break;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const applied = await writing;
  assert.ok(propagationMs >= 0, `${what}: not serving the new way within ${BOUND_MS} ms`);
  const reloads = (await h.masterReloads()) - reloadsBefore;
  const reloadMetric = (await h.metric('gatehouse_reloads_total{result="success"}')) - metricBefore;
  t.diagnostic(
    `${what}: propagation ${propagationMs.toFixed(1)} ms (write → answer), applied by ${applied.method ?? "?"}` +
      ` in ${applied.ms.toFixed(1)} ms (write → processed), HAProxy reloads ${reloads}`,
  );
  return { applied, propagationMs, reloads, reloadMetric };
}

const backendOf = (r: Response): string => (r.status === 200 ? (r.echo?.backend ?? "?") : String(r.status));
const servedBy = async (h: Harness, host: string, path: string): Promise<string> =>
  backendOf(await h.get(path, { host }));
/** `n` requests in a row all answered by `backend`. */
const allBy = async (h: Harness, host: string, path: string, backend: string, n = 5): Promise<boolean> => {
  for (let i = 0; i < n; i++) if ((await servedBy(h, host, path)) !== backend) return false;
  return true;
};

describe("hot updates", () => {
  test("the initial configuration serves", async () => {
    const h = harness();
    const first = await h.waitGeneration(1);
    assert.equal(first?.result, "success");
    assert.equal(first.method, "start");
    assert.equal(await servedBy(h, "up.test", "/a"), "a1");
    assert.equal(await servedBy(h, "up.test", "/b"), "b");
    assert.equal(await servedBy(h, "up.test", "/new"), "404");
  });

  test("adding a route to a backend already in use is a runtime (map) update", async (t) => {
    const m = await measure(
      t,
      "add route (existing backend)",
      {
        "added.yaml": docs(
          httpRoute("added", {
            hostnames: ["up.test"],
            rules: [{ matches: [prefix("/new")], backendRefs: [ref("b")] }],
          }),
        ),
      },
      async (h) => (await servedBy(h, "up.test", "/new")) === "b",
    );
    assert.equal(m.applied.method, "runtime");
    assert.equal(m.reloads, 0);
    assert.equal(await servedBy(harness(), "up.test", "/a"), "a1");
  });

  test("removing a route: 404 within the bound, other routes unaffected", async (t) => {
    const m = await measure(
      t,
      "remove route",
      { "added.yaml": null },
      async (h) => (await servedBy(h, "up.test", "/new")) === "404",
    );
    assert.equal(m.applied.method, "runtime");
    assert.equal(m.reloads, 0);
    assert.equal(await servedBy(harness(), "up.test", "/b"), "b");
  });

  test("adding a route to a new backend takes a spare backend: a runtime update, no reload", async (t) => {
    const h = harness();
    const m = await measure(
      t,
      "add route (new backend)",
      {
        "fresh.yaml": docs(
          service("fresh", { endpoints: [h.backend("a5").endpoint] }),
          httpRoute("fresh", { hostnames: ["fresh.test"], rules: [{ backendRefs: [ref("fresh")] }] }),
        ),
      },
      async (x) => (await servedBy(x, "fresh.test", "/")) === "a5",
    );
    assert.equal(m.applied.method, "runtime");
    assert.equal(m.reloads, 0);
    assert.equal(m.reloadMetric, 0);
  });

  test("changing weights is a runtime update", async (t) => {
    const h = harness();
    assert.ok(await allBy(h, "weights.test", "/", "a1", 10));
    const m = await measure(t, "change weights", { "weights.yaml": weights(0, 1) }, (x) =>
      allBy(x, "weights.test", "/", "b", 10),
    );
    assert.equal(m.applied.method, "runtime");
    assert.equal(m.reloads, 0);
  });

  test("changing endpoints within the slots never reloads", async (t) => {
    const h = harness();
    const ep = (...names: string[]): string[] => names.map((n) => h.backend(n).endpoint);
    const reloadsBefore = await h.masterReloads();
    const metricBefore = await h.metric('gatehouse_reloads_total{result="success"}');
    const serverUpdatesBefore = await h.metric('gatehouse_runtime_updates_total{type="server"}');

    const replaced = await measure(
      t,
      "replace endpoint",
      { "svc-a.yaml": docs(service("a", { endpoints: ep("a2") })) },
      (x) => allBy(x, "up.test", "/a", "a2"),
    );
    assert.equal(replaced.applied.method, "runtime");

    const scaled = await measure(
      t,
      "scale 1 → 4 endpoints (4 slots)",
      { "svc-a.yaml": docs(service("a", { endpoints: ep("a1", "a2", "a3", "a4") })) },
      async (x) => {
        const seen = new Set<string>();
        for (let i = 0; i < 16; i++) seen.add(await servedBy(x, "up.test", "/a"));
        return seen.size === 4 && [...seen].every((s) => /^a[1-4]$/.test(s));
      },
    );
    assert.equal(scaled.applied.method, "runtime");

    const down = await measure(
      t,
      "scale 4 → 1 endpoint",
      { "svc-a.yaml": docs(service("a", { endpoints: ep("a3") })) },
      (x) => allBy(x, "up.test", "/a", "a3", 8),
    );
    assert.equal(down.applied.method, "runtime");

    const sliceChange = await measure(
      t,
      "EndpointSlice endpoint not ready",
      {
        "sliced.yaml": docs(
          service("sliced"),
          endpointSlice("sliced-e1", "sliced", h.backend("e1").port, [
            { address: "127.0.0.1", ready: false },
          ]),
          endpointSlice("sliced-e2", "sliced", h.backend("e2").port, [{ address: "127.0.0.1" }]),
        ),
      },
      (x) => allBy(x, "up.test", "/sliced", "e2", 8),
    );
    assert.equal(sliceChange.applied.method, "runtime");

    assert.equal(await h.masterReloads(), reloadsBefore, "HAProxy reloaded for an endpoint change");
    assert.equal(await h.metric('gatehouse_reloads_total{result="success"}'), metricBefore);
    assert.ok((await h.metric('gatehouse_runtime_updates_total{type="server"}')) > serverUpdatesBefore);
    // The harness's marker file may be loaded on its own after the change (an unchanged apply).
    const status = await h.status();
    assert.ok(["runtime", "unchanged"].includes(status.dataplane.lastApply?.method ?? ""));
  });

  test("more endpoints than slots: a reload, then everything serves", async (t) => {
    const h = harness();
    const names = ["a1", "a2", "a3", "a4", "a5"];
    const m = await measure(
      t,
      "scale beyond the slots (5 endpoints, 4 slots)",
      { "svc-a.yaml": docs(service("a", { endpoints: names.map((n) => h.backend(n).endpoint) })) },
      async (x) => {
        const seen = new Set<string>();
        for (let i = 0; i < 20; i++) seen.add(await servedBy(x, "up.test", "/a"));
        return seen.size === 5;
      },
    );
    assert.equal(m.applied.method, "reload");
    assert.equal(m.reloads, 1);
  });
});
