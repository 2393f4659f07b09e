import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "node:http";
import { after, describe, test } from "node:test";
import { Worker } from "node:worker_threads";
import { UsageError } from "../errors.ts";
import { createMetrics } from "../observability/metrics.ts";
import { AdminServer, AdminServerError, parseAdminAddress, startAdminServer } from "./server.ts";
import type { AdminServerOptions } from "./server.ts";
import { AdminStateStore } from "./state.ts";
import type { AdminState, Readiness } from "./state.ts";
import { irWithKey, keysOf } from "./testing.ts";

class FakeState implements AdminState {
  readiness: Readiness = { ready: false, reason: "no configuration loaded yet" };
  document: unknown = { objects: [{ kind: "Gateway", metadata: { name: "gw" }, status: {} }] };
  ir: unknown = undefined;
  ready(): Readiness {
    return this.readiness;
  }
  status(): unknown {
    return this.document;
  }
  config(): unknown {
    return this.ir;
  }
}

const servers: Array<{ close(): unknown }> = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function start(options: Partial<AdminServerOptions> = {}) {
  const state = new FakeState();
  const errors: string[] = [];
  const server = await startAdminServer({
    state,
    host: "127.0.0.1",
    port: 0,
    onError: (message) => errors.push(message),
    ...options,
  });
  servers.push(server);
  const url = server.address?.url ?? assert.fail("no address");
  const get = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${url}${path}`, init);
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
  return { server, state, errors, url, get };
}

/** A stand-in for HAProxy's Prometheus exporter. */
async function fakeExporter(status: number, body: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_request, response) => {
    response.writeHead(status, { "Content-Type": "text/plain; version=0.0.4" });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push({ close: () => new Promise((resolve) => server.close(resolve)) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, server };
}

describe("admin server", () => {
  test("listens on 127.0.0.1 with an ephemeral port", async () => {
    const { server } = await start();
    assert.equal(server.address?.host, "127.0.0.1");
    assert.ok((server.address?.port ?? 0) > 0);
    assert.match(server.address?.url ?? "", /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test("/healthz is 200", async () => {
    const { get } = await start();
    const response = await get("/healthz");
    assert.equal(response.status, 200);
    assert.equal(response.text, "ok\n");
  });

  test("/ready is 503 with the reason until ready, then 200", async () => {
    const { get, state } = await start();
    let response = await get("/ready");
    assert.equal(response.status, 503);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepEqual(JSON.parse(response.text), { ready: false, reason: "no configuration loaded yet" });
    state.readiness = { ready: true };
    response = await get("/ready");
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.text), { ready: true });
  });

  test("/status serves the state's document as JSON", async () => {
    const { get, state } = await start();
    const response = await get("/status");
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.text), state.document);
    assert.equal(response.headers.get("cache-control"), "no-store");
  });

  test("/config is 503 until a configuration is in effect, then the IR", async () => {
    const { get, state } = await start();
    assert.equal((await get("/config")).status, 503);
    state.ir = { gateways: [], backends: [] };
    const response = await get("/config?pretty=1");
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.text), { gateways: [], backends: [] });
  });

  test("/metrics serves our registry in the Prometheus text format", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.reloads.inc({ result: "success" });
    const { get } = await start({ registry: metrics.registry });
    const response = await get("/metrics");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(response.text, /^# HELP gatehouse_/m);
    assert.match(response.text, /gatehouse_reloads_total\{result="success"\} 1/);
  });

  test("/metrics is 404 without a registry", async () => {
    const { get } = await start();
    assert.equal((await get("/metrics")).status, 404);
  });

  test("/metrics/haproxy proxies HAProxy's exporter", async () => {
    const exporter = await fakeExporter(200, "haproxy_process_nbthread 4\n");
    const { get } = await start({ haproxyMetricsUrl: exporter.url });
    const response = await get("/metrics/haproxy");
    assert.equal(response.status, 200);
    assert.equal(response.text, "haproxy_process_nbthread 4\n");
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  });

  test("/metrics/haproxy is 502 when the exporter fails or cannot be reached, 404 when not configured", async () => {
    const failing = await fakeExporter(500, "oops");
    let t = await start({ haproxyMetricsUrl: failing.url });
    let response = await t.get("/metrics/haproxy");
    assert.equal(response.status, 502);
    assert.match(response.text, /answered 500/);

    // A port that was just free: nothing listens there.
    const closed = await fakeExporter(200, "");
    await new Promise((resolve) => closed.server.close(resolve));
    t = await start({ haproxyMetricsUrl: closed.url });
    response = await t.get("/metrics/haproxy");
    assert.equal(response.status, 502);
    assert.match(response.text, /cannot reach the HAProxy metrics exporter/);
    assert.equal(t.errors.length, 1);

    t = await start();
    assert.equal((await t.get("/metrics/haproxy")).status, 404);
  });

  test("unknown paths are 404 and list the endpoints", async () => {
    const { get } = await start();
    for (const path of ["/nope", "/ready/", "/metrics/other", "/ui/", "/ui/other.js", "/index.html"]) {
      const response = await get(path);
      assert.equal(response.status, 404, path);
      assert.ok((JSON.parse(response.text) as { endpoints: string[] }).endpoints.includes("/ready"));
    }
  });

  test("/ serves the dashboard page, its script and style (static, no state in them)", async () => {
    const { get } = await start();
    const page = await get("/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
    assert.match(page.text, /<script src="\/ui\/app\.js"/);
    assert.match((await get("/ui/app.js")).headers.get("content-type") ?? "", /^text\/javascript/);
    assert.match((await get("/ui/app.css")).headers.get("content-type") ?? "", /^text\/css/);
    assert.equal((await get("/", { method: "POST" })).status, 404);
  });

  test("methods other than GET and HEAD are 405", async () => {
    const { get } = await start();
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const response = await get("/ready", { method });
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get("allow"), "GET, HEAD");
    }
    const head = await get("/healthz", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
  });

  test("a state that throws gives 500 and is reported", async () => {
    const { get, state, errors } = await start();
    state.status = () => {
      throw new Error("bug");
    };
    const response = await get("/status");
    assert.equal(response.status, 500);
    assert.deepEqual(JSON.parse(response.text), { error: "internal error" });
    assert.equal(errors.length, 1);
  });

  test("a bad request line does not bring the server down", async () => {
    const { url, get } = await start();
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(`${url}/ready`, { method: "GET", headers: { "content-length": "x" } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 400);
    assert.equal((await get("/healthz")).status, 200);
  });

  test("an address in use is an AdminServerError", async () => {
    const { server } = await start();
    const second = new AdminServer({
      state: new FakeState(),
      host: "127.0.0.1",
      port: server.address?.port ?? 0,
    });
    await assert.rejects(second.listen(), (error: unknown) => {
      assert.ok(error instanceof AdminServerError);
      assert.match(error.message, /cannot listen on 127\.0\.0\.1:\d+/);
      return true;
    });
    await second.close();
  });

  test("close stops serving, even with keep-alive connections open", async () => {
    const { server, get, url } = await start();
    assert.equal((await get("/healthz")).status, 200);
    await server.close();
    await assert.rejects(fetch(`${url}/healthz`));
  });
});

describe("parseAdminAddress", () => {
  test("accepts host:port forms", () => {
    assert.deepEqual(parseAdminAddress("127.0.0.1:9901"), { host: "127.0.0.1", port: 9901 });
    assert.deepEqual(parseAdminAddress("0.0.0.0:0"), { host: "0.0.0.0", port: 0 });
    assert.deepEqual(parseAdminAddress("[::1]:9901"), { host: "::1", port: 9901 });
    assert.deepEqual(parseAdminAddress("localhost:8080"), { host: "localhost", port: 8080 });
    assert.deepEqual(parseAdminAddress(":9902"), { host: "127.0.0.1", port: 9902 });
    assert.deepEqual(parseAdminAddress("9903"), { host: "127.0.0.1", port: 9903 });
  });

  test("rejects anything else", () => {
    for (const value of ["", "host", "host:", "host:70000", "::1:9901", "a:b:1", "1.2.3.4:-1"]) {
      assert.throws(() => parseAdminAddress(value), UsageError, value);
    }
  });
});

describe("admin server authentication", () => {
  const TOKEN = "s3cret-token-0123456789";

  test("with a token, every path but /healthz and /ready needs it", async () => {
    const { get, state } = await start({ token: TOKEN });
    state.ir = { gateways: [], backends: [] };
    assert.equal((await get("/healthz")).status, 200);
    assert.equal((await get("/ready")).status, 503, "open, and answering the readiness");
    for (const path of ["/status", "/config", "/metrics", "/metrics/haproxy"]) {
      const denied = await get(path);
      assert.equal(denied.status, 401, path);
      assert.match(denied.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.equal((await get(path, { headers: { Authorization: `Bearer ${TOKEN}x` } })).status, 401, path);
    }
    const allowed = await get("/status", { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(allowed.status, 200);
    assert.equal((await get("/config", { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
  });

  test("a rotated token replaces the old one", async () => {
    const { get, server } = await start({ token: TOKEN });
    server.setToken(`${TOKEN}-new`);
    await server.refresh();
    const old = await get("/status", { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(old.status, 401);
    const fresh = await get("/status", { headers: { Authorization: `Bearer ${TOKEN}-new` } });
    assert.equal(fresh.status, 200);
  });

  test("a non-loopback address needs a token or the explicit opt-out", async () => {
    const refused = new AdminServer({ state: new FakeState(), host: "0.0.0.0", port: 0 });
    await assert.rejects(refused.listen(), (error: unknown) => {
      assert.ok(error instanceof AdminServerError);
      assert.match(error.message, /reachable from other hosts.*--admin-token-file/);
      return true;
    });
    for (const options of [{ token: TOKEN }, { allowUnauthenticated: true }]) {
      const server = new AdminServer({ state: new FakeState(), host: "0.0.0.0", port: 0, ...options });
      servers.push(server);
      const address = await server.listen();
      assert.equal((await fetch(`http://127.0.0.1:${address.port}/healthz`)).status, 200);
    }
  });
});

describe("admin server, no key material", () => {
  test("/config shows fingerprints, and no response carries a private key", async () => {
    const ir = await irWithKey();
    const key = keysOf(ir)[0] ?? assert.fail("no key");
    const store = new AdminStateStore();
    store.setInput({ generation: 1, errors: [], warnings: [] });
    store.recordApply(1, ir, { ok: false, error: new Error(`haproxy said: ${key}`) });
    store.recordProcessEvent(`crashed near ${key}`);
    store.recordApply(1, ir, { ok: true, method: "start" });
    const server = await startAdminServer({ state: store, host: "127.0.0.1", port: 0 });
    servers.push(server);
    const url = server.address?.url ?? assert.fail("no address");
    const config = await (await fetch(`${url}/config`)).text();
    assert.match(config, /"keySha256": "sha256:[0-9a-f]{64}"/);
    assert.match(config, /BEGIN CERTIFICATE/);
    for (const path of ["/config", "/status", "/ready"]) {
      const text = await (await fetch(`${url}${path}`)).text();
      assert.doesNotMatch(text, /PRIVATE KEY/, path);
    }
  });
});

describe("admin server, main thread busy", () => {
  // The client runs in a worker thread of its own, so that this thread can block completely (as a
  // long translation does) while the client asks. The proof is the order of events: the client's
  // answers arrive while this thread is still blocked in Atomics.wait.
  test("health, readiness, status and metrics are answered while the main thread is blocked", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.reloads.inc({ result: "success" });
    const store = new AdminStateStore();
    store.setInput({ generation: 1, errors: [], warnings: [] });
    store.recordApply(1, { gateways: [], backends: [] }, { ok: true, method: "start" });
    const server = await startAdminServer({
      state: store,
      registry: metrics.registry,
      host: "127.0.0.1",
      port: 0,
    });
    servers.push(server);
    await server.refresh();
    const url = server.address?.url ?? assert.fail("no address");
    const shared = new Int32Array(new SharedArrayBuffer(4 * 9));
    const client = new Worker(
      `const { workerData } = require("node:worker_threads");
       (async () => {
         const { url, shared } = workerData;
         Atomics.wait(shared, 0, 0); // until the main thread is about to block
         let i = 1;
         for (const path of ["/healthz", "/ready", "/status", "/metrics"]) {
           const response = await fetch(url + path);
           const text = await response.text();
           shared[i++] = response.status;
           shared[i++] = response.headers.get("x-gatehouse-snapshot-age") === null ? 0 : 1;
           if (path === "/metrics" && !text.includes("gatehouse_reloads_total")) shared[i - 1] = -1;
         }
         Atomics.store(shared, 0, 2);
         Atomics.notify(shared, 0);
       })();`,
      { eval: true, workerData: { url, shared } },
    );
    try {
      await new Promise((resolve) => client.once("online", resolve));
      Atomics.store(shared, 0, 1);
      Atomics.notify(shared, 0);
      // Blocks this thread until the client is done (or 30 s: then the admin server did not answer).
      const outcome = Atomics.wait(shared, 0, 1, 30_000);
      assert.equal(outcome, "ok", "the client got every answer while the main thread was blocked");
      const [, ...answers] = [...shared];
      // Status codes, and whether the answer came from the cached snapshot (it must: no fresh one
      // could be had); /metrics: -1 when the cached text lacked our series.
      assert.deepEqual(answers, [200, 0, 200, 1, 200, 1, 200, 1]);
    } finally {
      await client.terminate();
    }
  });
});
