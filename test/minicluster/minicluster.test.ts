// Integration test of the mini-cluster and the fake kubelet on this machine: control plane, node,
// pods in network namespaces reachable from the host, secret volumes, logs through the API server,
// an unknown image, deletion, and a teardown that leaves nothing behind. Needs root and the binaries
// of conformance/scripts/build.sh, takes ~30 s: opt in with GATEHOUSE_MINICLUSTER_IT=1. Uses its
// own name, bridge and subnet, so it does not disturb a mini-cluster started by hand.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULTS, startCluster, stopCluster } from "../../conformance/minicluster/cluster.ts";
import { isNotFound, Kube } from "../../conformance/minicluster/kube.ts";
import { linkExists, listNetns } from "../../conformance/minicluster/net.ts";
import { isAlive, run, waitFor } from "../../conformance/minicluster/proc.ts";
import type { ClusterState } from "../../conformance/minicluster/state.ts";
import { tableExists } from "../../conformance/minicluster/services/host.ts";
import type { Pod } from "../../conformance/minicluster/kubelet/types.ts";

const skip =
  process.env["GATEHOUSE_MINICLUSTER_IT"] !== "1"
    ? "set GATEHOUSE_MINICLUSTER_IT=1 to run (needs root; builds binaries with conformance/scripts/build.sh)"
    : process.getuid?.() !== 0
      ? "needs root"
      : false;

const NS = "itest";

describe("mini-cluster with the fake kubelet", { skip }, () => {
  let state: ClusterState;
  let kube: Kube;
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), "gh-minicluster-it-"));
    state = await startCluster({
      ...DEFAULTS,
      name: "itest",
      bridge: "gh-br9",
      nodeAddress: "10.246.0.1/16",
      podCIDR: "10.246.1.0/24",
      serviceCIDR: "10.97.0.0/16",
      loadBalancerPool: "10.247.0.0/24",
      loadBalancerRange: "10.247.0.0/16",
      log: () => undefined,
    });
    kube = Kube.fromFile(state.kubeconfig);
  });

  after(async () => {
    if (state !== undefined) await stopCluster(state, () => undefined).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  });

  const pods = async (selector: string) =>
    (
      await kube.request<{ items: Pod[] }>("GET", `/api/v1/namespaces/${NS}/pods`, undefined, {
        query: { labelSelector: selector },
      })
    ).items;

  test("runs echo-basic with a TLS secret volume, reachable on its pod IP", async () => {
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=itest",
      "-keyout",
      join(tmp, "k"),
      "-out",
      join(tmp, "c"),
    ]);
    await kube.request("POST", "/api/v1/namespaces", { metadata: { name: NS } });
    await kube.request("POST", `/api/v1/namespaces/${NS}/secrets`, {
      metadata: { name: "tls" },
      type: "kubernetes.io/tls",
      data: {
        "tls.crt": (await readFile(join(tmp, "c"))).toString("base64"),
        "tls.key": (await readFile(join(tmp, "k"))).toString("base64"),
      },
    });
    await kube.request("POST", `/apis/apps/v1/namespaces/${NS}/deployments`, {
      metadata: { name: "echo" },
      spec: {
        replicas: 2,
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
                  { name: "TLS_SERVER_CERT", value: "/etc/tls/crt" },
                  { name: "TLS_SERVER_PRIVKEY", value: "/etc/tls/key" },
                ],
                volumeMounts: [{ name: "tls", mountPath: "/etc/tls" }],
              },
            ],
            volumes: [
              {
                name: "tls",
                secret: {
                  secretName: "tls",
                  items: [
                    { key: "tls.crt", path: "crt" },
                    { key: "tls.key", path: "key" },
                  ],
                },
              },
            ],
          },
        },
      },
    });
    const ready = await waitFor("2 Ready echo pods", 60_000, async () => {
      const list = await pods("app=echo");
      const ok = list.filter((p) =>
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      );
      return ok.length === 2 ? ok : undefined;
    });
    for (const pod of ready) {
      const ip = pod.status?.podIP ?? "";
      assert.match(ip, /^10\.246\.1\.\d+$/);
      assert.equal(pod.status?.hostIP, "10.246.0.1");
      const body = (await (await fetch(`http://${ip}:3000/itest`)).json()) as {
        pod?: string;
        namespace?: string;
      };
      assert.equal(body.pod, pod.metadata.name);
      assert.equal(body.namespace, NS);
      const https = await run("curl", ["-sk", "-m", "5", `https://${ip}:8443/tls`]);
      assert.match(https, /"path": "\/tls"/);
    }
    // An EndpointSlice needs the Node: it lists both pods.
    await waitFor("EndpointSlice with 2 endpoints", 30_000, async () => {
      await kube
        .request("POST", `/api/v1/namespaces/${NS}/services`, {
          metadata: { name: "echo" },
          spec: { selector: { app: "echo" }, ports: [{ port: 80, targetPort: 3000 }] },
        })
        .catch(() => undefined);
      const slices = await kube.request<{ items: Array<{ endpoints?: unknown[] }> }>(
        "GET",
        `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`,
        undefined,
        { query: { labelSelector: "kubernetes.io/service-name=echo" } },
      );
      return slices.items[0]?.endpoints?.length === 2 ? true : undefined;
    });
  });

  test("serves logs through the API server, honouring sinceTime and timestamps", async () => {
    const [pod] = await pods("app=echo");
    assert.ok(pod);
    // sinceTime has a resolution of one second: let the start-up lines fall into an earlier second.
    await sleep(2000);
    const since = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await fetch(`http://${pod.status?.podIP ?? ""}:3000/logged-path`);
    const path = `/api/v1/namespaces/${NS}/pods/${pod.metadata.name}/log`;
    const logs = await waitFor("the request in the logs", 10_000, async () => {
      const text = await kube.request<string>("GET", path, undefined, {
        query: { container: "echo", sinceTime: since, timestamps: true },
      });
      return text.includes("Echoing back request made to /logged-path to client") ? text : undefined;
    });
    assert.match(logs, /^\d{4}-\d{2}-\d{2}T\S+Z Echoing back request made to \/logged-path/m);
    assert.doesNotMatch(logs, /Starting server/, "lines before sinceTime are left out");
    const tail = await kube.request<string>("GET", path, undefined, { query: { tailLines: 1 } });
    assert.equal(tail.trimEnd().split("\n").length, 1);
  });

  test("Service networking: a load-balancer address from the pool, reachable from the host and pods; the kubernetes Service from a pod", async () => {
    await kube.request(
      "PATCH",
      `/api/v1/namespaces/${NS}/services/echo`,
      { spec: { type: "LoadBalancer" } },
      { contentType: "application/merge-patch+json" },
    );
    const address = await waitFor("a load-balancer address", 20_000, async () => {
      const svc = await kube.request<{
        status?: { loadBalancer?: { ingress?: Array<{ ip?: string; ipMode?: string }> } };
      }>("GET", `/api/v1/namespaces/${NS}/services/echo`);
      return svc.status?.loadBalancer?.ingress?.[0];
    });
    assert.deepEqual(address, { ip: "10.247.0.1", ipMode: "VIP" });
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      const body = (await (await fetch(`http://10.247.0.1/lb`)).json()) as { pod?: string };
      seen.add(body.pod ?? "");
    }
    assert.deepEqual([...seen].sort(), (await pods("app=echo")).map((p) => p.metadata.name).sort());
    const podNetns = (await listNetns()).find((n) => n.startsWith(state.netnsPrefix));
    assert.ok(podNetns);
    const viaLb = await run("ip", [
      "netns",
      "exec",
      podNetns,
      "curl",
      "-s",
      "-m",
      "5",
      "http://10.247.0.1/from-pod",
    ]);
    assert.match(viaLb, /"path": "\/from-pod"/);
    // The kubernetes Service (10.97.0.1:443) reaches the API server; the kubelet points pods at it.
    const version = await run("ip", [
      "netns",
      "exec",
      podNetns,
      "curl",
      "-sk",
      "-m",
      "5",
      "https://10.97.0.1/version",
    ]);
    assert.match(version, /"gitVersion": "v1\.36/);
  });

  test("leaves a pod with an unknown image Pending with ErrImagePull", async () => {
    await kube.request("POST", `/api/v1/namespaces/${NS}/pods`, {
      metadata: { name: "unknown" },
      spec: { containers: [{ name: "c", image: "example.invalid/nothing:1" }] },
    });
    const pod = await waitFor("ErrImagePull", 20_000, async () => {
      const p = await kube.request<Pod>("GET", `/api/v1/namespaces/${NS}/pods/unknown`);
      return p.status?.containerStatuses?.[0]?.state.waiting?.reason === "ErrImagePull" ? p : undefined;
    });
    assert.equal(pod.status?.phase, "Pending");
    assert.match(pod.status?.containerStatuses?.[0]?.state.waiting?.message ?? "", /no local binary/);
  });

  test("deleting the namespace stops the pods and removes their network namespaces", async () => {
    assert.ok((await listNetns()).some((n) => n.startsWith(state.netnsPrefix)));
    await kube.request("DELETE", `/api/v1/namespaces/${NS}`);
    await waitFor("namespace gone", 60_000, async () => {
      try {
        await kube.request("GET", `/api/v1/namespaces/${NS}`);
        return undefined;
      } catch (error) {
        if (isNotFound(error)) return true;
        throw error;
      }
    });
    assert.deepEqual(
      (await listNetns()).filter((n) => n.startsWith(state.netnsPrefix)),
      [],
    );
  });

  test("stop leaves nothing behind", async () => {
    await stopCluster(state, () => undefined);
    for (const p of state.processes) assert.equal(isAlive(p), false, p.name);
    assert.equal(await linkExists("gh-br9"), false);
    assert.equal(await tableExists("gatehouse_mc_itest"), false);
    assert.equal(existsSync(state.runDir), false);
    assert.deepEqual(
      (await listNetns()).filter((n) => n.startsWith(state.netnsPrefix)),
      [],
    );
  });
});
