// End-to-end test of the per-Gateway data plane (`--infrastructure kubernetes`) in a mini-cluster of
// its own: the controller from the OCI image installed with the chart, a Gateway whose Deployment,
// Service, ServiceAccount and Secret the controller applies, traffic through the Service's
// load-balancer address, and failed requests counted while the data plane rolls and while the
// controller restarts. Needs root, the binaries of conformance/scripts/build.sh and the image of
// `npm run image` (built here when missing; cached); ~2-3 min: opt in with
// GATEHOUSE_MINICLUSTER_IT=1. Its cluster ("dptest", gh-br8, 10.248.0.0/16, services 10.98.0.0/16,
// load balancers 10.249.0.0/24) never collides with the conformance run's ("default") or with
// minicluster.test.ts's ("itest"). GATEHOUSE_MINICLUSTER_KEEP_LOGS=1 keeps the run dir (logs).
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  buildImageAndHelm,
  IMAGE_ARCHIVE,
  IMAGE_PATTERN,
  installController,
  NAMESPACE as CONTROLLER_NS,
} from "../../conformance/chart.ts";
import { DEFAULTS, startCluster, stopCluster } from "../../conformance/minicluster/cluster.ts";
import { isNotFound, Kube } from "../../conformance/minicluster/kube.ts";
import { waitFor } from "../../conformance/minicluster/proc.ts";
import type { ClusterState } from "../../conformance/minicluster/state.ts";
import type { Pod } from "../../conformance/minicluster/kubelet/types.ts";
import { GATEWAY_NAME_LABEL, PARAMETERS_HASH_ANNOTATION } from "../../src/infra/kubernetes/desired.ts";
import { request, type Response } from "../e2e/client.ts";
import { load as startLoad, type Load } from "../e2e/load.ts";

const skip =
  process.env["GATEHOUSE_MINICLUSTER_IT"] !== "1"
    ? "set GATEHOUSE_MINICLUSTER_IT=1 to run (needs root; builds the binaries and the image)"
    : process.getuid?.() !== 0
      ? "needs root"
      : false;

const NS = "dptest";
const GATEWAY = "edge";
const OBJECT = `gatehouse-${GATEWAY}`;
const DISTRIBUTION_IP = "10.98.100.100";
const GW_API = "/apis/gateway.networking.k8s.io/v1";
const PROXY_PATH = `/apis/gatehouse.dev/v1alpha1/namespaces/${NS}/gatehouseproxies/${GATEWAY}`;
const log = (line: string): void => void process.stderr.write(`# ${line}\n`);

interface Condition {
  type: string;
  status: string;
  reason?: string;
}
interface Meta {
  name: string;
  uid: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
}
interface GatewayObject {
  metadata: Meta;
  status?: { addresses?: Array<{ value: string }>; conditions?: Condition[] };
}

const isReady = (p: Pod): boolean =>
  p.metadata.deletionTimestamp === undefined &&
  (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

/** echo-basic's JSON answer from a pod of our namespace. */
const fromEcho = (res: Response): boolean => {
  if (res.status !== 200) return false;
  try {
    const body = JSON.parse(res.body) as { namespace?: string; pod?: string };
    return body.namespace === NS && (body.pod ?? "").startsWith("echo-");
  } catch {
    return false;
  }
};

/** One metric's value from Prometheus text (the first line matching name and labels). */
function metric(text: string, name: string, labels = ""): number | undefined {
  const escaped = `${name}${labels === "" ? "" : `\\{${labels.replace(/[{}"]/g, (c) => `\\${c}`)}\\}`}`;
  const m = new RegExp(`^${escaped}(?:\\{[^}]*\\})? ([-+0-9.eE]+)$`, "m").exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

describe("per-Gateway data plane in a mini-cluster", { skip, timeout: 360_000 }, () => {
  let state: ClusterState | undefined;
  let kube: Kube;
  let address: string;

  const get = <T>(path: string): Promise<T> => kube.request<T>("GET", path);
  const gone = async (path: string): Promise<boolean> => {
    try {
      await kube.request("GET", path);
      return false;
    } catch (error) {
      if (isNotFound(error)) return true;
      throw error;
    }
  };
  const dataplanePods = async (): Promise<Pod[]> =>
    (
      await kube.request<{ items: Pod[] }>("GET", `/api/v1/namespaces/${NS}/pods`, undefined, {
        query: { labelSelector: `${GATEWAY_NAME_LABEL}=${GATEWAY}` },
      })
    ).items;
  const podMetrics = async (pod: Pod): Promise<string> =>
    (
      await fetch(`http://${pod.status?.podIP ?? ""}:9901/metrics`, { signal: AbortSignal.timeout(3000) })
    ).text();
  const get200 = (path: string): Promise<Response> =>
    request({ address, port: 80, host: "dp.example", path, timeoutMs: 3000 });
  /** Each data-plane pod's phase, readiness and last log lines (for failure messages). */
  const describePods = async (): Promise<string> => {
    const lines: string[] = [];
    for (const pod of await dataplanePods()) {
      const logs = await kube
        .request<string>("GET", `/api/v1/namespaces/${NS}/pods/${pod.metadata.name}/log`, undefined, {
          query: { tailLines: 15 },
        })
        .catch((error: unknown) => `(no logs: ${String(error)})`);
      lines.push(
        `--- ${pod.metadata.name} ${pod.status?.phase ?? "?"} ready=${isReady(pod)} deleting=${pod.metadata.deletionTimestamp !== undefined}`,
        logs.trimEnd(),
      );
    }
    return lines.join("\n");
  };
  /** waitFor, and the data-plane pods described when it times out. */
  const waitForPods = async <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>) => {
    try {
      return await waitFor(what, timeoutMs, check, 100);
    } catch (error) {
      throw new Error(`${String(error)}\n${await describePods()}`, { cause: error });
    }
  };
  /** The Deployment's pods once they are `replicas` Ready pods of one template, no other left. */
  const settledPods = async (replicas: number): Promise<Pod[] | undefined> => {
    const pods = await dataplanePods();
    const hashes = new Set(pods.map((p) => p.metadata.labels?.["pod-template-hash"]));
    return pods.length === replicas && hashes.size === 1 && pods.every(isReady) ? pods : undefined;
  };

  // Every load is stopped after its test, also when the test failed half-way.
  const loads: Load[] = [];
  const load = (...args: Parameters<typeof startLoad>): Load => {
    const l = startLoad(...args);
    loads.push(l);
    return l;
  };
  afterEach(async () => {
    for (const l of loads.splice(0)) await l.stop();
  });

  before(async () => {
    const started = Date.now();
    const { digest, helm } = await buildImageAndHelm(log);
    state = await startCluster({
      ...DEFAULTS,
      name: "dptest",
      bridge: "gh-br8",
      nodeAddress: "10.248.0.1/16",
      podCIDR: "10.248.1.0/24",
      serviceCIDR: "10.98.0.0/16",
      loadBalancerPool: "10.249.0.0/24",
      loadBalancerRange: "10.249.0.0/16",
      services: true,
      images: [`${IMAGE_PATTERN}=${IMAGE_ARCHIVE}`],
      log: () => undefined,
    });
    kube = Kube.fromFile(state.kubeconfig);
    await kube.request("POST", `${GW_API}/gatewayclasses`, {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GatewayClass",
      metadata: { name: "gatehouse" },
      spec: { controllerName: "gatehouse.dev/gateway-controller" },
    });
    await installController({
      infrastructure: "kubernetes",
      helm,
      kubeconfig: state.kubeconfig,
      digest,
      adminPort: 9901,
      distributionClusterIP: DISTRIBUTION_IP,
    });
    await kube.request("POST", "/api/v1/namespaces", { metadata: { name: NS } });
    await kube.request("POST", `/apis/apps/v1/namespaces/${NS}/deployments`, {
      metadata: { name: "echo" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "echo" } },
        template: {
          metadata: { labels: { app: "echo" } },
          spec: {
            containers: [
              {
                name: "echo",
                image: "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
                env: [
                  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                  { name: "NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                ],
              },
            ],
          },
        },
      },
    });
    await kube.request("POST", `/api/v1/namespaces/${NS}/services`, {
      metadata: { name: "echo" },
      spec: { selector: { app: "echo" }, ports: [{ port: 8080, targetPort: 3000 }] },
    });
    await kube.request("POST", `/apis/gatehouse.dev/v1alpha1/namespaces/${NS}/gatehouseproxies`, {
      apiVersion: "gatehouse.dev/v1alpha1",
      kind: "GatehouseProxy",
      metadata: { name: GATEWAY },
      spec: { replicas: 2 },
    });
    await kube.request("POST", `${GW_API}/namespaces/${NS}/gateways`, {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: GATEWAY },
      spec: {
        gatewayClassName: "gatehouse",
        infrastructure: {
          labels: { "example.com/team": "edge" },
          annotations: { "example.com/owner": "dptest" },
          parametersRef: { group: "gatehouse.dev", kind: "GatehouseProxy", name: GATEWAY },
        },
        listeners: [{ name: "http", port: 80, protocol: "HTTP" }],
      },
    });
    await kube.request("POST", `${GW_API}/namespaces/${NS}/httproutes`, {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: "echo" },
      spec: {
        parentRefs: [{ name: GATEWAY }],
        rules: [{ backendRefs: [{ name: "echo", port: 8080 }] }],
      },
    });
    log(`cluster, controller and resources up after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  after(async () => {
    if (state === undefined) return;
    const keep = process.env["GATEHOUSE_MINICLUSTER_KEEP_LOGS"] === "1";
    if (keep) log(`run dir kept: ${state.runDir}`);
    await stopCluster(state, () => undefined, { keepRunDir: keep }).catch((error: unknown) =>
      log(`stop: ${String(error)}`),
    );
  });

  test("a Gateway gets its objects, an address, Programmed True, and serves its route", async () => {
    const started = Date.now();
    const gateway = await waitFor("the Gateway Programmed with an address", 120_000, async () => {
      const gw = await get<GatewayObject>(`${GW_API}/namespaces/${NS}/gateways/${GATEWAY}`);
      const programmed = (gw.status?.conditions ?? []).some(
        (c) => c.type === "Programmed" && c.status === "True",
      );
      return programmed && (gw.status?.addresses?.length ?? 0) > 0 ? gw : undefined;
    });
    log(`Gateway Programmed after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    address = gateway.status?.addresses?.[0]?.value ?? "";
    assert.match(address, /^10\.249\.0\.\d+$/, "an address of the load-balancer pool");

    for (const path of [
      `/api/v1/namespaces/${NS}/serviceaccounts/${OBJECT}`,
      `/api/v1/namespaces/${NS}/secrets/${OBJECT}`,
      `/apis/apps/v1/namespaces/${NS}/deployments/${OBJECT}`,
      `/api/v1/namespaces/${NS}/services/${OBJECT}`,
    ]) {
      const { metadata } = await get<{ metadata: Meta }>(path);
      assert.equal(metadata.labels?.[GATEWAY_NAME_LABEL], GATEWAY, path);
      assert.equal(metadata.labels?.["example.com/team"], "edge", path);
      assert.equal(metadata.annotations?.["example.com/owner"], "dptest", path);
      assert.deepEqual(
        (metadata.ownerReferences ?? []).map((o) => [o.kind, o.name, o.uid, o.controller]),
        [["Gateway", GATEWAY, gateway.metadata.uid, true]],
        path,
      );
    }
    const svc = await get<{
      spec: { type: string };
      status?: { loadBalancer?: { ingress?: Array<{ ip?: string }> } };
    }>(`/api/v1/namespaces/${NS}/services/${OBJECT}`);
    assert.equal(svc.spec.type, "LoadBalancer");
    assert.equal(svc.status?.loadBalancer?.ingress?.[0]?.ip, address);
    const pods = await waitForPods("2 Ready data-plane pods", 60_000, () => settledPods(2));
    for (const pod of pods) {
      assert.equal(pod.metadata.labels?.["example.com/team"], "edge");
      assert.equal(pod.metadata.annotations?.["example.com/owner"], "dptest");
    }

    const res = await waitFor("an answer of the backend through the address", 20_000, async () => {
      const r = await get200("/");
      return fromEcho(r) ? r : undefined;
    });
    assert.equal(res.status, 200);
  });

  test("a route change reaches the pods over the stream without rolling them", async () => {
    const before = await settledPods(2);
    assert.ok(before, "2 settled pods");
    const applied = async (pod: Pod) =>
      metric(await podMetrics(pod), "gatehouse_dataplane_configs_total", 'result="applied"') ?? 0;
    const appliedBefore = await Promise.all(before.map(applied));
    assert.equal((await get200("/v2")).headers["x-dptest-route"], undefined);
    const traffic = load({ ip: address, port: 80 }, ["keep-alive"], { host: "dp.example", accept: fromEcho });
    const started = Date.now();
    await kube.request(
      "PATCH",
      `${GW_API}/namespaces/${NS}/httproutes/echo`,
      {
        spec: {
          rules: [
            { backendRefs: [{ name: "echo", port: 8080 }] },
            {
              matches: [{ path: { type: "PathPrefix", value: "/v2" } }],
              filters: [
                {
                  type: "ResponseHeaderModifier",
                  responseHeaderModifier: { add: [{ name: "x-dptest-route", value: "v2" }] },
                },
              ],
              backendRefs: [{ name: "echo", port: 8080 }],
            },
          ],
        },
      },
      { contentType: "application/merge-patch+json" },
    );
    // Both pods serve it (several requests: the address spreads connections over the pods).
    await waitFor("the new rule on every pod", 30_000, async () => {
      for (let i = 0; i < 10; i++)
        if ((await get200("/v2")).headers["x-dptest-route"] !== "v2") return undefined;
      return true;
    });
    log(`route change served after ${Date.now() - started} ms`);
    const { ok, failures } = await traffic.stop();
    log(`route change under load: ${ok} requests, ${failures.length} failed`);
    assert.deepEqual(failures, []);
    const after = await dataplanePods();
    assert.deepEqual(
      after.map((p) => [p.metadata.name, p.status?.containerStatuses?.[0]?.restartCount]).sort(),
      before.map((p) => [p.metadata.name, 0]).sort(),
      "the same pods, not restarted",
    );
    const appliedAfter = await Promise.all(before.map(applied));
    appliedAfter.forEach((n, i) =>
      assert.ok(n > (appliedBefore[i] ?? 0), "each pod applied the new configuration"),
    );
  });

  test("a GatehouseProxy change rolls the data plane without a failed request", async () => {
    const before = await settledPods(2);
    assert.ok(before, "2 settled pods");
    const oldHash = before[0]?.metadata.labels?.["pod-template-hash"];
    const oldParams = before[0]?.metadata.annotations?.[PARAMETERS_HASH_ANNOTATION];
    const traffic = load({ ip: address, port: 80 }, ["keep-alive", "keep-alive", "new-connection"], {
      host: "dp.example",
      accept: fromEcho,
    });
    // The old pods' logs, followed until their containers end: how their agents shut down.
    const oldLogs = before.map((pod) =>
      kube
        .request<string>("GET", `/api/v1/namespaces/${NS}/pods/${pod.metadata.name}/log`, undefined, {
          query: { follow: true },
          timeoutMs: 120_000,
        })
        .catch((error: unknown) => `(log: ${String(error)})`),
    );
    await sleep(1000);
    const started = Date.now();
    await kube.request(
      "PATCH",
      PROXY_PATH,
      { spec: { podAnnotations: { "example.com/rollout": "1" }, haproxy: { maxconn: 4000 } } },
      { contentType: "application/merge-patch+json" },
    );
    const after = await waitForPods("the old pods replaced and gone", 90_000, async () => {
      const pods = await settledPods(2);
      return pods !== undefined && pods[0]?.metadata.labels?.["pod-template-hash"] !== oldHash
        ? pods
        : undefined;
    });
    const rollMs = Date.now() - started;
    await sleep(1000);
    const { ok, failures } = await traffic.stop();
    log(`roll: ${(rollMs / 1000).toFixed(1)} s; ${ok} requests, ${failures.length} failed`);
    for (const f of failures.slice(0, 10)) log(`  failed: ${f}`);
    // Each old pod's agent drained and stopped HAProxy gracefully before its container ended (the
    // last lines its log had while the pod could still be read).
    for (const [i, pod] of before.entries()) {
      const text = (await oldLogs[i]) ?? "";
      const at = (msg: string): string | undefined =>
        text
          .split("\n")
          .map((line) => {
            try {
              return JSON.parse(line) as { time?: string; msg?: string };
            } catch {
              return {};
            }
          })
          .find((entry) => entry.msg?.startsWith(msg))?.time;
      const shutdown = at("shutting down");
      const drained = at("drain time over");
      // The agent's own last line can be cut off when the container's log stream closes at its
      // exit; HAProxy's master saying all workers exited with 0 shows the same graceful stop.
      const stopped = at("stopped") ?? at("All workers exited. Exiting... (0)");
      log(`  ${pod.metadata.name}: shutting down ${shutdown}, drain over ${drained}, stopped ${stopped}`);
      assert.ok(
        shutdown !== undefined && drained !== undefined && stopped !== undefined,
        `${pod.metadata.name} shut down gracefully:\n${text.split("\n").slice(-8).join("\n")}`,
      );
    }
    assert.notEqual(after[0]?.metadata.annotations?.[PARAMETERS_HASH_ANNOTATION], oldParams);
    for (const pod of after) {
      assert.equal(pod.metadata.annotations?.["example.com/rollout"], "1");
      assert.ok(!before.some((b) => b.metadata.uid === pod.metadata.uid), "a new pod");
    }
    const deployment = await get<{
      spec: { template: { spec: { containers: Array<{ args: string[] }> } } };
    }>(`/apis/apps/v1/namespaces/${NS}/deployments/${OBJECT}`);
    assert.match(deployment.spec.template.spec.containers[0]?.args.join(" ") ?? "", /--maxconn 4000/);
    assert.ok(ok > 100, `steady load (${ok} requests)`);
    assert.deepEqual(failures, []);
  });

  test("the controller restarting disturbs no traffic; the pods re-sync without a reload", async () => {
    const pods = await settledPods(2);
    assert.ok(pods, "2 settled pods");
    const snapshot = async (pod: Pod) => {
      const text = await podMetrics(pod);
      return {
        applied: metric(text, "gatehouse_dataplane_configs_total", 'result="applied"') ?? 0,
        unchanged: metric(text, "gatehouse_dataplane_configs_total", 'result="unchanged"') ?? 0,
        connected: metric(text, "gatehouse_dataplane_controller_connected"),
        haproxyStart: metric(text, "haproxy_process_start_time_seconds"),
      };
    };
    const before = await Promise.all(pods.map(snapshot));
    for (const b of before) assert.equal(b.connected, 1);
    const controllers = async () =>
      (
        await kube.request<{ items: Pod[] }>("GET", `/api/v1/namespaces/${CONTROLLER_NS}/pods`, undefined, {
          query: { labelSelector: "app.kubernetes.io/component=controller" },
        })
      ).items;
    const [old] = await controllers();
    assert.ok(old);
    const traffic = load({ ip: address, port: 80 }, ["keep-alive", "new-connection"], {
      host: "dp.example",
      accept: fromEcho,
    });
    const started = Date.now();
    await kube.request("DELETE", `/api/v1/namespaces/${CONTROLLER_NS}/pods/${old.metadata.name}`);
    await waitFor("a new controller pod Ready", 60_000, async () => {
      const list = await controllers();
      return list.some((p) => p.metadata.uid !== old.metadata.uid && isReady(p)) ? true : undefined;
    });
    const after = await waitFor("every pod re-synced", 60_000, async () => {
      const now = await Promise.all(pods.map(snapshot));
      return now.every((n, i) => n.connected === 1 && n.unchanged > (before[i]?.unchanged ?? 0))
        ? now
        : undefined;
    });
    log(`controller restart: pods re-synced after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const { ok, failures } = await traffic.stop();
    log(`controller restart under load: ${ok} requests, ${failures.length} failed`);
    assert.deepEqual(failures, []);
    after.forEach((a, i) => {
      assert.equal(a.applied, before[i]?.applied, "nothing applied again");
      assert.equal(a.haproxyStart, before[i]?.haproxyStart, "HAProxy not restarted");
    });
    assert.deepEqual(
      (await dataplanePods()).map((p) => p.metadata.uid).sort(),
      pods.map((p) => p.metadata.uid).sort(),
      "the same data-plane pods",
    );
  });

  test("deleting the Gateway deletes its objects (garbage collection)", async () => {
    await kube.request("DELETE", `${GW_API}/namespaces/${NS}/gateways/${GATEWAY}`);
    const started = Date.now();
    const paths = [
      `/api/v1/namespaces/${NS}/serviceaccounts/${OBJECT}`,
      `/api/v1/namespaces/${NS}/secrets/${OBJECT}`,
      `/apis/apps/v1/namespaces/${NS}/deployments/${OBJECT}`,
      `/api/v1/namespaces/${NS}/services/${OBJECT}`,
    ];
    for (const path of paths)
      await waitFor(`${path} deleted`, 60_000, async () => ((await gone(path)) ? true : undefined));
    await waitFor("the data-plane pods gone", 60_000, async () =>
      (await dataplanePods()).length === 0 ? true : undefined,
    );
    log(`objects and pods gone ${((Date.now() - started) / 1000).toFixed(1)} s after the Gateway`);
    // Nothing of ours answers there any more (the address is not routed to the bridge now; what
    // answers off the machine, if anything, is not the backend).
    const answer = await get200("/").then(fromEcho, () => false);
    assert.equal(answer, false, "the backend no longer answers on the address");
  });
});
