// Header session persistence (sessionPersistence.type Header) through a real HAProxy: the first
// response carries the session header; requests presenting it stick to one endpoint across many
// requests (also across weighted backendRefs); sessions without it spread over the endpoints; when
// the endpoint is gone the request is balanced and gets a new session; an absolute timeout ends the
// session on time.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { useHarness } from "./harness.ts";
import { keepAliveAgent, request, type Response } from "./client.ts";
import { docs, gateway, gatewayClass, httpRoute, prefix, ref, service } from "./resources.ts";

const harness = useHarness({
  backends: { e1: "http", e2: "http", e3: "http", other: "http" },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("three", { endpoints: ["e1", "e2", "e3"].map((n) => h.backend(n).endpoint) }),
      service("other", { endpoints: [h.backend("other").endpoint] }),
    ),
    "routes.yaml": docs(
      httpRoute("sticky", {
        hostnames: ["sticky.test"],
        rules: [
          {
            matches: [prefix("/")],
            sessionPersistence: { type: "Header", sessionName: "X-Session" },
            backendRefs: [ref("three")],
          },
        ],
      }),
      httpRoute("weighted", {
        hostnames: ["weighted.test"],
        rules: [
          {
            matches: [prefix("/")],
            sessionPersistence: { type: "Header", sessionName: "X-Session" },
            backendRefs: [ref("three", { weight: 50 }), ref("other", { weight: 50 })],
          },
        ],
      }),
      httpRoute("expiring", {
        hostnames: ["expiring.test"],
        rules: [
          {
            matches: [prefix("/")],
            sessionPersistence: { type: "Header", sessionName: "X-Session", absoluteTimeout: "1s" },
            backendRefs: [ref("three")],
          },
        ],
      }),
    ),
  }),
});

const agent = keepAliveAgent();
const send = (host: string, session?: string): Promise<Response> =>
  request({
    address: harness().ip,
    port: harness().port,
    host,
    agent,
    ...(session !== undefined ? { headers: { "x-session": session } } : {}),
  });
const tokenOf = (res: Response): string => {
  const t = res.headers["x-session"];
  assert.equal(typeof t, "string", "the response carries the session header");
  return t as string;
};

describe("header session persistence", () => {
  test("the first response starts a session; requests presenting it stick to one endpoint", async () => {
    const first = await send("sticky.test");
    assert.equal(first.status, 200);
    const token = tokenOf(first);
    const backend = first.echo?.backend;
    for (let i = 0; i < 60; i++) {
      const res = await send("sticky.test", token);
      assert.equal(res.echo?.backend, backend, `request ${i}`);
      assert.equal(tokenOf(res), token, "the session is kept");
    }
  });

  test("sessions without the header spread over the endpoints", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add((await send("sticky.test")).echo?.backend ?? "");
    assert.ok(seen.size >= 2, `new sessions went to ${[...seen].join(", ")}`);
  });

  test("sessions stick across weighted backendRefs", async () => {
    const backends = new Set<string>();
    for (let s = 0; s < 8; s++) {
      const first = await send("weighted.test");
      const token = tokenOf(first);
      backends.add(first.echo?.backend ?? "");
      for (let i = 0; i < 20; i++)
        assert.equal((await send("weighted.test", token)).echo?.backend, first.echo?.backend);
    }
    assert.ok(backends.size >= 2, "different sessions chose different backends");
  });

  test("a forged or foreign session is balanced and replaced", async () => {
    const res = await send("sticky.test", "nothing.s1");
    assert.equal(res.status, 200);
    assert.notEqual(tokenOf(res), "nothing.s1");
  });

  test("an absolute timeout ends the session", async () => {
    const first = await send("expiring.test");
    const token = tokenOf(first);
    assert.equal(token.split(".").length, 3, "the token carries its expiry");
    assert.equal(tokenOf(await send("expiring.test", token)), token, "kept while it lives");
    await sleep(2100);
    const later = await send("expiring.test", token);
    assert.notEqual(tokenOf(later), token, "a new session after the absolute timeout");
  });

  test("when the session's endpoint is gone, the request goes elsewhere with a new session; other sessions stay", async () => {
    const h = harness();
    const sessions = new Map<string, string>();
    for (let i = 0; i < 200 && sessions.size < 3; i++) {
      const res = await send("sticky.test");
      sessions.set(res.echo?.backend ?? "", tokenOf(res));
    }
    assert.equal(sessions.size, 3, "a session on every endpoint");
    // The endpoint in the first server slot goes (endpoints are sorted: same address, lowest port);
    // the others keep their slots (render/slots.ts) and their sessions, through the runtime API.
    const names = ["e1", "e2", "e3"].sort((a, b) => h.backend(a).port - h.backend(b).port);
    const [gone = "", ...left] = names;
    const applied = await h.write({
      "gateway.yaml": docs(
        gatewayClass(),
        gateway("gw", h.ip, [{ name: "http", port: h.port }]),
        service("three", { endpoints: left.map((n) => h.backend(n).endpoint) }),
        service("other", { endpoints: [h.backend("other").endpoint] }),
      ),
    });
    assert.equal(applied.method, "runtime");
    for (const name of left) {
      const token = sessions.get(name) ?? "";
      for (let i = 0; i < 10; i++) {
        const res = await send("sticky.test", token);
        assert.equal(res.echo?.backend, name, `the session on ${name} stays`);
        assert.equal(tokenOf(res), token);
      }
    }
    const res = await send("sticky.test", sessions.get(gone));
    assert.equal(res.status, 200);
    assert.ok(left.includes(res.echo?.backend ?? ""), `went to ${res.echo?.backend}`);
    const next = tokenOf(res);
    assert.notEqual(next, sessions.get(gone));
    for (let i = 0; i < 20; i++)
      assert.equal((await send("sticky.test", next)).echo?.backend, res.echo?.backend);
    agent.destroy();
  });
});
