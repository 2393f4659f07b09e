// The mini-cluster: etcd, kube-apiserver and kube-controller-manager built from Go modules
// (conformance/scripts/build.sh), a host bridge as the node's address, the Gateway API v1.6.1 CRDs
// (experimental channel) and the fake kubelet. `startCluster` records every step in the run dir's
// state.json; `stopCluster` tears down whatever that record lists, in reverse order, even after a
// failed start.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, rm, rmdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { describe, Kube } from "./kube.ts";
import {
  createBridge,
  deleteLink,
  deleteNetns,
  intToIpv4,
  ipv4ToInt,
  linksWithPrefix,
  listNetns,
  parseCidr,
  pickPort,
  freePort,
} from "./net.ts";
import { createPki, randomToken } from "./pki.ts";
import {
  Fatal,
  isAlive,
  processStartTime,
  run,
  startProcess,
  stopProcess,
  waitFor,
  type ProcessRecord,
} from "./proc.ts";
import { readState, runDirFor, saveState, type ClusterState } from "./state.ts";
import type { KubeletConfig } from "./kubelet/config.ts";
import { deleteAllContainers } from "./kubelet/oci.ts";
import { bridgeNetfilter, deleteTable, tableExists } from "./services/host.ts";
import {
  DEFAULT_LB_CLASS,
  DEFAULT_LB_POOL,
  DEFAULT_LB_RANGE,
  type ServicesConfig,
} from "./services/proxy.ts";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BUILD_SCRIPT = join(REPO, "conformance/scripts/build.sh");
export const GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api@v1.6.1";
const KUBELET_MAIN = join(REPO, "conformance/minicluster/kubelet/main.ts");
const SERVICES_MAIN = join(REPO, "conformance/minicluster/services/main.ts");

export interface StartOptions {
  name: string;
  /** Bridge interface name (at most 15 characters). */
  bridge: string;
  /** The node's address with the bridge subnet, e.g. 10.244.0.1/16. */
  nodeAddress: string;
  /** Pod addresses, inside the bridge subnet. */
  podCIDR: string;
  serviceCIDR: string;
  nodeName: string;
  /** Start the fake kubelet too. */
  kubelet: boolean;
  /** Extra image → binary mappings for the kubelet (`REGEX=BINARY`). */
  images: string[];
  /**
   * Service networking (services/): ClusterIPs and load-balancer IPs programmed in nftables, and
   * load-balancer addresses assigned to Services of type LoadBalancer. Pods then reach the API
   * server through the `kubernetes` Service (KUBERNETES_SERVICE_HOST is its ClusterIP).
   */
  services: boolean;
  /** Automatic load-balancer addresses. */
  loadBalancerPool: string;
  /** `spec.loadBalancerIP` is honoured inside this range (it contains the pool). */
  loadBalancerRange: string;
  /** Services with this loadBalancerClass get addresses too (those without a class always do). */
  loadBalancerClass: string;
  log: (line: string) => void;
}

export const DEFAULTS: Omit<StartOptions, "log"> = {
  name: "default",
  bridge: "gh-br0",
  nodeAddress: "10.244.0.1/16",
  podCIDR: "10.244.1.0/24",
  serviceCIDR: "10.96.0.0/16",
  nodeName: "gatehouse-node",
  kubelet: true,
  images: [],
  services: true,
  loadBalancerPool: DEFAULT_LB_POOL,
  loadBalancerRange: DEFAULT_LB_RANGE,
  loadBalancerClass: DEFAULT_LB_CLASS,
};

/** The nftables table of a cluster's service proxy. */
export function servicesTableFor(name: string): string {
  return `gatehouse_mc_${name.replace(/-/g, "_")}`;
}

/** Runs conformance/scripts/build.sh and returns the bin dir it prints. */
export async function buildBinaries(log: (line: string) => void): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn("bash", [BUILD_SCRIPT], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line !== "") log(line);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const dir = stdout.trim().split("\n").pop() ?? "";
      if (code === 0 && dir !== "" && existsSync(dir)) resolvePromise(dir);
      else reject(new Error(`${BUILD_SCRIPT} failed (exit ${code ?? "signal"})`));
    });
  });
}

/** The experimental-channel CRD files listed in the v1.6.1 kustomization, from the module cache. */
export async function gatewayApiCrdFiles(): Promise<string[]> {
  const out = await run("go", ["mod", "download", "-json", GATEWAY_API_MODULE], {
    timeoutMs: 300_000,
    env: { ...process.env, GOWORK: "off", GOFLAGS: "-mod=mod" },
    cwd: join(REPO, "conformance/suite"),
  });
  const info = JSON.parse(out) as { Dir?: string; Error?: string };
  if (info.Dir === undefined) throw new Error(`go mod download ${GATEWAY_API_MODULE}: ${info.Error ?? out}`);
  const dir = join(info.Dir, "config/crd/experimental");
  const kustomization = parseYaml(readFileSync(join(dir, "kustomization.yaml"), "utf8")) as {
    resources?: string[];
  };
  const files = (kustomization.resources ?? []).map((file) => join(dir, file));
  if (files.length === 0) throw new Error(`no resources in ${dir}/kustomization.yaml`);
  return files;
}

function kubeconfigYaml(server: string, caFile: string, user: string, token: string): string {
  return toYaml({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "minicluster", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: "minicluster", context: { cluster: "minicluster", user } }],
    "current-context": "minicluster",
  });
}

function nodeIPOf(options: StartOptions): { ip: string; prefix: number; subnet: string } {
  const [ip, prefixText] = options.nodeAddress.split("/");
  const prefix = Number(prefixText);
  if (ip === undefined || !Number.isInteger(prefix))
    throw new Error(`bad --node-address ${options.nodeAddress}`);
  const cidr = parseCidr(options.nodeAddress);
  return { ip, prefix, subnet: `${cidr.network}/${cidr.prefix}` };
}

/** Starts a mini-cluster; returns its state. On failure everything started so far is torn down. */
export async function startCluster(options: StartOptions): Promise<ClusterState> {
  const log = options.log;
  if (process.getuid?.() !== 0) throw new Error("the mini-cluster needs root (network namespaces, a bridge)");
  const runDir = runDirFor(options.name);
  const existing = readState(options.name);
  if (existing !== undefined) {
    if (existing.processes.some(isAlive)) {
      throw new Error(
        `mini-cluster "${options.name}" is running (${existing.runDir}); stop it first: npm run minicluster -- stop`,
      );
    }
    log(`cleaning up what is left of a previous mini-cluster "${options.name}"`);
    await stopCluster(existing, log);
  } else if (existsSync(runDir)) {
    await rm(runDir, { recursive: true, force: true });
  }
  const started = Date.now();
  const binDir = await buildBinaries(log);
  await mkdir(join(runDir, "logs"), { recursive: true });

  const node = nodeIPOf(options);
  const serviceIP = intToIpv4(ipv4ToInt(parseCidr(options.serviceCIDR).network) + 1);
  const token = (suffix: string) => `${options.name}-${suffix}-${randomToken()}`;
  const runId = randomToken()
    .replace(/[^a-z0-9]/g, "")
    .slice(0, 3)
    .padEnd(3, "x");
  const state: ClusterState = {
    version: 1,
    name: options.name,
    runDir,
    binDir,
    createdAt: new Date().toISOString(),
    bridge: options.bridge,
    bridgeCreated: false,
    nodeIP: node.ip,
    nodeSubnet: node.subnet,
    nodeName: options.nodeName,
    podCIDR: options.podCIDR,
    serviceCIDR: options.serviceCIDR,
    apiserverURL: "",
    etcdClientURL: "",
    kubeletPort: 0,
    kubeconfig: join(runDir, "admin.kubeconfig"),
    netnsPrefix: `ghmc-${options.name}-`,
    vethPrefix: `gv${runId}`,
    processes: [],
    extraLinks: [],
  };
  await saveState(state);

  try {
    // --- network: the node's address ------------------------------------------------------
    await createBridge(options.bridge, node.ip, node.prefix);
    state.bridgeCreated = true;
    await saveState(state);
    log(`bridge ${options.bridge} ${options.nodeAddress}`);

    // --- certificates, tokens, kubeconfigs ------------------------------------------------
    const pki = await createPki(join(runDir, "pki"), {
      apiserverIPs: [node.ip, "127.0.0.1", serviceIP],
      nodeName: options.nodeName,
      nodeIP: node.ip,
    });
    const tokens = { admin: token("admin"), kcm: token("kcm"), kubelet: token("kubelet") };
    const tokenFile = join(runDir, "pki", "tokens.csv");
    await writeFile(
      tokenFile,
      [
        `${tokens.admin},admin,admin,"system:masters"`,
        `${tokens.kcm},system:kube-controller-manager,kube-controller-manager,"system:masters"`,
        `${tokens.kubelet},system:node:${options.nodeName},kubelet,"system:nodes,system:masters"`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const apiPort = await pickPort(node.ip, 6443);
    state.apiserverURL = `https://${node.ip}:${apiPort}`;
    await writeFile(state.kubeconfig, kubeconfigYaml(state.apiserverURL, pki.caCert, "admin", tokens.admin), {
      mode: 0o600,
    });
    const kcmKubeconfig = join(runDir, "kube-controller-manager.kubeconfig");
    await writeFile(
      kcmKubeconfig,
      kubeconfigYaml(state.apiserverURL, pki.caCert, "kube-controller-manager", tokens.kcm),
      { mode: 0o600 },
    );
    const kubeletKubeconfig = join(runDir, "kubelet.kubeconfig");
    await writeFile(
      kubeletKubeconfig,
      kubeconfigYaml(state.apiserverURL, pki.caCert, "kubelet", tokens.kubelet),
      { mode: 0o600 },
    );

    // --- etcd -------------------------------------------------------------------------------
    const clientPort = await freePort("127.0.0.1");
    let peerPort = await freePort("127.0.0.1");
    while (peerPort === clientPort) peerPort = await freePort("127.0.0.1");
    const etcdName = `gatehouse-${options.name}-${runId}`;
    state.etcdClientURL = `http://127.0.0.1:${clientPort}`;
    const etcd = startProcess(
      "etcd",
      join(binDir, "etcd"),
      [
        `--name=${etcdName}`,
        `--data-dir=${join(runDir, "etcd")}`,
        `--listen-client-urls=${state.etcdClientURL}`,
        `--advertise-client-urls=${state.etcdClientURL}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=${etcdName}=http://127.0.0.1:${peerPort}`,
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      join(runDir, "logs", "etcd.log"),
    );
    state.processes.push(etcd);
    await saveState(state);
    await waitFor("etcd", 30_000, async () => {
      if (!isAlive(etcd)) throw new Fatal(`etcd exited (see ${join(runDir, "logs", "etcd.log")})`);
      // Make sure the etcd answering on this port is ours (another one may hold the port).
      const res = await fetch(`${state.etcdClientURL}/v3/cluster/member/list`, {
        method: "POST",
        body: "{}",
      });
      const body = (await res.json()) as { members?: Array<{ name?: string }> };
      const names = (body.members ?? []).map((m) => m.name);
      if (!names.includes(etcdName))
        throw new Fatal(`the etcd on ${state.etcdClientURL} is not ours (${names.join(",")})`);
      const health = (await (await fetch(`${state.etcdClientURL}/health`)).json()) as { health?: string };
      return health.health === "true" ? true : undefined;
    });
    log(`etcd ${state.etcdClientURL} (pid ${etcd.pid})`);

    // --- kube-apiserver ----------------------------------------------------------------------
    const apiserver = startProcess(
      "kube-apiserver",
      join(binDir, "kube-apiserver"),
      [
        `--etcd-servers=${state.etcdClientURL}`,
        `--bind-address=${node.ip}`,
        `--secure-port=${apiPort}`,
        `--advertise-address=${node.ip}`,
        `--tls-cert-file=${pki.apiserverCert}`,
        `--tls-private-key-file=${pki.apiserverKey}`,
        `--client-ca-file=${pki.caCert}`,
        `--token-auth-file=${tokenFile}`,
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${pki.serviceAccountPub}`,
        `--service-account-signing-key-file=${pki.serviceAccountKey}`,
        `--service-cluster-ip-range=${options.serviceCIDR}`,
        "--endpoint-reconciler-type=none",
        `--kubelet-client-certificate=${pki.kubeletClientCert}`,
        `--kubelet-client-key=${pki.kubeletClientKey}`,
        "--kubelet-preferred-address-types=InternalIP",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        `--cert-dir=${join(runDir, "apiserver")}`,
      ],
      join(runDir, "logs", "kube-apiserver.log"),
    );
    state.processes.push(apiserver);
    await saveState(state);
    const kube = Kube.fromFile(state.kubeconfig);
    await waitFor("kube-apiserver /readyz", 60_000, async () => {
      if (!isAlive(apiserver))
        throw new Fatal(`kube-apiserver exited (see ${join(runDir, "logs", "kube-apiserver.log")})`);
      const ready = await kube.request<string>("GET", "/readyz", undefined, { timeoutMs: 2000 });
      return ready === "ok" ? true : undefined;
    });
    log(
      `kube-apiserver ${state.apiserverURL} (pid ${apiserver.pid}) ready after ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );

    // --- kube-controller-manager ----------------------------------------------------------------
    const kcm = startProcess(
      "kube-controller-manager",
      join(binDir, "kube-controller-manager"),
      [
        `--kubeconfig=${kcmKubeconfig}`,
        "--leader-elect=false",
        "--secure-port=0",
        [
          "--controllers=*",
          "-node-lifecycle-controller",
          "-taint-eviction-controller",
          "-device-taint-eviction-controller",
          "-node-ipam-controller",
          "-node-route-controller",
          "-cloud-node-lifecycle-controller",
          "-service-lb-controller",
          "-persistentvolume-attach-detach-controller",
        ].join(","),
        `--service-account-private-key-file=${pki.serviceAccountKey}`,
        `--root-ca-file=${pki.caCert}`,
        `--service-cluster-ip-range=${options.serviceCIDR}`,
        `--flex-volume-plugin-dir=${join(runDir, "kcm", "flexvolume")}`,
        "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10",
        "--concurrent-service-endpoint-syncs=10",
      ],
      join(runDir, "logs", "kube-controller-manager.log"),
    );
    state.processes.push(kcm);
    await saveState(state);
    await waitFor("kube-controller-manager (the default ServiceAccount)", 60_000, async () => {
      if (!isAlive(kcm))
        throw new Fatal(
          `kube-controller-manager exited (see ${join(runDir, "logs", "kube-controller-manager.log")})`,
        );
      await kube.request("GET", "/api/v1/namespaces/default/serviceaccounts/default");
      return true;
    });
    log(`kube-controller-manager (pid ${kcm.pid})`);

    // --- Gateway API CRDs -----------------------------------------------------------------------
    const files = await gatewayApiCrdFiles();
    await run(
      join(binDir, "kubectl"),
      [
        "--kubeconfig",
        state.kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        ...files.flatMap((f) => ["-f", f]),
      ],
      { timeoutMs: 120_000 },
    );
    await waitFor("Gateway API CRDs Established", 60_000, async () => {
      const list = await kube.request<{
        items: Array<{
          metadata: { name: string };
          status?: { conditions?: Array<{ type: string; status: string }> };
        }>;
      }>("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
      const ours = list.items.filter((c) => c.metadata.name.includes("gateway.networking"));
      const pending = ours.filter(
        (c) => !(c.status?.conditions ?? []).some((x) => x.type === "Established" && x.status === "True"),
      );
      return ours.length > 0 && pending.length === 0 ? true : undefined;
    });
    log(`Gateway API ${GATEWAY_API_MODULE.split("@")[1] ?? ""} CRDs (experimental channel) installed`);

    // --- service networking (kube-proxy and load-balancer allocator) ---------------------------
    if (options.services) await startServices(state, options, { ip: node.ip, port: apiPort }, serviceIP);

    // --- the fake kubelet ---------------------------------------------------------------------
    state.kubeletPort = await pickPort(node.ip, 10250);
    if (options.kubelet) await startKubelet(state, pki, kubeletKubeconfig, options);
    await saveState(state);
    log(`mini-cluster "${options.name}" up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return state;
  } catch (error) {
    log(`start failed: ${describe(error)}; tearing down`);
    await stopCluster(state, log, { keepRunDir: true });
    throw error;
  }
}

async function startServices(
  state: ClusterState,
  options: StartOptions,
  apiserver: { ip: string; port: number },
  serviceIP: string,
): Promise<void> {
  const table = servicesTableFor(state.name);
  if (await tableExists(table)) {
    throw new Error(`nftables table ip ${table} exists already (another mini-cluster "${state.name}"?)`);
  }
  const masqueradeAll = !(await bridgeNetfilter());
  const config: ServicesConfig = {
    kubeconfig: state.kubeconfig,
    table,
    bridge: state.bridge,
    nodeIP: state.nodeIP,
    nodeSubnet: state.nodeSubnet,
    serviceCIDR: state.serviceCIDR,
    apiserver,
    loadBalancerPool: options.loadBalancerPool,
    loadBalancerRange: options.loadBalancerRange,
    loadBalancerClass: options.loadBalancerClass,
    masqueradeAll,
  };
  const configPath = join(state.runDir, "services.json");
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const logFile = join(state.runDir, "logs", "services.log");
  state.servicesTable = table;
  const record = startProcess("services", process.execPath, [SERVICES_MAIN, "--config", configPath], logFile);
  state.processes.push(record);
  state.services = {
    kubernetesServiceIP: serviceIP,
    loadBalancerPool: options.loadBalancerPool,
    loadBalancerRange: options.loadBalancerRange,
    loadBalancerClass: options.loadBalancerClass,
  };
  await saveState(state);
  await waitFor("the service proxy's first ruleset", 30_000, async () => {
    if (!isAlive(record)) throw new Fatal(`the service proxy exited (see ${logFile})`);
    return (await tableExists(table)) ? true : undefined;
  });
  options.log(
    `service proxy (pid ${record.pid}): nftables table ip ${table}; load-balancer pool ${options.loadBalancerPool}` +
      (masqueradeAll ? " (no br_netfilter: all service traffic masqueraded)" : ""),
  );
}

async function startKubelet(
  state: ClusterState,
  pki: Awaited<ReturnType<typeof createPki>>,
  kubeconfig: string,
  options: StartOptions,
): Promise<void> {
  const config: KubeletConfig = {
    nodeName: state.nodeName,
    nodeIP: state.nodeIP,
    nodeSubnet: state.nodeSubnet,
    podCIDR: state.podCIDR,
    bridge: state.bridge,
    kubeconfig,
    apiserverURL: state.apiserverURL,
    runDir: join(state.runDir, "kubelet"),
    port: state.kubeletPort,
    tlsCert: pki.kubeletCert,
    tlsKey: pki.kubeletKey,
    clientCA: pki.caCert,
    netnsPrefix: state.netnsPrefix,
    vethPrefix: state.vethPrefix,
    binaries: {
      "echo-basic": join(state.binDir, "echo-basic"),
      coredns: join(state.binDir, "coredns"),
      lwepp: join(state.binDir, "lwepp"),
    },
    images: options.images,
    kubeletVersion: "v1.36.4",
    ...(state.services !== undefined
      ? {
          routes: [state.serviceCIDR, state.services.loadBalancerRange],
          kubernetesService: { host: state.services.kubernetesServiceIP, port: 443 },
        }
      : {}),
  };
  await mkdir(config.runDir, { recursive: true });
  const configPath = join(state.runDir, "kubelet.json");
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const logFile = join(state.runDir, "logs", "kubelet.log");
  const kubelet = startProcess("kubelet", process.execPath, [KUBELET_MAIN, "--config", configPath], logFile);
  state.processes.push(kubelet);
  await saveState(state);
  const kube = Kube.fromFile(state.kubeconfig);
  await waitFor(`node ${state.nodeName} Ready`, 30_000, async () => {
    if (!isAlive(kubelet)) throw new Fatal(`the fake kubelet exited (see ${logFile})`);
    const node = await kube.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
      "GET",
      `/api/v1/nodes/${state.nodeName}`,
    );
    return (node.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
      ? true
      : undefined;
  });
  options.log(
    `fake kubelet (pid ${kubelet.pid}): node ${state.nodeName} Ready, https://${state.nodeIP}:${state.kubeletPort}`,
  );
}

export interface StopOptions {
  /** Leave the run dir (logs) in place. */
  keepRunDir?: boolean;
}

/** Tears down everything `state` lists, in reverse order. Collects errors and throws them at the end. */
export async function stopCluster(
  state: ClusterState,
  log: (line: string) => void,
  options: StopOptions = {},
): Promise<void> {
  const errors: string[] = [];
  const attempt = async (what: string, action: () => Promise<unknown>) => {
    try {
      await action();
    } catch (error) {
      errors.push(`${what}: ${describe(error)}`);
    }
  };
  // Processes in reverse start order: (a run's controller,) kubelet, controller-manager, apiserver, etcd.
  for (const record of [...state.processes].reverse()) {
    await attempt(`stop ${record.name}`, async () => {
      const grace = record.name === "kubelet" ? 30_000 : 10_000;
      const how = await stopProcess(record, grace);
      if (how !== "gone") log(`${record.name} (pid ${record.pid}) ${how}`);
    });
  }
  // Container processes a killed kubelet left behind (it records each one while it runs).
  const pidDir = join(state.runDir, "kubelet", "pids");
  if (existsSync(pidDir)) {
    for (const file of readdirSync(pidDir)) {
      await attempt(`stop container process ${file}`, async () => {
        const record = JSON.parse(readFileSync(join(pidDir, file), "utf8")) as ProcessRecord;
        if (processStartTime(record.pid) === record.startTime) {
          log(`container process ${record.name} (pid ${record.pid}) ${await stopProcess(record, 2000)}`);
        }
      });
    }
  }
  // Containers of OCI images (runc) a killed kubelet left behind.
  await attempt("runc containers", async () => {
    for (const id of await deleteAllContainers(join(state.runDir, "kubelet", "runc"))) {
      log(`removed container ${id}`);
    }
  });
  // The service proxy removes its table when it stops; one a killed proxy left is removed here
  // (its routes go with the bridge).
  const table = state.servicesTable;
  if (table !== undefined) {
    await attempt(`nftables table ${table}`, async () => {
      if (await tableExists(table)) {
        await deleteTable(table);
        log(`removed nftables table ip ${table}`);
      }
    });
  }
  await attempt("network namespaces", async () => {
    for (const ns of (await listNetns()).filter((n) => n.startsWith(state.netnsPrefix))) {
      await deleteNetns(ns);
      log(`removed network namespace ${ns}`);
    }
  });
  await attempt("veths", async () => {
    for (const link of await linksWithPrefix(state.vethPrefix)) {
      await deleteLink(link);
      log(`removed ${link}`);
    }
  });
  for (const link of state.extraLinks) {
    await attempt(`interface ${link}`, async () => {
      if (await deleteLink(link)) log(`removed ${link}`);
    });
  }
  if (state.bridgeCreated) {
    await attempt(`bridge ${state.bridge}`, async () => {
      if (await deleteLink(state.bridge)) log(`removed bridge ${state.bridge}`);
    });
  }
  if (errors.length === 0 && options.keepRunDir !== true) {
    await attempt("run dir", () => rm(state.runDir, { recursive: true, force: true }));
    await rmdir(dirname(state.runDir)).catch(() => undefined); // the home dir, when it is empty now
  } else if (errors.length === 0) {
    await attempt("state", () => rm(join(state.runDir, "state.json"), { force: true }));
  }
  if (errors.length > 0) throw new Error(`teardown incomplete:\n  ${errors.join("\n  ")}`);
}

/** Registers a process started by someone else (e.g. the conformance run's controller) for `stop`. */
export async function registerProcess(state: ClusterState, record: ProcessRecord): Promise<void> {
  state.processes.push(record);
  await saveState(state);
}
