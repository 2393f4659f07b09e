// Spare backends: a route bringing a new Service is served through the runtime API (a free spare
// backend takes the Service) without reloading HAProxy, and no request fails on the way: clients
// on an unchanged route, and clients polling the route being added or removed, only ever see the
// old or the new answer (404 before a route exists or after it is gone, 200 from the right backend
// while it exists; never a 500 or 503 from a half-made change). A later reload compacts: the
// Service gets its own backend, every spare is free again.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import { showServersState } from "../../src/dataplane/haproxy/runtime/commands.ts";
import { workerRuntimeApi } from "../../src/dataplane/haproxy/runtime/socket.ts";
import { keepAliveAgent, request } from "./client.ts";
import { useHarness, type Harness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service } from "./resources.ts";

const harness = useHarness({
  backends: { steady: "http", one: "http", two: "http", three: "http" },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("steady", { endpoints: [h.backend("steady").endpoint] }),
      httpRoute("steady", { hostnames: ["steady.test"], rules: [{ backendRefs: [ref("steady")] }] }),
    ),
  }),
});

/** A route on its own hostname `<name>.test` with its own Service `name` → echo backend `backend`. */
function routeWithService(h: Harness, name: string, backend: string, filters?: unknown[]): string {
  return docs(
    service(name, { endpoints: [h.backend(backend).endpoint] }),
    httpRoute(name, {
      hostnames: [`${name}.test`],
      rules: [{ backendRefs: [ref(name)], ...(filters !== undefined ? { filters } : {}) }],
    }),
  );
}

interface Watch {
  stop(): Promise<{ requests: number; failures: string[]; served: number }>;
}

/** Watches still running: stopped after each test, also when it failed half-way. */
const active = new Set<Watch>();

/**
 * `clients` loops of requests to `host` until stopped. `expect(status, backend, servedBefore)` says
 * whether an answer is acceptable (servedBefore: this loop already saw a 200 from the right backend).
 */
function watch(
  h: Harness,
  host: string,
  clients: Array<"keep-alive" | "new-connection">,
  expect: (status: number, backend: string | undefined, servedBefore: boolean) => boolean,
): Watch {
  let running = true;
  let requests = 0;
  let served = 0;
  const failures: string[] = [];
  const loops = clients.map(async (kind, i) => {
    const agent = kind === "keep-alive" ? keepAliveAgent() : false;
    let servedBefore = false;
    try {
      while (running) {
        try {
          const res = await request({
            address: h.ip,
            port: h.port,
            host,
            path: `/w/${i}`,
            agent,
            timeoutMs: 5000,
          });
          requests++;
          const backend = res.echo?.backend;
          if (!expect(res.status, backend, servedBefore))
            failures.push(
              `${host} ${kind}: status ${res.status} from ${backend ?? "-"}: ${res.body.slice(0, 80)}`,
            );
          if (res.status === 200) {
            servedBefore = true;
            served++;
          }
        } catch (err) {
          failures.push(`${host} ${kind}: ${String(err)}`);
        }
      }
    } finally {
      if (agent !== false) agent.destroy();
    }
  });
  const w: Watch = {
    stop: async () => {
      running = false;
      active.delete(w);
      await Promise.all(loops);
      return { requests, failures, served };
    },
  };
  active.add(w);
  return w;
}

/** Steady traffic: always 200 from `steady`. */
const steady = (h: Harness): Watch =>
  watch(h, "steady.test", ["keep-alive", "new-connection"], (s, b) => s === 200 && b === "steady");
/** A route being added: 404 until it serves, then only 200 from `backend`. */
const appearing = (h: Harness, host: string, backend: string): Watch =>
  watch(h, host, ["new-connection", "new-connection", "keep-alive"], (s, b, served) =>
    served ? s === 200 && b === backend : s === 404 || (s === 200 && b === backend),
  );
/** A route being removed: 200 from `backend` until it is gone, then only 404. */
const disappearing = (h: Harness, host: string, backend: string): Watch =>
  watch(
    h,
    host,
    ["new-connection", "new-connection", "keep-alive"],
    (s, b) => s === 404 || (s === 200 && b === backend),
  );

async function spareState(
  h: Harness,
  spare: string,
): Promise<Array<{ address: string; maintenance: boolean }>> {
  const rows = await showServersState(workerRuntimeApi(join(h.stateDir, "master.sock")), spare);
  return rows.map((r) => ({ address: `${r.address}:${r.port}`, maintenance: r.maintenance }));
}

/** The spare serving IRBackend `service/default/<name>/80` according to /status. */
async function spareOf(h: Harness, name: string): Promise<string | undefined> {
  const spares = (await h.status()).dataplane.spares ?? {};
  return Object.entries(spares).find(([, id]) => id === `service/default/${name}/80`)?.[0];
}

describe("spare backends", () => {
  afterEach(async () => {
    await Promise.all([...active].map((w) => w.stop()));
  });

  test("a route with a new Service is served through a spare: no reload, no failed request", async (t) => {
    const h = harness();
    const reloads = await h.masterReloads();
    const traffic = steady(h);
    const adding = appearing(h, "one.test", "one");
    await new Promise((r) => setTimeout(r, 50));
    const applied = await h.write({ "one.yaml": routeWithService(h, "one", "one") });
    await h.waitFor(
      "one.test served",
      async () => (await h.get("/", { host: "one.test" })).echo?.backend === "one",
    );
    await new Promise((r) => setTimeout(r, 100));
    const added = await adding.stop();
    const load = await traffic.stop();
    t.diagnostic(
      `new Service applied by ${applied.method ?? "?"} in ${applied.ms.toFixed(1)} ms; ` +
        `${load.requests} steady and ${added.requests} new-route requests`,
    );
    assert.equal(applied.method, "runtime");
    assert.equal(await h.masterReloads(), reloads, "HAProxy reloaded");
    assert.deepEqual([...load.failures, ...added.failures].slice(0, 10), []);
    assert.ok(added.served > 0 && load.requests > 0);

    // Observable: /status names the spare, HAProxy's runtime shows the endpoint in it, the log says so.
    const spare = await spareOf(h, "one");
    assert.match(spare ?? "", /^gh_spare_\d+$/);
    const servers = await spareState(h, spare ?? "");
    assert.deepEqual(servers[0], { address: h.backend("one").endpoint, maintenance: false });
    assert.ok(servers.slice(1).every((s) => s.maintenance));
    assert.ok(h.logs.some((l) => l.includes(`${spare ?? ""} serves service/default/one/80`)));
  });

  test("one Service leaves and another arrives in one change: a different spare, no failed request", async () => {
    const h = harness();
    const reloads = await h.masterReloads();
    const freed = await spareOf(h, "one");
    assert.ok(freed !== undefined);
    const traffic = steady(h);
    const removing = disappearing(h, "one.test", "one");
    const adding = appearing(h, "two.test", "two");
    await new Promise((r) => setTimeout(r, 50));
    // One file replaced by another Service and route: one update (one rename).
    const applied = await h.write({ "one.yaml": routeWithService(h, "two", "two") });
    await h.waitFor(
      "two.test served",
      async () => (await h.get("/", { host: "two.test" })).echo?.backend === "two",
    );
    await h.waitFor("one.test gone", async () => (await h.get("/", { host: "one.test" })).status === 404);
    await new Promise((r) => setTimeout(r, 100));
    const results = [await removing.stop(), await adding.stop(), await traffic.stop()];
    assert.equal(applied.method, "runtime");
    assert.equal(await h.masterReloads(), reloads, "HAProxy reloaded");
    assert.deepEqual(results.flatMap((r) => r.failures).slice(0, 10), []);
    const taken = await spareOf(h, "two");
    assert.ok(taken !== undefined && taken !== freed, `${taken ?? "none"} after ${freed}`);
    // The freed spare's servers left rotation.
    assert.ok((await spareState(h, freed)).every((s) => s.maintenance));
  });

  test("repeated Service churn under load stays on the runtime API", async () => {
    const h = harness();
    const reloads = await h.masterReloads();
    const traffic = steady(h);
    const methods: string[] = [];
    for (let i = 0; i < 6; i++) {
      const name = `churn${i}`;
      const adding = appearing(h, `${name}.test`, "three");
      const applied = await h.write({ [`${name}.yaml`]: routeWithService(h, name, "three") });
      methods.push(applied.method ?? "?");
      await h.waitFor(
        `${name}.test served`,
        async () => (await h.get("/", { host: `${name}.test` })).status === 200,
      );
      const added = await adding.stop();
      assert.deepEqual(added.failures.slice(0, 5), [], name);
      if (i % 2 === 1) {
        const previous = `churn${i - 1}`;
        const removing = disappearing(h, `${previous}.test`, "three");
        methods.push((await h.write({ [`${previous}.yaml`]: null })).method ?? "?");
        await h.waitFor(
          `${previous}.test gone`,
          async () => (await h.get("/", { host: `${previous}.test` })).status === 404,
        );
        assert.deepEqual((await removing.stop()).failures.slice(0, 5), [], previous);
      }
    }
    const load = await traffic.stop();
    assert.deepEqual(load.failures.slice(0, 10), []);
    assert.deepEqual(new Set(methods), new Set(["runtime"]), methods.join(" "));
    assert.equal(await h.masterReloads(), reloads);
  });

  test("a reload compacts: Services get their own backends and every spare is free again", async () => {
    const h = harness();
    assert.ok((await spareOf(h, "two")) !== undefined);
    const traffic = steady(h);
    // A route with a filter changes the frontend: a reload.
    const applied = await h.write({
      "four.yaml": routeWithService(h, "four", "one", [
        { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "x-four", value: "1" }] } },
      ]),
    });
    assert.equal(applied.method, "reload");
    const load = await traffic.stop();
    assert.deepEqual(load.failures.slice(0, 10), []);
    assert.deepEqual((await h.status()).dataplane.spares, {});
    const config = await readFile(join(h.stateDir, "haproxy.cfg"), "utf8");
    assert.match(config, /^backend service:default:two:80$/m);
    assert.match(config, /^backend service:default:four:80$/m);
    for (const section of config.split("\n\n").filter((s) => s.startsWith("backend gh_spare_")))
      assert.doesNotMatch(section, /^ {2}server s\d+ (?!0\.0\.0\.0:0 disabled)/m, section);
    assert.equal((await h.get("/", { host: "two.test" })).echo?.backend, "two");
    assert.equal((await h.get("/", { host: "four.test" })).echo?.backend, "one");
    assert.equal((await h.get("/", { host: "one.test" })).status, 404);
  });

  test("a spare freed by one change and taken by the next serves the new Service, on the same connection", async () => {
    const h = harness();
    // After the reload of the previous test every spare is free.
    assert.equal((await h.write({ "x1.yaml": routeWithService(h, "x1", "one") })).method, "runtime");
    const spare = await spareOf(h, "x1");
    assert.ok(spare !== undefined);
    const agent = keepAliveAgent();
    try {
      const get = (host: string) => request({ address: h.ip, port: h.port, host, path: "/", agent });
      assert.equal((await get("x1.test")).echo?.backend, "one");
      assert.equal((await h.write({ "x1.yaml": null })).method, "runtime");
      assert.equal((await h.write({ "x2.yaml": routeWithService(h, "x2", "two") })).method, "runtime");
      assert.equal(await spareOf(h, "x2"), spare, "the freed spare was taken again");
      // HAProxy must not reuse the server connection made for the previous Service's endpoint.
      for (let i = 0; i < 5; i++) assert.equal((await get("x2.test")).echo?.backend, "two");
    } finally {
      agent.destroy();
    }
  });

  test("more new Services than free spares: one reload, and all of them serve", async () => {
    const h = harness();
    const files: Record<string, string> = {};
    for (let i = 0; i < 20; i++) files[`many${i}.yaml`] = routeWithService(h, `many${i}`, "three");
    const applied = await h.write(files);
    assert.equal(applied.method, "reload");
    for (let i = 0; i < 20; i++)
      assert.equal((await h.get("/", { host: `many${i}.test` })).echo?.backend, "three", `many${i}`);
  });
});
