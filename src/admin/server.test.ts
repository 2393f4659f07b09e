import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "node:http";
import { after, describe, test } from "node:test";
import { UsageError } from "../errors.ts";
import { createMetrics } from "../observability/metrics.ts";
import { AdminServer, AdminServerError, parseAdminAddress, startAdminServer } from "./server.ts";
import type { AdminServerOptions } from "./server.ts";
import type { AdminState, Readiness } from "./state.ts";

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
    for (const path of ["/", "/nope", "/ready/", "/metrics/other"]) {
      const response = await get(path);
      assert.equal(response.status, 404, path);
      assert.ok((JSON.parse(response.text) as { endpoints: string[] }).endpoints.includes("/ready"));
    }
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
