// `--infrastructure kubernetes` against a real kube-apiserver (no controller-manager: no garbage
// collector, no pods): objects created by server-side apply with labels, annotations and owners; a
// field another manager adds survives; unchanged Gateways cost no writes; a parameter change rolls
// the pod template; a class change deletes the objects; the CRD's CEL rules refuse an invalid
// GatehouseProxy, and a reference to it is InvalidParameters.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { haproxyValidators } from "../../dataplane/haproxy/capabilities.ts";
import {
  HttpKubeApi,
  type HttpMethod,
  type KubeApi,
  type RequestOptions,
} from "../../provider/kubernetes/client.ts";
import { infrastructurePermissions } from "../../provider/kubernetes/resources.ts";
import {
  apiServerSkipReason,
  CONTROLLER_USER,
  startTestApiServer,
  TOKENS,
  type TestApiServer,
} from "../../provider/kubernetes/testing/apiserver.ts";
import { gatehouseProxyCRD } from "../../resources/gatehouseproxy.ts";
import type { KubeObject } from "../../resources/meta.ts";
import { buildSnapshot } from "../../resources/snapshot.ts";
import type { Condition } from "../../status/types.ts";
import { translate } from "../../translate/index.ts";
import { PARAMETERS_HASH_ANNOTATION } from "./desired.ts";
import { KubernetesInfrastructure } from "./index.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "../../distribute/ca.ts";
import { FileCAStore } from "../../distribute/castore.ts";
import { CountingIssuer, StaticDataplane } from "./testing.ts";

const skip = apiServerSkipReason();
const NS = "edge";

/** Counts the writes (anything but GET) that go through it. */
class CountingApi implements KubeApi {
  writes: string[] = [];
  readonly #api: KubeApi;
  constructor(api: KubeApi) {
    this.#api = api;
  }
  request<T>(method: HttpMethod, path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    if (method !== "GET") this.writes.push(`${method} ${path}`);
    return this.#api.request<T>(method, path, body, options);
  }
}

describe("infrastructure kubernetes against a real kube-apiserver", { skip, timeout: 300_000 }, () => {
  let server: TestApiServer | undefined;
  const srv = (): TestApiServer => {
    if (server === undefined) throw new Error("no API server");
    return server;
  };
  const get = <T = Record<string, unknown>>(path: string) => srv().admin.request<T>("GET", path);

  before(
    async () => {
      server = await startTestApiServer({
        crdFilter: (f) => f.includes("_gateways.") || f.includes("_gatewayclasses."),
      });
      await server.admin.request(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        gatehouseProxyCRD(),
      );
      for (let i = 0; ; i++) {
        const list = await server.admin
          .request<{ items?: unknown[] }>("GET", `/apis/gatehouse.dev/v1alpha1/gatehouseproxies`)
          .catch(() => undefined);
        if (list !== undefined) break;
        if (i > 300) throw new Error("the GatehouseProxy CRD is not served");
        await new Promise((r) => setTimeout(r, 100));
      }
      await server.apply([{ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } }]);
      await server.apply([
        {
          apiVersion: "gateway.networking.k8s.io/v1",
          kind: "GatewayClass",
          metadata: { name: "gatehouse" },
          spec: { controllerName: "gatehouse.dev/gateway-controller" },
        },
      ]);
    },
    { timeout: 180_000 },
  );
  after(async () => {
    await server?.stop();
  });

  /** The objects the translator reads, as the API server has them. */
  async function snapshot() {
    const items = async (path: string, apiVersion: string, kind: string) =>
      ((await get<{ items: KubeObject[] }>(path)).items ?? []).map((o) => ({ ...o, apiVersion, kind }));
    const objects = [
      ...(await items(
        "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
        "gateway.networking.k8s.io/v1",
        "GatewayClass",
      )),
      ...(await items(
        "/apis/gateway.networking.k8s.io/v1/gateways",
        "gateway.networking.k8s.io/v1",
        "Gateway",
      )),
      ...(await items(
        "/apis/gatehouse.dev/v1alpha1/gatehouseproxies",
        "gatehouse.dev/v1alpha1",
        "GatehouseProxy",
      )),
      ...(await items("/api/v1/services", "v1", "Service")),
    ];
    return buildSnapshot(objects.map((object) => ({ object, source: {} }))).snapshot;
  }

  function infrastructure(api: KubeApi) {
    return new KubernetesInfrastructure({
      api,
      issuer: new CountingIssuer(),
      dataplane: new StaticDataplane(),
      image: "ghcr.io/gatehouse/gatehouse:test",
      controllerAddress: "gatehouse.gatehouse-system.svc:9443",
    });
  }

  async function prepare(infra: KubernetesInfrastructure) {
    const snap = await snapshot();
    const result = translate(snap, {
      controllerName: "gatehouse.dev/gateway-controller",
      now: "2026-01-01T00:00:00Z",
      validators: haproxyValidators,
      infrastructure: "kubernetes",
    });
    const input = { ...result, snapshot: snap, now: "2026-01-01T00:00:00Z" };
    await infra.prepare(input);
    // Objects are applied in the background: once they are, prepare again for the statuses.
    await infra.reconciler.idle();
    return infra.prepare(input);
  }

  const gatewayPath = `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/gateways`;
  const deploymentPath = `/apis/apps/v1/namespaces/${NS}/deployments/gatehouse-web`;
  const servicePath = `/api/v1/namespaces/${NS}/services/gatehouse-web`;

  test("objects are applied, kept by SSA, not rewritten when unchanged, rolled on a parameter change, deleted on a class change", async () => {
    await srv().admin.request("POST", `/apis/gatehouse.dev/v1alpha1/namespaces/${NS}/gatehouseproxies`, {
      apiVersion: "gatehouse.dev/v1alpha1",
      kind: "GatehouseProxy",
      metadata: { name: "web", namespace: NS },
      spec: { replicas: 2, haproxy: { maxconn: 1000 }, podDisruptionBudget: { maxUnavailable: 1 } },
    });
    const gw = await srv().admin.request<{ metadata: { uid: string } }>("POST", gatewayPath, {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "web", namespace: NS },
      spec: {
        gatewayClassName: "gatehouse",
        infrastructure: {
          labels: { team: "edge" },
          annotations: { "example.com/owner": "edge-team" },
          parametersRef: { group: "gatehouse.dev", kind: "GatehouseProxy", name: "web" },
        },
        listeners: [
          { name: "http", port: 80, protocol: "HTTP" },
          { name: "dns", port: 53, protocol: "UDP" },
        ],
      },
    });
    const api = new CountingApi(srv().admin);
    const infra = infrastructure(api);
    const out = await prepare(infra);
    const status = out.statuses.find((s) => s.kind === "Gateway" && s.metadata.name === "web");
    const programmed = (status?.status["conditions"] as Condition[]).find((c) => c.type === "Programmed");
    // No load balancer in this cluster: the Service gets no address.
    assert.equal(programmed?.reason, "AddressNotAssigned");

    for (const path of [
      `/api/v1/namespaces/${NS}/serviceaccounts/gatehouse-web`,
      `/api/v1/namespaces/${NS}/secrets/gatehouse-web`,
      servicePath,
      deploymentPath,
      `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/gatehouse-web`,
    ]) {
      const o = await get<{
        metadata: {
          labels: Record<string, string>;
          annotations?: Record<string, string>;
          ownerReferences: Array<{ uid: string; controller: boolean; blockOwnerDeletion: boolean }>;
        };
      }>(path);
      assert.equal(o.metadata.labels["gateway.networking.k8s.io/gateway-name"], "web", path);
      assert.equal(o.metadata.labels["app.kubernetes.io/managed-by"], "gatehouse", path);
      assert.equal(o.metadata.labels["team"], "edge", path);
      assert.equal(o.metadata.annotations?.["example.com/owner"], "edge-team", path);
      assert.equal(o.metadata.ownerReferences[0]?.uid, gw.metadata.uid, path);
      assert.equal(o.metadata.ownerReferences[0]?.controller, true);
    }
    const service = await get<{ spec: { ports: Array<{ protocol: string; port: number }>; type: string } }>(
      servicePath,
    );
    assert.equal(service.spec.type, "LoadBalancer");
    assert.deepEqual(
      service.spec.ports.map((p) => `${p.protocol}/${p.port}`),
      ["UDP/53", "TCP/80"],
    );
    type Deployment = {
      spec: { replicas: number; template: { metadata: { annotations: Record<string, string> } } };
    };
    const before = await get<Deployment>(deploymentPath);
    assert.equal(before.spec.replicas, 2);

    // Another manager's field survives our re-apply.
    await srv().admin.request(
      "PATCH",
      servicePath,
      { metadata: { labels: { "user.example.com/mine": "yes" } } },
      { contentType: "application/merge-patch+json" },
    );
    // Nothing changed: no writes.
    api.writes = [];
    await prepare(infra);
    assert.deepEqual(api.writes, []);
    // Everything applied again (e.g. a new controller process): still the user's label.
    infra.reconciler.reset();
    await prepare(infra);
    assert.ok(api.writes.length >= 5);
    const after = await get<{ metadata: { labels: Record<string, string> } }>(servicePath);
    assert.equal(after.metadata.labels["user.example.com/mine"], "yes");

    // A parameter change rolls the pods (the pod-template hash); turning the PDB off deletes it.
    const proxyPath = `/apis/gatehouse.dev/v1alpha1/namespaces/${NS}/gatehouseproxies/web`;
    await srv().admin.request(
      "PATCH",
      proxyPath,
      { spec: { haproxy: { maxconn: 2000 }, podDisruptionBudget: null } },
      { contentType: "application/merge-patch+json" },
    );
    api.writes = [];
    await prepare(infra);
    const rolled = await get<Deployment>(deploymentPath);
    assert.notEqual(
      rolled.spec.template.metadata.annotations[PARAMETERS_HASH_ANNOTATION],
      before.spec.template.metadata.annotations[PARAMETERS_HASH_ANNOTATION],
    );
    assert.ok(api.writes.some((w) => w.startsWith("DELETE") && w.includes("poddisruptionbudgets")));
    assert.ok(!api.writes.some((w) => w.includes("/services/")), api.writes.join("\n"));

    // The Gateway moves to a class that is not ours: its objects are deleted.
    await srv().admin.request(
      "PATCH",
      `${gatewayPath}/web`,
      { spec: { gatewayClassName: "someone-else" } },
      { contentType: "application/merge-patch+json" },
    );
    await prepare(infra);
    await assert.rejects(get(deploymentPath), /404/);
    await assert.rejects(get(servicePath), /404/);
    await assert.rejects(get(`/api/v1/namespaces/${NS}/secrets/gatehouse-web`), /404/);
  });

  test("the API server refuses an invalid GatehouseProxy (CEL); a reference to a missing one is InvalidParameters", async () => {
    await assert.rejects(
      srv().admin.request("POST", `/apis/gatehouse.dev/v1alpha1/namespaces/${NS}/gatehouseproxies`, {
        apiVersion: "gatehouse.dev/v1alpha1",
        kind: "GatehouseProxy",
        metadata: { name: "both", namespace: NS },
        spec: { replicas: 2, autoscaling: { maxReplicas: 3 } },
      }),
      /replicas and autoscaling are mutually exclusive/,
    );
    await assert.rejects(
      srv().admin.request("POST", `/apis/gatehouse.dev/v1alpha1/namespaces/${NS}/gatehouseproxies`, {
        apiVersion: "gatehouse.dev/v1alpha1",
        kind: "GatehouseProxy",
        metadata: { name: "pdb", namespace: NS },
        spec: { podDisruptionBudget: { minAvailable: 1, maxUnavailable: 1 } },
      }),
      /exactly one of minAvailable and maxUnavailable/,
    );
    await srv().admin.request("POST", gatewayPath, {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "refused", namespace: NS },
      spec: {
        gatewayClassName: "gatehouse",
        infrastructure: { parametersRef: { group: "gatehouse.dev", kind: "GatehouseProxy", name: "both" } },
        listeners: [{ name: "http", port: 80, protocol: "HTTP" }],
      },
    });
    const api = new CountingApi(srv().admin);
    const out = await prepare(infrastructure(api));
    const status = out.statuses.find((s) => s.kind === "Gateway" && s.metadata.name === "refused");
    const accepted = (status?.status["conditions"] as Condition[]).find((c) => c.type === "Accepted");
    assert.equal(accepted?.reason, "InvalidParameters");
    assert.match(accepted?.message ?? "", /GatehouseProxy edge\/both not found/);
    assert.ok(!api.writes.some((w) => w.includes("gatehouse-refused")));
  });

  test("infrastructurePermissions() is enough: the controller's user applies and deletes with only those rules", async () => {
    await srv().apply([
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name: "gatehouse-infrastructure" },
        rules: infrastructurePermissions().map((p) => ({
          apiGroups: [p.group],
          resources: [p.resource],
          verbs: [...p.verbs],
        })),
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "gatehouse-infrastructure" },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "gatehouse-infrastructure",
        },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: CONTROLLER_USER }],
      },
    ]);
    await srv().admin.request("POST", gatewayPath, {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "rbac", namespace: NS },
      spec: { gatewayClassName: "gatehouse", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
    });
    const infra = infrastructure(new HttpKubeApi(srv().kubeConfig(TOKENS.controller)));
    const out = await prepare(infra);
    const programmed = (
      out.statuses.find((s) => s.metadata.name === "rbac")?.status["conditions"] as Condition[]
    ).find((c) => c.type === "Programmed");
    assert.equal(programmed?.reason, "AddressNotAssigned", programmed?.message);
    await get(`/apis/apps/v1/namespaces/${NS}/deployments/gatehouse-rbac`);
    await srv().admin.request(
      "PATCH",
      `${gatewayPath}/rbac`,
      { spec: { gatewayClassName: "someone-else" } },
      { contentType: "application/merge-patch+json" },
    );
    await prepare(infra);
    await assert.rejects(get(`/apis/apps/v1/namespaces/${NS}/deployments/gatehouse-rbac`), /404/);
  });

  test("a restarted controller takes back each Gateway's certificate from its Secret: no new certificate, no Secret change", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gatehouse-ca-"));
    try {
      const ca = await CertificateAuthority.open(new FileCAStore(dir));
      let issued = 0;
      const issuer = {
        issueClient: (g: { namespace: string; name: string }) => (issued++, ca.issueClient(g)),
        adoptClient: ca.adoptClient.bind(ca),
      };
      await srv().admin.request("POST", gatewayPath, {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "Gateway",
        metadata: { name: "restart", namespace: NS },
        spec: { gatewayClassName: "gatehouse", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
      });
      const start = () =>
        new KubernetesInfrastructure({
          api: srv().admin,
          issuer,
          dataplane: new StaticDataplane(),
          image: "ghcr.io/gatehouse/gatehouse:test",
          controllerAddress: "gatehouse.gatehouse-system.svc:9443",
        });
      await prepare(start());
      assert.equal(issued, 1);
      const secretPath = `/api/v1/namespaces/${NS}/secrets/gatehouse-restart`;
      const before = await get<{ metadata: { resourceVersion: string }; data: Record<string, string> }>(
        secretPath,
      );
      await prepare(start()); // a new process: nothing cached
      assert.equal(issued, 1, "the certificate in the Secret was adopted");
      const after = await get<{ metadata: { resourceVersion: string }; data: Record<string, string> }>(
        secretPath,
      );
      assert.equal(after.data["tls.crt"], before.data["tls.crt"]);
      assert.equal(
        after.metadata.resourceVersion,
        before.metadata.resourceVersion,
        "the Secret was not changed",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
