// ExternalAuth through a real HAProxy, the Gatehouse auth bridge and real authorization services
// (auth-servers.ts): HTTP (path prefix, the fixed and allowed request headers, allowed response
// headers, the service's denial and redirect passed to the client, body forwarding truncated at
// maxSize) and gRPC ext_authz (allowed headers only, headers set/added/removed, denial with the
// service's status, headers and body). Fail closed: a service that is down gets 403 and the backend
// never sees the request; an unresolvable service gets 500. Latency with and without the filter is
// printed (README "ExternalAuth").
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, selfSignedCert, useHarness } from "./harness.ts";
import { startTLSBackend, type TLSBackend } from "./tls-backend.ts";
import { request, keepAliveAgent } from "./client.ts";
import { startGRPCAuth, startHTTPAuth, type AuthServer, type SeenHTTP } from "./auth-servers.ts";
import type { CheckRequest } from "../../src/dataplane/extauth/proto.ts";
import { docs, gateway, gatewayClass, httpRoute, NS, prefix, ref, service, type Obj } from "./resources.ts";

// Started before the harness (its `files` name them): top-level await, not a `before` hook, whose
// order relative to the harness's own hook is not guaranteed.
const httpAuth: AuthServer<SeenHTTP> = await startHTTPAuth("127.0.0.1");
const grpcAuth: AuthServer<CheckRequest> = await startGRPCAuth("127.0.0.1");
const closedPort = await freePort("127.0.0.1");
const tlsDir = await mkdtemp(join(tmpdir(), "gh-extauth-"));
const cert = await selfSignedCert(tlsDir, ["auth.tls.test"]);
const ca = cert.cert;
const otherCa = (await selfSignedCert(tlsDir, ["other.tls.test"])).cert;
// An HTTPS authorization service: allows `Bearer good`, saying so in a header.
const tlsAuth: TLSBackend = await startTLSBackend({ cert: cert.cert, key: cert.key }, (req, res) => {
  req.resume();
  const ok = req.headers.authorization === "Bearer good";
  res.writeHead(ok ? 200 : 403, ok ? { "x-auth-via": "tls" } : {});
  res.end();
});
after(async () => {
  await httpAuth.close();
  await grpcAuth.close();
  await tlsAuth.close();
  await rm(tlsDir, { recursive: true, force: true });
});

const configMap = (name: string, data: Record<string, string>): Obj => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: NS },
  data,
});
const tlsPolicy = (name: string, target: string, caConfigMap: string): Obj => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "BackendTLSPolicy",
  metadata: { name, namespace: NS },
  spec: {
    targetRefs: [{ group: "", kind: "Service", name: target }],
    validation: {
      hostname: "auth.tls.test",
      caCertificateRefs: [{ group: "", kind: "ConfigMap", name: caConfigMap }],
    },
  },
});

const authRule = (externalAuth: Obj): Obj => ({
  matches: [prefix("/")],
  filters: [{ type: "ExternalAuth", externalAuth }],
  backendRefs: [ref("echo")],
});

const harness = useHarness({
  backends: { echo: "http" },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("echo", { endpoints: [h.backend("echo").endpoint] }),
      service("auth-http", { endpoints: [httpAuth.endpoint] }),
      service("auth-grpc", { endpoints: [grpcAuth.endpoint], appProtocol: "kubernetes.io/h2c" }),
      service("auth-down", { endpoints: [`127.0.0.1:${closedPort}`] }),
      service("auth-down-grpc", { endpoints: [`127.0.0.1:${closedPort}`], appProtocol: "kubernetes.io/h2c" }),
      service("auth-tls", { endpoints: [tlsAuth.endpoint] }),
      service("auth-tls-wrong-ca", { endpoints: [tlsAuth.endpoint] }),
      configMap("auth-ca", { "ca.crt": ca }),
      configMap("other-ca", { "ca.crt": otherCa }),
      tlsPolicy("auth-tls", "auth-tls", "auth-ca"),
      tlsPolicy("auth-tls-wrong-ca", "auth-tls-wrong-ca", "other-ca"),
    ),
    "routes.yaml": docs(
      httpRoute("http-auth", {
        hostnames: ["http-auth.test"],
        rules: [
          authRule({
            protocol: "HTTP",
            backendRef: ref("auth-http"),
            http: { path: "/authz/", allowedHeaders: ["X-Allowed"], allowedResponseHeaders: ["x-auth-user"] },
          }),
        ],
      }),
      httpRoute("http-all", {
        hostnames: ["http-all.test"],
        rules: [authRule({ protocol: "HTTP", backendRef: ref("auth-http"), http: {} })],
      }),
      httpRoute("http-body", {
        hostnames: ["http-body.test"],
        rules: [
          authRule({
            protocol: "HTTP",
            backendRef: ref("auth-http"),
            http: {},
            forwardBody: { maxSize: 10 },
          }),
        ],
      }),
      httpRoute("grpc-auth", {
        hostnames: ["grpc-auth.test"],
        rules: [
          authRule({
            protocol: "GRPC",
            backendRef: ref("auth-grpc"),
            grpc: { allowedHeaders: ["authorization", "x-allowed"] },
          }),
        ],
      }),
      httpRoute("down", {
        hostnames: ["down.test"],
        rules: [authRule({ protocol: "HTTP", backendRef: ref("auth-down"), http: {} })],
      }),
      httpRoute("down-grpc", {
        hostnames: ["down-grpc.test"],
        rules: [authRule({ protocol: "GRPC", backendRef: ref("auth-down-grpc"), grpc: {} })],
      }),
      httpRoute("missing", {
        hostnames: ["missing.test"],
        rules: [authRule({ protocol: "HTTP", backendRef: ref("no-such-service"), http: {} })],
      }),
      httpRoute("tls", {
        hostnames: ["tls.test"],
        rules: [authRule({ protocol: "HTTP", backendRef: ref("auth-tls"), http: {} })],
      }),
      httpRoute("tls-wrong-ca", {
        hostnames: ["tls-wrong-ca.test"],
        rules: [authRule({ protocol: "HTTP", backendRef: ref("auth-tls-wrong-ca"), http: {} })],
      }),
      httpRoute("open", { hostnames: ["open.test"], rules: [{ backendRefs: [ref("echo")] }] }),
    ),
  }),
});

const send = (host: string, path: string, headers: Record<string, string> = {}, extra: Obj = {}) =>
  request({ address: harness().ip, port: harness().port, host, path, headers, ...extra });

describe("ExternalAuth, HTTP service", () => {
  test("an allowed request reaches the backend with the allowed response headers only", async () => {
    const before = httpAuth.seen.length;
    const res = await send("http-auth.test", "/some/path?q=1", {
      authorization: "Bearer good",
      "x-allowed": "yes",
      "x-secret": "not for the auth service",
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.echo?.headers["x-auth-user"], ["alice"]);
    assert.equal(res.echo?.headers["x-auth-extra"], undefined, "not in allowedResponseHeaders");
    assert.equal(res.echo?.path, "/some/path");
    const seen = httpAuth.seen.slice(before);
    assert.equal(seen.length, 1);
    const s = seen[0];
    assert.equal(s?.method, "GET");
    assert.equal(s?.url, "/authz/some/path?q=1", "the path prefix, then the request path and query");
    assert.equal(s?.headers.host, "http-auth.test");
    assert.equal(s?.headers.authorization, "Bearer good");
    assert.equal(s?.headers["x-allowed"], "yes");
    assert.equal(s?.headers["content-length"], "0");
    assert.equal(s?.headers["x-secret"], undefined, "headers not allowed are not sent");
  });

  test("with no allowedResponseHeaders, every header of the answer but Host goes to the backend", async () => {
    const res = await send("http-all.test", "/", { authorization: "Bearer good" });
    assert.equal(res.status, 200);
    assert.deepEqual(res.echo?.headers["x-auth-user"], ["alice"]);
    assert.deepEqual(res.echo?.headers["x-auth-extra"], ["not for the backend"]);
    assert.equal(res.echo?.headers["content-length"], undefined, "the auth answer's framing is not copied");
  });

  test("a denied request gets the service's status, headers and body; the backend never sees it", async () => {
    const echoBefore = harness().backend("echo").requests;
    const res = await send("http-auth.test", "/private", { authorization: "Bearer bad" });
    assert.equal(res.status, 401);
    assert.equal(res.headers["www-authenticate"], 'Bearer realm="test"');
    assert.equal(res.body, "denied by http auth");
    const none = await send("http-auth.test", "/private");
    assert.equal(none.status, 401);
    assert.equal(harness().backend("echo").requests, echoBefore);
  });

  test("a redirect of the service reaches the client", async () => {
    const res = await send("http-auth.test", "/", { authorization: "Bearer redirect" });
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, "https://login.test/start");
  });

  test("forwardBody sends at most maxSize bytes with a matching Content-Length", async () => {
    const before = httpAuth.seen.length;
    const body = "0123456789ABCDEF";
    const res = await send(
      "http-body.test",
      "/upload",
      { authorization: "Bearer good" },
      { method: "POST", body },
    );
    assert.equal(res.status, 200);
    const s = httpAuth.seen.slice(before)[0];
    assert.equal(s?.method, "POST");
    assert.equal(s?.body, "0123456789");
    assert.equal(s?.headers["content-length"], "10");
    assert.equal(res.echo?.method, "POST");
  });
});

describe("ExternalAuth, gRPC ext_authz service", () => {
  test("an allowed request gets the service's headers set, added and removed", async () => {
    const before = grpcAuth.seen.length;
    const res = await send("grpc-auth.test", "/api/items?x=1", {
      authorization: "Bearer good",
      "x-allowed": "yes",
      "x-secret": "not for the auth service",
      "x-remove-me": "gone",
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.echo?.headers["x-auth-user"], ["grpc-alice"]);
    assert.deepEqual(res.echo?.headers["x-auth-group"], ["a", "b"]);
    assert.equal(res.echo?.headers["x-remove-me"], undefined);
    const s = grpcAuth.seen.slice(before)[0];
    assert.ok(s !== undefined);
    assert.equal(s.method, "GET");
    assert.equal(s.path, "/api/items?x=1");
    assert.equal(s.host, "grpc-auth.test");
    assert.equal(s.scheme, "http");
    assert.deepEqual(Object.keys(s.headers).sort(), ["authorization", "x-allowed"]);
  });

  test("a denied request gets the service's status, headers and body", async () => {
    const echoBefore = harness().backend("echo").requests;
    const res = await send("grpc-auth.test", "/", { authorization: "Bearer bad" });
    assert.equal(res.status, 401);
    assert.equal(res.headers["www-authenticate"], "Bearer grpc");
    assert.equal(res.body, "denied by grpc auth");
    assert.equal(harness().backend("echo").requests, echoBefore);
  });
});

describe("ExternalAuth over TLS (BackendTLSPolicy on the service)", () => {
  test("the policy's CA and hostname verify the service; a certificate that does not verify fails closed", async () => {
    const ok = await send("tls.test", "/", { authorization: "Bearer good" });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.echo?.headers["x-auth-via"], ["tls"]);
    assert.equal((await send("tls.test", "/", { authorization: "Bearer bad" })).status, 403);
    const echoBefore = harness().backend("echo").requests;
    assert.equal((await send("tls-wrong-ca.test", "/", { authorization: "Bearer good" })).status, 403);
    assert.equal(harness().backend("echo").requests, echoBefore);
  });
});

describe("ExternalAuth fails closed", () => {
  test("an HTTP or gRPC service that is down: 403, the backend never sees the request", async () => {
    const echoBefore = harness().backend("echo").requests;
    for (const host of ["down.test", "down-grpc.test"]) {
      const res = await send(host, "/", { authorization: "Bearer good" });
      assert.equal(res.status, 403, host);
    }
    assert.equal(harness().backend("echo").requests, echoBefore);
  });

  test("a service that cannot be resolved: 500", async () => {
    const res = await send("missing.test", "/", { authorization: "Bearer good" });
    assert.equal(res.status, 500);
  });
});

describe("ExternalAuth latency", () => {
  test("added latency per request (printed)", async () => {
    const agent = keepAliveAgent();
    const measure = async (host: string, n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = process.hrtime.bigint();
        const res = await send(host, "/", { authorization: "Bearer good" }, { agent });
        assert.equal(res.status, 200);
        out.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      return out.sort((a, b) => a - b);
    };
    const pct = (xs: number[], p: number): string =>
      (xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? 0).toFixed(2);
    await measure("open.test", 50);
    const open = await measure("open.test", 400);
    const http = await measure("http-all.test", 400);
    const grpc = await measure("grpc-auth.test", 400);
    agent.destroy();
    process.stdout.write(
      `# latency ms p50/p99: no auth ${pct(open, 0.5)}/${pct(open, 0.99)}, HTTP auth ${pct(http, 0.5)}/${pct(http, 0.99)}, gRPC auth ${pct(grpc, 0.5)}/${pct(grpc, 0.99)}\n`,
    );
  });
});
