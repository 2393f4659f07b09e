// Integration tests against a REAL kube-apiserver (+ etcd) with the Gateway API v1.6.1 CRDs. The
// controller side always runs as the ServiceAccount of deploy/rbac.yaml (token from the TokenRequest
// API), so these tests also prove that the RBAC manifests grant enough. Skipped, with the reason,
// when the binaries (conformance/scripts/build.sh) or the CRDs (Go module cache) are unavailable.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { startController, type ControllerHandle } from "../../cli/controller.ts";
import { FakeBinder } from "../../infra/host/binder.ts";
import { HostInfrastructure } from "../../infra/host/host.ts";
import { AddressPool } from "../../infra/host/pool.ts";
import { createLogger } from "../../observability/logger.ts";
import { EventRecorder } from "../../observability/events.ts";
import { DEFAULT_LEASE_NAME, LeaderElector } from "../../status/leader.ts";
import type { Condition } from "../../status/types.ts";
import { ManualClock, systemClock } from "../clock.ts";
import { providerContract } from "../contract.ts";
import type { ProviderUpdate } from "../types.ts";
import { describeError, HttpKubeApi, type HttpMethod, type KubeApi, type RequestOptions } from "./client.ts";
import { MetadataWatch } from "./metawatch.ts";
import { KubernetesProvider, type WatchLike } from "./provider.ts";
import { permissions } from "./resources.ts";
import {
  apiServerSkipReason,
  gatewayApiCrdDir,
  installCrds,
  REPO,
  startTestApiServer,
  yamlObjects,
  type TestApiServer,
} from "./testing/apiserver.ts";

const skip = apiServerSkipReason();
const CONTROLLER = "gatehouse.dev/gateway-controller";
const OTHER = "example.com/other-controller";
const GW = "/apis/gateway.networking.k8s.io/v1";

let server: TestApiServer | undefined;
/** A kubeconfig for the ServiceAccount gatehouse-system/gatehouse (deploy/rbac.yaml). */
let controllerConfig: KubeConfig | undefined;

function srv(): TestApiServer {
  assert.ok(server !== undefined, "API server not started");
  return server;
}
function cfg(): KubeConfig {
  assert.ok(controllerConfig !== undefined);
  return controllerConfig;
}

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      assert.fail(`timed out waiting for ${what}${last === undefined ? "" : `: ${describeError(last)}`}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const silentLog = { info: () => undefined, warn: () => undefined };

/**
 * What RBAC sees of a request: `scope group/resource verb name` (name only where rules limit by
 * name: the Lease), or undefined for discovery and health paths, which every client may use.
 */
function rbacGrant(verb: string, path: string): string | undefined {
  const m =
    /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/[^/]+)?\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(
      path.split("?")[0] ?? "",
    );
  if (m === null) return undefined;
  const [, group = "", plural = "", name, sub] = m;
  if (plural === "namespaces" && name !== undefined && sub !== undefined) return undefined; // not used
  const resource = sub === undefined ? plural : `${plural}/${sub}`;
  const v = verb === "GET" ? (name === undefined ? "list" : "get") : verb;
  const scope = group === "coordination.k8s.io" ? "lease" : "cluster";
  const named = scope === "lease" && name !== undefined && v !== "create" ? name : "*";
  return `${scope} ${group || "core"}/${resource} ${v} ${named}`;
}

const VERBS: Record<string, string> = { POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" };

/** Every grant the controller's requests needed (see rbacGrant), to compare with the RBAC rules. */
const used = new Set<string>();

/**
 * The controller's API client, seen from outside: counts status writes (converged status is not
 * rewritten), records the RBAC grant of every request, and can make one status write conflict (the
 * object changes just before it), so the writer's re-read after a 409 runs too.
 */
class RecordingApi implements KubeApi {
  readonly inner: KubeApi;
  puts: string[] = [];
  /** Paths of every GET. */
  paths: string[] = [];
  /** The next PUT to a path ending so first sees the object change under it (once). */
  conflictOnce: { suffix: string; touch: () => Promise<void> } | undefined;
  constructor(inner: KubeApi) {
    this.inner = inner;
  }
  async request<T>(method: HttpMethod, path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    const grant = rbacGrant(method === "GET" ? "GET" : (VERBS[method] ?? method), path);
    if (grant !== undefined) used.add(grant);
    if (method === "PUT" && path.endsWith("/status")) this.puts.push(path);
    if (method === "GET") this.paths.push(path);
    const conflict = this.conflictOnce;
    if (method === "PUT" && conflict !== undefined && path.endsWith(conflict.suffix)) {
      this.conflictOnce = undefined;
      await conflict.touch();
    }
    return this.inner.request<T>(method, path, body, options);
  }
}

/** The controller's watches, recorded the same way. */
function recordingWatch(inner: WatchLike): WatchLike {
  return {
    watch: (path, query, callback, done) => {
      const grant = rbacGrant("GET", path);
      if (grant !== undefined) used.add(grant.replace(/ list \*$/, " watch *"));
      return inner.watch(path, query, callback, done);
    },
  };
}

describe("against a real kube-apiserver", { skip, timeout: 300_000 }, () => {
  before(
    async () => {
      server = await startTestApiServer();
      const deploy = join(REPO, "deploy");
      await server.apply(yamlObjects(await readFile(join(deploy, "namespace.yaml"), "utf8")));
      await server.apply(yamlObjects(await readFile(join(deploy, "rbac.yaml"), "utf8")));
      const token = await eventually("a ServiceAccount token", async () => {
        const r = await srv().admin.request<{ status: { token: string } }>(
          "POST",
          "/api/v1/namespaces/gatehouse-system/serviceaccounts/gatehouse/token",
          { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
        );
        return r.status.token;
      });
      controllerConfig = server.kubeConfig(token);
    },
    { timeout: 180_000 },
  );
  after(async () => {
    await server?.stop();
  });

  test("the ServiceAccount may not do more than deploy/rbac.yaml says", async () => {
    const api = new HttpKubeApi(cfg());
    // (Services, Secrets, Deployments ... may be written: each Gateway's data plane, --infrastructure
    // kubernetes; ConfigMaps and the Gateway API objects themselves may not.)
    await assert.rejects(
      api.request("POST", "/api/v1/namespaces/default/configmaps", {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "nope" },
      }),
      (e: { statusCode?: number }) => e.statusCode === 403,
    );
    await assert.rejects(
      api.request("POST", `${GW}/namespaces/default/gateways`, {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "Gateway",
        metadata: { name: "nope" },
        spec: { gatewayClassName: "x", listeners: [{ name: "a", port: 80, protocol: "HTTP" }] },
      }),
      (e: { statusCode?: number }) => e.statusCode === 403,
    );
    await assert.rejects(
      api.request("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases"),
      (e: { statusCode?: number }) => e.statusCode === 403,
    );
    await assert.rejects(
      api.request("GET", "/apis/coordination.k8s.io/v1/namespaces/gatehouse-system/leases/someone-else"),
      (e: { statusCode?: number }) => e.statusCode === 403,
      "Leases other than ours are out of reach (resourceNames)",
    );

    await api.request("GET", `${GW}/httproutes`); // allowed
  });

  // The shared provider contract, on Services in a namespace of its own per case.
  providerContract("kubernetes (real API server)", {
    async create(sources) {
      const namespace = `contract-${randomBytes(3).toString("hex")}`;
      const admin = srv().admin;
      await admin.request("POST", "/api/v1/namespaces", {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: namespace },
      });
      // The contract's objects live in `default`; rename the namespace in the YAML text.
      const names = new Map<string, string>();
      const set = async (name: string, yaml: string | undefined): Promise<void> => {
        const previous = names.get(name);
        if (yaml === undefined) {
          if (previous !== undefined)
            await admin.request("DELETE", `/api/v1/namespaces/default/services/${previous}`);
          names.delete(name);
          return;
        }
        for (const obj of yamlObjects(yaml)) {
          await srv().apply([obj]);
          names.set(name, (obj["metadata"] as { name: string }).name);
        }
      };
      for (const [name, yaml] of Object.entries(sources)) await set(name, yaml);
      return {
        provider: new KubernetesProvider({
          api: new HttpKubeApi(cfg()),
          watch: new Watch(cfg()),
          debounceMs: 10,
          log: silentLog,
        }),
        set,
        cleanup: async () => {
          for (const n of names.values()) {
            await admin.request("DELETE", `/api/v1/namespaces/default/services/${n}`).catch(() => undefined);
          }
          await admin.request("DELETE", `/api/v1/namespaces/${namespace}`);
        },
      };
    },
  });

  test("API server down and up again: the last snapshot stays, changes made meanwhile arrive", async () => {
    const updates: ProviderUpdate[] = [];
    const provider = new KubernetesProvider({
      api: new HttpKubeApi(cfg(), { timeoutMs: 2000 }),
      watch: new Watch(cfg()),
      debounceMs: 20,
      retryMs: 200,
      maxRetryMs: 1000,
      log: silentLog,
    });
    await srv().apply(
      yamlObjects(
        "apiVersion: v1\nkind: Service\nmetadata: {name: before, namespace: default}\nspec: {ports: [{port: 80}]}",
      ),
    );
    await provider.start((u) => updates.push(u));
    try {
      assert.ok(updates.at(-1)?.snapshot.services.has("default/before"));
      await srv().pause();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const during = updates.length;
      assert.ok(
        provider.kinds().some((k) => k.state === "failing"),
        JSON.stringify(provider.kinds()),
      );
      assert.ok(updates.at(-1)?.snapshot.services.has("default/before"), "nothing was dropped");
      await srv().resume();
      await srv().apply(
        yamlObjects(
          "apiVersion: v1\nkind: Service\nmetadata: {name: after, namespace: default}\nspec: {ports: [{port: 80}]}",
        ),
      );
      await eventually("the change made after the restart", () =>
        Promise.resolve(updates.at(-1)?.snapshot.services.has("default/after") === true ? true : undefined),
      );
      assert.ok(updates.length > during);
      assert.ok(updates.slice(during).every((u) => u.snapshot.services.has("default/before")));
      await eventually("every kind watching again", () =>
        Promise.resolve(provider.kinds().every((k) => k.state === "synced") ? true : undefined),
      );
    } finally {
      await provider.stop();
    }
  });

  test("a CRD deleted and installed again: its kind leaves and comes back, the others carry on", async () => {
    const updates: ProviderUpdate[] = [];
    const provider = new KubernetesProvider({
      api: new HttpKubeApi(cfg()),
      watch: new Watch(cfg()),
      debounceMs: 20,
      discoveryRetryMs: 500,
      missingGraceMs: 1000,
      log: silentLog,
    });
    const admin = srv().admin;
    await srv().apply(
      yamlObjects(`
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: db, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: db, port: 5432}]}]`),
    );
    await provider.start((u) => updates.push(u));
    try {
      assert.ok(updates.at(-1)?.snapshot.tcpRoutes.has("default/db"));
      await admin.request(
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/tcproutes.gateway.networking.k8s.io",
      );
      await eventually("TCPRoutes gone from the snapshot", () =>
        Promise.resolve(updates.at(-1)?.snapshot.tcpRoutes.size === 0 ? true : undefined),
      );
      await srv().apply(
        yamlObjects(
          "apiVersion: v1\nkind: Service\nmetadata: {name: meanwhile, namespace: default}\nspec: {ports: [{port: 80}]}",
        ),
      );
      await eventually("other kinds still delivered", () =>
        Promise.resolve(
          updates.at(-1)?.snapshot.services.has("default/meanwhile") === true ? true : undefined,
        ),
      );
      // Install it again (wait until the old one is fully gone first).
      await eventually("the CRD deleted", async () => {
        try {
          await admin.request(
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/tcproutes.gateway.networking.k8s.io",
          );
          return undefined;
        } catch {
          return true;
        }
      });
      const crds = gatewayApiCrdDir();
      assert.ok("dir" in crds);
      await installCrds(admin, crds.dir, (f) => f.includes("tcproutes"));
      await srv().apply(
        yamlObjects(`
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: again, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: db, port: 5432}]}]`),
      );
      await eventually("TCPRoutes back", () =>
        Promise.resolve(updates.at(-1)?.snapshot.tcpRoutes.has("default/again") === true ? true : undefined),
      );
    } finally {
      await provider.stop();
    }
  });

  describe("gatehouse controller (provider → serve loop → HAProxy, status writer, leader election)", () => {
    const ns = "app";
    const pool = `127.213.${Math.floor(Math.random() * 250)}.0/29`;
    let controller: ControllerHandle | undefined;
    let backend: Server | undefined;
    let stateDir = "";
    let listenerPort = 0;
    let metricsPort = 0;
    const counting = { api: undefined as RecordingApi | undefined };
    const nodeIP = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === "IPv4" && !i.internal)?.address;
    const passes: number[] = [];

    const get = <T>(path: string) => srv().admin.request<T>("GET", path);
    type Obj = { metadata: { generation: number }; status?: Record<string, unknown> };
    const cond = (conditions: unknown, type: string) =>
      (conditions as Condition[] | undefined)?.find((c) => c.type === type);

    before(
      async () => {
        backend = createServer((_req, res) => res.end("hello from the backend\n"));
        await new Promise<void>((resolve) => backend?.listen(0, "0.0.0.0", resolve));
        const backendPort = (backend.address() as { port: number }).port;
        const unusedPort = () =>
          new Promise<number>((resolve) => {
            const s = createServer().listen(0, "127.0.0.1", () => {
              const p = (s.address() as { port: number }).port;
              s.close(() => resolve(p));
            });
          });
        listenerPort = await unusedPort();
        metricsPort = await unusedPort();
        stateDir = await mkdtemp(join(tmpdir(), "gatehouse-controller-test-"));
        const admin = srv().admin;
        await srv().apply(
          yamlObjects(`
apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse}
spec: {controllerName: ${CONTROLLER}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${ns}}
spec:
  gatewayClassName: gatehouse
  listeners: [{name: http, port: ${listenerPort}, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${ns}}
spec: {ports: [{name: http, port: 8080, targetPort: ${backendPort}}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: ${ns}, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: ["${nodeIP ?? "192.0.2.1"}"], conditions: {ready: true}}]
ports: [{name: http, port: ${backendPort}, protocol: TCP}]
---
apiVersion: v1
kind: Secret
metadata: {name: tls-cert, namespace: ${ns}}
type: kubernetes.io/tls
stringData: {tls.crt: not a certificate, tls.key: not a key}
---
apiVersion: v1
kind: Secret
metadata: {name: unreferenced, namespace: ${ns}}
stringData: {password: never read by the controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: tls-gw, namespace: ${ns}}
spec:
  gatewayClassName: gatehouse
  listeners:
    - name: https
      port: ${listenerPort}
      protocol: HTTPS
      hostname: tls.example.com
      tls: {certificateRefs: [{name: tls-cert}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: ${ns}}
spec:
  parentRefs: [{name: gw}, {name: foreign-gw}]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
`),
        );
        // Another controller already reports on the route (its own Gateway "foreign-gw").
        const route = await get<Record<string, unknown>>(`${GW}/namespaces/${ns}/httproutes/web`);
        await admin.request("PUT", `${GW}/namespaces/${ns}/httproutes/web/status`, {
          ...route,
          status: {
            parents: [
              {
                parentRef: { group: "gateway.networking.k8s.io", kind: "Gateway", name: "foreign-gw" },
                controllerName: OTHER,
                conditions: [
                  {
                    type: "Accepted",
                    status: "True",
                    reason: "Accepted",
                    message: "theirs",
                    observedGeneration: 1,
                    lastTransitionTime: "2020-01-01T00:00:00Z",
                  },
                ],
              },
            ],
          },
        });
        counting.api = new RecordingApi(new HttpKubeApi(cfg()));
        // The first status write of the route finds it changed (a label added): 409, re-read, retry.
        counting.api.conflictOnce = {
          suffix: `/namespaces/${ns}/httproutes/web/status`,
          touch: async () => {
            await admin.request(
              "PATCH",
              `${GW}/namespaces/${ns}/httproutes/web`,
              { metadata: { labels: { touched: "yes" } } },
              { contentType: "application/merge-patch+json" },
            );
          },
        };
        controller = await startController({
          kubeConfig: cfg(),
          api: counting.api,
          watch: recordingWatch(new Watch(cfg())),
          metadataWatch: recordingWatch(new MetadataWatch(cfg())),
          logger: createLogger({ level: process.env["GATEHOUSE_TEST_LOG"] === "1" ? "debug" : "silent" }),
          controllerName: CONTROLLER,
          serve: {
            stateDir,
            admin: { host: "127.0.0.1", port: 0 },
            metricsAddress: `127.0.0.1:${metricsPort}`,
            serverSlots: 2,
            hardStopAfter: "5s",
            hostAddresses: [],
          },
          // The pool is in 127/8, local already (lo): the fake binder stands in for `ip`, which
          // binder.netns.test.ts tests for real.
          infrastructure: new HostInfrastructure({
            binder: new FakeBinder("gh-test0", []),
            pool: new AddressPool(pool),
          }),
          leaderElection: {
            namespace: "gatehouse-system",
            identity: "test-leader",
            leaseDurationMs: 3000,
            renewDeadlineMs: 2000,
            retryPeriodMs: 300,
          },
          clock: systemClock,
          onStatusPass: (report) => passes.push(report.written.length),
        });
      },
      { timeout: 60_000 },
    );

    after(async () => {
      await controller?.stop({ graceful: false, timeoutMs: 2000 });
      await new Promise<void>((resolve) =>
        backend === undefined ? resolve() : backend.close(() => resolve()),
      );
      if (stateDir !== "") await rm(stateDir, { recursive: true, force: true });
    });

    test("GatewayClass: Accepted, supportedFeatures", async () => {
      const gc = await eventually("GatewayClass Accepted", async () => {
        const o = await get<Obj>(`${GW}/gatewayclasses/gatehouse`);
        return cond(o.status?.["conditions"], "Accepted")?.status === "True" ? o : undefined;
      });
      assert.ok(
        Array.isArray(gc.status?.["supportedFeatures"]) &&
          (gc.status["supportedFeatures"] as unknown[]).length > 0,
      );
      assert.equal(cond(gc.status?.["conditions"], "Accepted")?.observedGeneration, gc.metadata.generation);
    });

    test("Gateway: Accepted and Programmed with the pool address in status.addresses", async () => {
      const gw = await eventually("Gateway Programmed", async () => {
        const o = await get<Obj>(`${GW}/namespaces/${ns}/gateways/gw`);
        return cond(o.status?.["conditions"], "Programmed")?.status === "True" ? o : undefined;
      });
      assert.equal(cond(gw.status?.["conditions"], "Accepted")?.status, "True");
      assert.deepEqual(gw.status?.["addresses"], [{ type: "IPAddress", value: pool.replace(/0\/29$/, "1") }]);
      const listeners = gw.status?.["listeners"] as Array<{
        name: string;
        attachedRoutes: number;
        conditions: Condition[];
      }>;
      assert.equal(listeners[0]?.attachedRoutes, 1);
    });

    test("HTTPRoute: our parents entry is added, the other controller's entry is left alone", async () => {
      const route = await eventually("HTTPRoute status", async () => {
        const o = await get<Obj>(`${GW}/namespaces/${ns}/httproutes/web`);
        const parents = (o.status?.["parents"] ?? []) as Array<{
          controllerName: string;
          conditions: Condition[];
        }>;
        return parents.some((p) => p.controllerName === CONTROLLER) ? parents : undefined;
      });
      assert.deepEqual(
        route.map((p) => p.controllerName),
        [OTHER, CONTROLLER],
      );
      const ours = route[1];
      assert.equal(cond(ours?.conditions, "Accepted")?.status, "True");
      assert.equal(cond(ours?.conditions, "ResolvedRefs")?.status, "True");
      assert.equal(cond(route[0]?.conditions, "Accepted")?.lastTransitionTime, "2020-01-01T00:00:00Z");
    });

    test("Secrets: the referenced one is read (its content reaches the translator), the others never", async () => {
      const gw = await eventually("tls-gw's listener verdict", async () => {
        const o = await get<Obj>(`${GW}/namespaces/${ns}/gateways/tls-gw`);
        const l = (o.status?.["listeners"] ?? []) as Array<{ conditions: Condition[] }>;
        return cond(l[0]?.conditions, "ResolvedRefs");
      });
      assert.equal(gw.status, "False");
      assert.equal(gw.reason, "InvalidCertificateRef");
      assert.doesNotMatch(gw.message, /not found/, "the Secret was read");
      assert.ok(used.has("cluster core/secrets get *"));
      assert.deepEqual(controller?.provider.referencedCached, [`Secret ${ns}/tls-cert`]);
      const reads = (counting.api?.paths ?? []).filter((p) => p.includes("/secrets/"));
      assert.deepEqual([...new Set(reads)], [`/api/v1/namespaces/${ns}/secrets/tls-cert`]);
    });

    test(
      "traffic flows through HAProxy on the assigned address",
      { skip: nodeIP === undefined ? "no non-loopback IPv4 address for the backend" : false },
      async () => {
        const address = pool.replace(/0\/29$/, "1");
        const body = await eventually("an answer from the backend", async () => {
          const res = await fetch(`http://${address}:${listenerPort}/`, {
            signal: AbortSignal.timeout(2000),
          });
          return res.status === 200 ? await res.text() : undefined;
        });
        assert.equal(body, "hello from the backend\n");
      },
    );

    test(
      "a route HAProxy cannot express is reported on its rule; a route created after it is served",
      { skip: nodeIP === undefined ? "no non-loopback IPv4 address for the backend" : false },
      async () => {
        const address = pool.replace(/0\/29$/, "1");
        await srv().apply(
          yamlObjects(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: tenant, namespace: ${ns}}
spec:
  parentRefs: [{name: gw}]
  hostnames: [tenant.example.com]
  rules:
    - matches: [{path: {type: RegularExpression, value: "/bad("}}]
      backendRefs: [{name: web, port: 8080}]
    - matches: [{path: {type: RegularExpression, value: "/y(?<=a+)b"}}]
      backendRefs: [{name: web, port: 8080}]
    - matches: [{path: {type: PathPrefix, value: /ok}}]
      backendRefs: [{name: web, port: 8080}]
`),
        );
        const partial = await eventually("PartiallyInvalid on the tenant route", async () => {
          const o = await get<Obj>(`${GW}/namespaces/${ns}/httproutes/tenant`);
          const p = ((o.status?.["parents"] ?? []) as Array<{ conditions: Condition[] }>)[0];
          return cond(p?.conditions, "PartiallyInvalid");
        });
        assert.equal(partial.reason, "UnsupportedValue");
        assert.match(partial.message, /spec\.rules\[0\]\.matches\[0\]\.path\.value: has an unbalanced/);
        assert.match(partial.message, /spec\.rules\[1\]\.matches\[0\]\.path\.value: is not a valid RE2/);

        await srv().apply(
          yamlObjects(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: later, namespace: ${ns}}
spec:
  parentRefs: [{name: gw}]
  hostnames: [later.example.com]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
`),
        );
        const status = (host: string, path: string) =>
          new Promise<number>((resolve, reject) => {
            const req = httpRequest(
              { host: address, port: listenerPort, path, headers: { host }, timeout: 2000 },
              (res) => {
                res.resume();
                resolve(res.statusCode ?? 0);
              },
            );
            req.on("error", reject);
            req.end();
          });
        await eventually("the later route serves", async () =>
          (await status("later.example.com", "/")) === 200 ? true : undefined,
        );
        assert.equal(await status("tenant.example.com", "/ok"), 200);

        for (const name of ["tenant", "later"])
          await srv().admin.request("DELETE", `${GW}/namespaces/${ns}/httproutes/${name}`);
        await eventually("attachedRoutes back to 1", async () => {
          const o = await get<Obj>(`${GW}/namespaces/${ns}/gateways/gw`);
          const l = (o.status?.["listeners"] ?? []) as Array<{ attachedRoutes: number }>;
          return l[0]?.attachedRoutes === 1 ? o : undefined;
        });
      },
    );

    test("Events (events.k8s.io/v1): the rejected route and the leadership are in `kubectl events`", async () => {
      type Ev = {
        regarding: { kind: string; name: string; uid?: string };
        related?: { name: string };
        type: string;
        reason: string;
        action: string;
        note: string;
        reportingController: string;
        reportingInstance: string;
      };
      const rejected = await eventually("an Event about the tenant route", async () => {
        const list = await get<{ items: Ev[] }>(`/apis/events.k8s.io/v1/namespaces/${ns}/events`);
        return list.items.find((e) => e.regarding.kind === "HTTPRoute" && e.regarding.name === "tenant");
      });
      assert.equal(rejected.type, "Warning");
      assert.equal(rejected.reason, "UnsupportedValue");
      assert.equal(rejected.action, "PartiallyInvalid");
      assert.equal(rejected.related?.name, "gw");
      assert.match(rejected.note, /^parent Gateway app\/gw: PartiallyInvalid True: .*unbalanced/);
      assert.equal(rejected.reportingController, CONTROLLER);
      assert.equal(rejected.reportingInstance, "test-leader");
      assert.ok((rejected.regarding.uid ?? "") !== "", "the object's uid, so describe finds it");
      const leases = await get<{ items: Ev[] }>("/apis/events.k8s.io/v1/namespaces/gatehouse-system/events");
      const lead = leases.items.find((e) => e.regarding.kind === "Lease" && e.action === "Lead");
      assert.equal(lead?.reason, "LeaderElection");
      assert.equal(lead?.note, "test-leader became leader");
    });

    test("converged: no status is rewritten while nothing changes", async () => {
      const api = counting.api;
      assert.ok(api !== undefined);
      // Let the watch events of our own writes come back and be translated.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const before = api.puts.length;
      // Touch something unrelated: a full translation and a status pass follow.
      await srv().apply(
        yamlObjects(
          `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated, namespace: ${ns}}\ndata: {a: "1"}`,
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.deepEqual(api.puts.slice(before), [], "no status write");
    });

    test("a spec change: observedGeneration follows, lastTransitionTime of unchanged conditions stays", async () => {
      const path = `${GW}/namespaces/${ns}/httproutes/web`;
      const before = await get<Obj & { spec: Record<string, unknown> }>(path);
      const ours = () =>
        (
          (before.status?.["parents"] ?? []) as Array<{ controllerName: string; conditions: Condition[] }>
        ).find((p) => p.controllerName === CONTROLLER);
      const acceptedBefore = cond(ours()?.conditions, "Accepted");
      await srv().admin.request("PUT", path, {
        ...before,
        spec: { ...before.spec, hostnames: ["web.example.com"] },
      });
      const after = await eventually("observedGeneration 2", async () => {
        const o = await get<Obj>(path);
        const p = (
          (o.status?.["parents"] ?? []) as Array<{ controllerName: string; conditions: Condition[] }>
        ).find((x) => x.controllerName === CONTROLLER);
        return cond(p?.conditions, "Accepted")?.observedGeneration === o.metadata.generation &&
          o.metadata.generation > before.metadata.generation
          ? p
          : undefined;
      });
      assert.equal(cond(after.conditions, "Accepted")?.status, "True");
      assert.equal(
        cond(after.conditions, "Accepted")?.lastTransitionTime,
        acceptedBefore?.lastTransitionTime,
      );
    });

    test("a route that leaves our Gateway loses our parents entry; the other controller's stays", async () => {
      const path = `${GW}/namespaces/${ns}/httproutes/web`;
      const current = await get<Obj & { spec: Record<string, unknown> }>(path);
      await srv().admin.request("PUT", path, {
        ...current,
        spec: { ...current.spec, parentRefs: [{ name: "foreign-gw" }] },
      });
      const parents = await eventually("our entry removed", async () => {
        const o = await get<Obj>(path);
        const p = (o.status?.["parents"] ?? []) as Array<{ controllerName: string }>;
        return p.some((x) => x.controllerName === CONTROLLER) ? undefined : p;
      });
      assert.deepEqual(
        parents.map((p) => p.controllerName),
        [OTHER],
      );
      const gw = await eventually("attachedRoutes 0", async () => {
        const o = await get<Obj>(`${GW}/namespaces/${ns}/gateways/gw`);
        const l = (o.status?.["listeners"] ?? []) as Array<{ attachedRoutes: number }>;
        return l[0]?.attachedRoutes === 0 ? o : undefined;
      });
      assert.ok(gw);
    });

    test("the route's first status write met a 409 Conflict: re-read and written", async () => {
      assert.equal(counting.api?.conflictOnce, undefined, "the conflict was provoked");
      const route = await get<{
        metadata: { labels?: Record<string, string> };
        status?: { parents?: unknown[] };
      }>(`${GW}/namespaces/${ns}/httproutes/web`);
      assert.equal(route.metadata.labels?.["touched"], "yes");
      assert.ok(used.has("cluster gateway.networking.k8s.io/httproutes get *"), [...used].join("\n"));
    });

    test("Event series: repeats are counted on the API server (series.count, PATCH)", async () => {
      const clock = new ManualClock();
      const recorder = new EventRecorder({
        api: counting.api ?? assert.fail(),
        clock,
        now: () => new Date(),
        reportingController: CONTROLLER,
        reportingInstance: "test-leader",
      });
      const event = {
        regarding: { apiVersion: "gateway.networking.k8s.io/v1", kind: "Gateway", namespace: ns, name: "gw" },
        type: "Warning" as const,
        reason: "SeriesTest",
        action: "Program",
        note: "repeated",
      };
      recorder.record(event);
      await recorder.flush();
      recorder.record(event);
      recorder.record(event);
      clock.advance(30_000);
      await recorder.flush();
      const list = await get<{ items: Array<{ reason: string; series?: { count: number } }> }>(
        `/apis/events.k8s.io/v1/namespaces/${ns}/events`,
      );
      const found = list.items.filter((e) => e.reason === "SeriesTest");
      assert.equal(found.length, 1);
      assert.equal(found[0]?.series?.count, 3);
    });

    test("API server killed and restarted: the leader stops writing within the renew deadline; apply → first 200 within 2 s", async (t) => {
      const c = controller;
      assert.ok(c !== undefined && c.elector !== undefined);
      const address = pool.replace(/0\/29$/, "1");
      // The route applied after the restart adds a response header: whether it is in effect.
      const answer = (host: string) =>
        new Promise<{ status: number; ours: boolean }>((resolve) => {
          const req = httpRequest(
            { host: address, port: listenerPort, path: "/", headers: { host }, timeout: 1000 },
            (res) => {
              res.resume();
              resolve({ status: res.statusCode ?? 0, ours: res.headers["x-after-restart"] === "yes" });
            },
          );
          req.on("error", () => resolve({ status: 0, ours: false }));
          req.on("timeout", () => req.destroy());
          req.end();
        });
      const metrics = async () => (await fetch(`${c.serve.adminUrl}/metrics`)).text();
      await srv().pause(); // SIGTERM; resolves once the process has exited
      const killedAt = Date.now();
      let resumed = false;
      try {
        await eventually(
          "the leader steps down",
          () => Promise.resolve(c.elector?.isLeader === false ? true : undefined),
          5_000,
        );
        const steppedDownMs = Date.now() - killedAt;
        t.diagnostic(
          `stepped down ${steppedDownMs} ms after the API server was killed (renew deadline 2000 ms)`,
        );
        assert.ok(steppedDownMs < 2_000 + 300 + 500, `${steppedDownMs} ms`);
        // /metrics is answered by the admin worker from the latest published snapshot: eventually.
        await eventually(
          "gatehouse_leader 0 on /metrics",
          async () => (/^gatehouse_leader 0$/m.test(await metrics()) ? true : undefined),
          3_000,
        );
        // A 17 s outage (plus the API server's start): per-kind exponential backoff from 0.5 s would
        // have retried at 7.5 and 15.5 s and wait until 31.5 s, 10 s or more after it is ready.
        await new Promise((resolve) => setTimeout(resolve, 17_000 - (Date.now() - killedAt)));
        const during = await answer("after-restart.example.com");
        assert.ok(during.status !== 0 && !during.ours, "HAProxy kept answering meanwhile");
        await srv().resume();
        resumed = true;
        const readyAt = Date.now();
        await srv().apply(
          yamlObjects(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: after-restart, namespace: ${ns}}
spec:
  parentRefs: [{name: gw}]
  hostnames: [after-restart.example.com]
  rules:
    - backendRefs: [{name: web, port: 8080}]
      filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier: {add: [{name: X-After-Restart, value: "yes"}]}
`),
        );
        const appliedAt = Date.now();
        await eventually(
          "every kind watching again",
          () => Promise.resolve(c.provider.kinds().every((k) => k.state === "synced") ? true : undefined),
          30_000,
        );
        const resumedMs = Date.now() - readyAt;
        await eventually("the route applied after the restart answers", async () => {
          const a = await answer("after-restart.example.com");
          return a.status === 200 && a.ours ? true : undefined;
        });
        const servedAt = Date.now();
        t.diagnostic(
          `API server ready → every informer watching ${resumedMs} ms; route applied ${appliedAt - readyAt} ms after ready; apply → first 200 ${servedAt - appliedAt} ms`,
        );
        assert.ok(resumedMs < 2_000, `informers resumed ${resumedMs} ms after the API server was ready`);
        assert.ok(servedAt - appliedAt < 2_000, `apply → first 200 took ${servedAt - appliedAt} ms`);
        await eventually(
          "leading again",
          () => Promise.resolve(c.elector?.isLeader === true ? true : undefined),
          5_000,
        );
        // /metrics is answered by the admin worker from the latest published snapshot: eventually.
        await eventually(
          "gatehouse_leader 1 on /metrics",
          async () => (/^gatehouse_leader 1$/m.test(await metrics()) ? true : undefined),
          3_000,
        );
        await srv().admin.request("DELETE", `${GW}/namespaces/${ns}/httproutes/after-restart`);
      } finally {
        if (!resumed) await srv().resume();
      }
    });

    test("RBAC: every grant of the chart's rules was used by the controller, and nothing else", () => {
      const expected = new Set(
        permissions(DEFAULT_LEASE_NAME).flatMap((p) =>
          p.verbs.flatMap((v) =>
            (p.names ?? ["*"]).map((n) => `${p.scope} ${p.group || "core"}/${p.resource} ${v} ${n}`),
          ),
        ),
      );
      const unexpected = [...used].filter((g) => !expected.has(g));
      assert.deepEqual(unexpected, [], "requests outside the rules");
      // Every verb of every rule was used on at least one resource of it: each (scope, group, verb,
      // name) of the rules appears among the requests. (Per resource: a GET after a 409 is only
      // provoked for HTTPRoutes here; deploy.test.ts checks the rules resource by resource.)
      const coarse = (g: string) => g.replace(/^(\S+) ([^/]*)\/\S+ /, "$1 $2 ");
      const usedCoarse = new Set([...used].map(coarse));
      const unused = [...new Set([...expected].map(coarse))].filter((g) => !usedCoarse.has(g));
      assert.deepEqual(unused, [], "granted but never used");
    });

    test("leader election: the Lease names us; a second candidate waits, and takes over after we stop", async () => {
      const lease = await get<{ spec: { holderIdentity?: string; leaseDurationSeconds?: number } }>(
        "/apis/coordination.k8s.io/v1/namespaces/gatehouse-system/leases/gatehouse-status",
      );
      assert.equal(lease.spec.holderIdentity, "test-leader");
      const metrics = async (): Promise<string> => {
        const url = controller?.serve.adminUrl;
        assert.ok(url !== undefined);
        return (await fetch(`${url}/metrics`)).text();
      };
      assert.match(await metrics(), /^gatehouse_leader 1$/m);
      const changes: boolean[] = [];
      const second = new LeaderElector({
        api: new HttpKubeApi(cfg()),
        namespace: "gatehouse-system",
        identity: "second",
        clock: systemClock,
        now: () => new Date(),
        leaseDurationMs: 3000,
        renewDeadlineMs: 2000,
        retryPeriodMs: 300,
        onChange: (l) => changes.push(l),
      });
      second.start();
      try {
        await new Promise((resolve) => setTimeout(resolve, 1500));
        assert.equal(second.isLeader, false);
        await controller?.stop({ graceful: false, timeoutMs: 2000 });
        await eventually(
          "the second candidate leads",
          () => Promise.resolve(second.isLeader ? true : undefined),
          5000,
        );
        const after = await get<{ spec: { holderIdentity?: string; leaseTransitions?: number } }>(
          "/apis/coordination.k8s.io/v1/namespaces/gatehouse-system/leases/gatehouse-status",
        );
        assert.equal(after.spec.holderIdentity, "second");
        assert.equal(after.spec.leaseTransitions, 1);
      } finally {
        await second.stop();
      }
    });
  });
  test("`gatehouse controller` (the command): accepts its GatewayClass, releases the Lease on SIGTERM, exits 0", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gatehouse-controller-cli-"));
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, cfg().exportConfig());
    const free = () =>
      new Promise<number>((resolve) => {
        const s = createServer().listen(0, "127.0.0.1", () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
    await srv().apply(
      yamlObjects(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: cli}\nspec: {controllerName: example.dev/cli-test}",
      ),
    );
    const output: string[] = [];
    const child = spawn(
      process.execPath,
      [
        join(REPO, "bin", "gatehouse.js"),
        "controller",
        `--kubeconfig=${kubeconfig}`,
        "--controller-name=example.dev/cli-test",
        "--lease-namespace=gatehouse-system",
        `--admin=127.0.0.1:${await free()}`,
        `--haproxy-metrics=127.0.0.1:${await free()}`,
        `--state-dir=${join(dir, "state")}`,
        "--log-format=text",
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBECONFIG: "" } },
    );
    child.stdout.on("data", (d: Buffer) => output.push(d.toString()));
    child.stderr.on("data", (d: Buffer) => output.push(d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await eventually(
        "GatewayClass cli Accepted",
        async () => {
          const o = await srv().admin.request<{ status?: { conditions?: Condition[] } }>(
            "GET",
            `${GW}/gatewayclasses/cli`,
          );
          return (o.status?.conditions ?? []).some((c) => c.type === "Accepted" && c.status === "True")
            ? true
            : undefined;
        },
        30_000,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${output.join("")}`);
      });
      const lease = await srv().admin.request<{ spec: { holderIdentity?: string } }>(
        "GET",
        `/apis/coordination.k8s.io/v1/namespaces/gatehouse-system/leases/${DEFAULT_LEASE_NAME}`,
      );
      assert.match(lease.spec.holderIdentity ?? "", /_[0-9a-f]{8}$/);
      child.kill("SIGTERM");
      assert.equal(await exited, 0, output.join(""));
      const released = await srv().admin.request<{ spec: { holderIdentity?: string } }>(
        "GET",
        `/apis/coordination.k8s.io/v1/namespaces/gatehouse-system/leases/${DEFAULT_LEASE_NAME}`,
      );
      assert.equal(released.spec.holderIdentity, undefined, "released on shutdown");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("`gatehouse controller` killed with SIGKILL: the next one on the state directory stops the HAProxy left behind; one data plane serves", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gatehouse-controller-kill-"));
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, cfg().exportConfig());
    const stateDir = join(dir, "state");
    const free = () =>
      new Promise<number>((resolve) => {
        const s = createServer().listen(0, "127.0.0.1", () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
    const args = [
      join(REPO, "bin", "gatehouse.js"),
      "controller",
      `--kubeconfig=${kubeconfig}`,
      "--controller-name=example.dev/cli-test",
      "--lease-namespace=gatehouse-system",
      `--admin=127.0.0.1:${await free()}`,
      `--haproxy-metrics=127.0.0.1:${await free()}`,
      `--state-dir=${stateDir}`,
      "--log-format=text",
    ];
    const output: string[] = [];
    const start = () => {
      const child = spawn(process.execPath, args, {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, KUBECONFIG: "" },
      });
      child.stdout.on("data", (d: Buffer) => output.push(d.toString()));
      child.stderr.on("data", (d: Buffer) => output.push(d.toString()));
      return child;
    };
    const haproxyPid = async (): Promise<number | undefined> => {
      try {
        const n = Number((await readFile(join(stateDir, "haproxy.pid"), "utf8")).trim());
        return Number.isInteger(n) && n > 0 ? n : undefined;
      } catch {
        return undefined;
      }
    };
    /** Live processes (not zombies) whose command line names this state directory. */
    const dataPlane = async (): Promise<Array<{ pid: number; ppid: number }>> => {
      const out: Array<{ pid: number; ppid: number }> = [];
      for (const name of await readdir("/proc")) {
        if (!/^\d+$/.test(name)) continue;
        try {
          const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8");
          if (cmdline === "" || !cmdline.includes(stateDir) || !cmdline.includes("haproxy")) continue;
          const status = await readFile(`/proc/${name}/status`, "utf8");
          out.push({ pid: Number(name), ppid: Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0) });
        } catch {
          // gone meanwhile
        }
      }
      return out;
    };
    const first = start();
    let second: ReturnType<typeof start> | undefined;
    try {
      const p1 = await eventually("the first controller's HAProxy", haproxyPid, 30_000).catch(
        (error: unknown) => {
          throw new Error(`${String(error)}\n${output.join("")}`);
        },
      );
      const exited = new Promise((resolve) => first.once("exit", resolve));
      first.kill("SIGKILL");
      await exited;
      second = start();
      const p2 = await eventually(
        "a new HAProxy",
        async () => {
          const p = await haproxyPid();
          return p !== undefined && p !== p1 ? p : undefined;
        },
        30_000,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${output.join("")}`);
      });
      const ppid = async (pid: number): Promise<number> => {
        try {
          const status = await readFile(`/proc/${pid}/status`, "utf8");
          return Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
        } catch {
          return 0;
        }
      };
      /** Whether `pid` is `ancestor` or descends from it. */
      const descends = async (pid: number, ancestor: number): Promise<boolean> => {
        for (let p = pid; p > 1; p = await ppid(p)) if (p === ancestor) return true;
        return false;
      };
      const owner = second.pid;
      assert.ok(owner !== undefined);
      const processes = await eventually(
        "only the new controller's data plane",
        async () => {
          const list = await dataPlane();
          for (const p of list) if (!(await descends(p.pid, owner))) return undefined;
          return list;
        },
        10_000,
      ).catch(async (error: unknown) => {
        throw new Error(`${String(error)}: ${JSON.stringify(await dataPlane())} (old ${p1}, new ${p2})`);
      });
      assert.ok(
        processes.some((p) => p.pid === p2),
        "the new master runs",
      );
      assert.ok(!processes.some((p) => p.pid === p1), "the old master is gone");
    } finally {
      if (first.exitCode === null && first.signalCode === null) first.kill("SIGKILL");
      if (second !== undefined) {
        const done = new Promise((resolve) => second?.once("exit", resolve));
        second.kill("SIGTERM");
        await done;
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});
