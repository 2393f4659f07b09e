import assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { GatehouseError } from "../../errors.ts";
import { HttpKubeApi, KubeApiError, loadKubeConfig, statusCodeOf } from "./client.ts";
import { resourcePath } from "./resources.ts";

function kubeconfigYaml(server: string, token = "t0ken"): string {
  return `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: ${token}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;
}

describe("HttpKubeApi", () => {
  let server: Server;
  let url = "";
  const seen: Array<{
    method: string;
    url: string;
    auth: string | undefined;
    type: string | undefined;
    body: string;
  }> = [];
  before(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({
          method: req.method ?? "",
          url: req.url ?? "",
          auth: req.headers.authorization,
          type: req.headers["content-type"],
          body,
        });
        if (req.url?.startsWith("/conflict")) {
          res.writeHead(409, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              kind: "Status",
              status: "Failure",
              reason: "Conflict",
              message: "the object has been modified",
            }),
          );
        } else if (req.url === "/text") {
          res.end("ok");
        } else if (req.url === "/slow") {
          setTimeout(() => res.end("{}"), 2000);
        } else {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ echo: req.url }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const api = () => {
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml(url));
    return new HttpKubeApi(kc, { timeoutMs: 500 });
  };

  test("sends the bearer token and query parameters; parses JSON", async () => {
    const answer = await api().request<{ echo: string }>("GET", "/api/v1/services", undefined, {
      query: { limit: 5, continue: undefined, labelSelector: "a=b" },
    });
    assert.equal(answer.echo, "/api/v1/services?limit=5&labelSelector=a%3Db");
    assert.equal(seen.at(-1)?.auth, "Bearer t0ken");
  });

  test("bodies are JSON; PATCH defaults to merge-patch", async () => {
    await api().request("PUT", "/x", { a: 1 });
    assert.equal(seen.at(-1)?.type, "application/json");
    assert.equal(seen.at(-1)?.body, '{"a":1}');
    await api().request("PATCH", "/x", { a: 2 });
    assert.equal(seen.at(-1)?.type, "application/merge-patch+json");
  });

  test("error answers become KubeApiError with statusCode and reason", async () => {
    await assert.rejects(api().request("PUT", "/conflict", {}), (e: unknown) => {
      assert.ok(e instanceof KubeApiError && e instanceof GatehouseError);
      assert.equal(e.statusCode, 409);
      assert.equal(e.reason, "Conflict");
      assert.ok(e.conflict);
      assert.match(e.message, /PUT \/conflict: 409 the object has been modified/);
      assert.equal(statusCodeOf(e), 409);
      return true;
    });
  });

  test("non-JSON answers are returned as text", async () => {
    assert.equal(await api().request("GET", "/text"), "ok");
  });

  test("no answer within the timeout, or no server: KubeApiError without a status code", async () => {
    await assert.rejects(
      api().request("GET", "/slow"),
      (e: unknown) => e instanceof KubeApiError && e.statusCode === undefined,
    );
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml("http://127.0.0.1:1"));
    await assert.rejects(
      new HttpKubeApi(kc).request("GET", "/"),
      (e: unknown) => e instanceof KubeApiError && e.statusCode === undefined,
    );
  });
});

describe("loadKubeConfig", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gatehouse-kubeconfig-"));
    await writeFile(join(dir, "flag"), kubeconfigYaml("https://flag.example:6443"));
    await writeFile(join(dir, "env"), kubeconfigYaml("https://env.example:6443"));
    await mkdir(join(dir, "home", ".kube"), { recursive: true });
    await writeFile(join(dir, "home", ".kube", "config"), kubeconfigYaml("https://home.example:6443"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const server = (r: ReturnType<typeof loadKubeConfig>) => r.config.getCurrentCluster()?.server;

  test("--kubeconfig wins, then $KUBECONFIG, then ~/.kube/config", () => {
    const env = { KUBECONFIG: join(dir, "env") };
    assert.equal(
      server(loadKubeConfig({ path: join(dir, "flag"), env, home: join(dir, "home") })),
      "https://flag.example:6443",
    );
    assert.equal(server(loadKubeConfig({ env, home: join(dir, "home") })), "https://env.example:6443");
    assert.equal(server(loadKubeConfig({ env: {}, home: join(dir, "home") })), "https://home.example:6443");
  });

  test("nothing available: a GatehouseError that says what to do", () => {
    assert.throws(
      () => loadKubeConfig({ env: {}, home: join(dir, "nowhere") }),
      (e: unknown) => {
        assert.ok(e instanceof GatehouseError);
        assert.match(e.message, /--kubeconfig PATH, set KUBECONFIG, or run in a cluster/);
        return true;
      },
    );
  });

  test("an unreadable file: a GatehouseError", () => {
    assert.throws(() => loadKubeConfig({ path: join(dir, "missing") }), GatehouseError);
  });
});

test("resourcePath", () => {
  assert.equal(resourcePath({ group: "", version: "v1", plural: "services" }), "/api/v1/services");
  assert.equal(
    resourcePath(
      { group: "gateway.networking.k8s.io", version: "v1", plural: "httproutes" },
      { namespace: "a b", name: "r", subresource: "status" },
    ),
    "/apis/gateway.networking.k8s.io/v1/namespaces/a%20b/httproutes/r/status",
  );
});
