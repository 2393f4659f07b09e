// A real, throw-away control plane for integration tests: etcd + kube-apiserver on loopback in a
// temp dir, static bearer tokens, RBAC on, the Gateway API v1.6.1 CRDs (experimental channel, from
// the Go module cache) and the Inference Extension v1.6.0 InferencePool CRD (the chart's generated
// copy, charts/gatehouse/files/crds) installed. No controllers, no nodes: enough for informers, status writes,
// leases and RBAC checks. The binaries come from conformance/scripts/build.sh; without them the
// tests that need this skip with a message naming the script.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { HttpKubeApi, type KubeApi } from "../client.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
export const BUILD_SCRIPT = "conformance/scripts/build.sh";
export const GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api@v1.6.1";
/** The InferencePool CRD, as scripts/gen-types.ts copies it from the extension's Go module. */
export const INFERENCE_CRD_DIR = join(REPO, "charts", "gatehouse", "files", "crds");

/** Tokens known to the test API server (`--token-auth-file`). */
export const TOKENS = {
  /** system:masters: may do anything. */
  admin: "gatehouse-test-admin-token",
  /** User `gatehouse-controller`, no groups: may do only what RBAC grants it. */
  controller: "gatehouse-test-controller-token",
} as const;
export const CONTROLLER_USER = "gatehouse-controller";

/** The directory holding kube-apiserver and etcd, or a reason why there is none. */
export function findControlPlaneBinaries(): { dir: string } | { skip: string } {
  const fromEnv = process.env["GATEHOUSE_K8S_BIN"];
  const candidates: string[] = [];
  if (fromEnv !== undefined && fromEnv !== "") candidates.push(fromEnv);
  const cacheRoot =
    process.env["GATEHOUSE_MINICLUSTER_CACHE"] ??
    join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "gatehouse", "minicluster");
  if (existsSync(cacheRoot)) {
    const dirs = readdirSync(cacheRoot)
      .map((d) => join(cacheRoot, d, "bin"))
      .filter((d) => existsSync(d))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    candidates.push(...dirs);
  }
  for (const dir of candidates) {
    if (existsSync(join(dir, "kube-apiserver")) && existsSync(join(dir, "etcd"))) return { dir };
  }
  return {
    skip:
      `kube-apiserver and etcd not found (looked in $GATEHOUSE_K8S_BIN and ${cacheRoot}/*/bin): ` +
      `build them with ${BUILD_SCRIPT} kube-apiserver etcd`,
  };
}

let crdDirCache: { dir: string } | { skip: string } | undefined;

/** The experimental-channel CRDs of Gateway API v1.6.1 (`go mod download`), or why not. */
export function gatewayApiCrdDir(): { dir: string } | { skip: string } {
  if (crdDirCache !== undefined) return crdDirCache;
  const result = spawnSync("go", ["mod", "download", "-json", GATEWAY_API_MODULE], {
    cwd: tmpdir(),
    encoding: "utf8",
    env: { ...process.env, GOFLAGS: "-mod=mod", GOWORK: "off" },
    timeout: 120_000,
  });
  if (result.status !== 0) {
    crdDirCache = {
      skip: `go mod download ${GATEWAY_API_MODULE} failed: ${(result.error?.message ?? result.stderr).trim()}`,
    };
    return crdDirCache;
  }
  const info = JSON.parse(result.stdout) as { Dir?: string };
  const dir = join(info.Dir ?? "", "config", "crd", "experimental");
  crdDirCache = existsSync(dir) ? { dir } : { skip: `${dir} does not exist` };
  return crdDirCache;
}

/** Whether integration tests can run here, and if not why (for `test(..., { skip })`). */
export function apiServerSkipReason(): string | undefined {
  const bins = findControlPlaneBinaries();
  if ("skip" in bins) return bins.skip;
  const crds = gatewayApiCrdDir();
  if ("skip" in crds) return crds.skip;
  return undefined;
}

export interface TestApiServer {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  readonly dir: string;
  /** A KubeConfig for one of TOKENS (default admin). */
  kubeConfig(token?: string): KubeConfig;
  /** Writes a kubeconfig file for `token` and returns its path. */
  writeKubeconfig(token?: string): Promise<string>;
  /** An admin client. */
  readonly admin: KubeApi;
  /** Applies objects (create, or replace keeping resourceVersion); returns what the server stored. */
  apply(objects: ReadonlyArray<Record<string, unknown>>): Promise<Array<Record<string, unknown>>>;
  /** Stops the API server (leaves etcd running) — for "API server unreachable" tests. */
  pause(): Promise<void>;
  /** Starts the API server again on the same port, with the same data. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Install the Gateway API CRDs (default true). */
  crds?: boolean;
  /** Only CRD files whose name contains one of these (default all gateway.networking.k8s.io ones). */
  crdFilter?: (file: string) => boolean;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, proc?: ChildProcess) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc !== undefined && proc.exitCode !== null)
      throw new Error(`${what}: process exited (${proc.exitCode})`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopProcess(proc: ChildProcess | undefined): Promise<void> {
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

export async function startTestApiServer(options: StartOptions = {}): Promise<TestApiServer> {
  const bins = findControlPlaneBinaries();
  if ("skip" in bins) throw new Error(bins.skip);
  const dir = await mkdtemp(join(tmpdir(), "gatehouse-apiserver-"));
  const [etcdClient, etcdPeer, securePort] = [await freePort(), await freePort(), await freePort()];
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await writeFile(join(dir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }));
  await writeFile(
    join(dir, "tokens.csv"),
    `${TOKENS.admin},admin,admin-uid,"system:masters"\n${TOKENS.controller},${CONTROLLER_USER},controller-uid\n`,
  );
  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  const logs: Record<string, string[]> = { etcd: [], apiserver: [] };
  const capture = (name: string, proc: ChildProcess) => {
    const lines = logs[name] ?? [];
    const keep = (chunk: Buffer) => {
      lines.push(chunk.toString());
      if (lines.length > 200) lines.shift();
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
  };
  const url = `https://127.0.0.1:${securePort}`;
  const kubeConfig = (token: string = TOKENS.admin): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "test", server: url, skipTLSVerify: true }],
      users: [{ name: "user", token }],
      contexts: [{ name: "test", cluster: "test", user: "user" }],
      currentContext: "test",
    });
    return kc;
  };
  const admin = new HttpKubeApi(kubeConfig());
  const startApiServer = async () => {
    apiserver = spawn(
      join(bins.dir, "kube-apiserver"),
      [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${securePort}`,
        `--cert-dir=${join(dir, "certs")}`,
        "--service-account-issuer=https://kubernetes.default.svc",
        `--service-account-key-file=${join(dir, "sa.key")}`,
        `--service-account-signing-key-file=${join(dir, "sa.key")}`,
        `--token-auth-file=${join(dir, "tokens.csv")}`,
        "--authorization-mode=RBAC",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--endpoint-reconciler-type=none",
        "--advertise-address=192.0.2.254",
        "--enable-priority-and-fairness=false",
        "--v=0",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    capture("apiserver", apiserver);
    await waitFor(
      "kube-apiserver /readyz",
      async () =>
        (await admin.request<string>("GET", "/readyz", undefined, { timeoutMs: 2000 })) !== undefined,
      60_000,
      apiserver,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${(logs["apiserver"] ?? []).join("").slice(-3000)}`);
    });
  };
  const stop = async () => {
    await stopProcess(apiserver);
    await stopProcess(etcd);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    etcd = spawn(
      join(bins.dir, "etcd"),
      [
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        "--log-level=error",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    capture("etcd", etcd);
    await startApiServer();
    if (options.crds ?? true) {
      const crds = gatewayApiCrdDir();
      if ("skip" in crds) throw new Error(crds.skip);
      await installCrds(admin, crds.dir, options.crdFilter);
      await installCrds(admin, INFERENCE_CRD_DIR, undefined, INFERENCE_CRDS);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const server: TestApiServer = {
    url,
    dir,
    admin,
    kubeConfig,
    async writeKubeconfig(token: string = TOKENS.admin) {
      const path = join(dir, `kubeconfig-${token.slice(-12)}.yaml`);
      await writeFile(path, kubeConfig(token).exportConfig());
      return path;
    },
    apply: (objects) => applyObjects(admin, objects),
    pause: () => stopProcess(apiserver),
    resume: startApiServer,
    stop,
  };
  return server;
}

/** Which CRD files of a directory to install, and the group version whose discovery to wait for. */
export interface CrdSet {
  prefix: string;
  discovery: string;
}

const GATEWAY_CRDS: CrdSet = {
  prefix: "gateway.networking.k8s.io_",
  discovery: "/apis/gateway.networking.k8s.io/v1",
};
const INFERENCE_CRDS: CrdSet = {
  prefix: "inference.networking.k8s.io_",
  discovery: "/apis/inference.networking.k8s.io/v1",
};

/** Creates the CRDs found in `dir` and waits until they are Established. */
export async function installCrds(
  api: KubeApi,
  dir: string,
  filter?: (file: string) => boolean,
  set: CrdSet = GATEWAY_CRDS,
): Promise<void> {
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(set.prefix) && f.endsWith(".yaml") && !f.includes("vap_"))
    .filter((f) => filter?.(f) ?? true);
  const names: string[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), "utf8"))) {
      const obj = doc.toJS() as { kind?: string; metadata?: { name?: string } } | null;
      if (obj?.kind !== "CustomResourceDefinition") continue;
      await api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", obj);
      names.push(obj.metadata?.name ?? "");
    }
  }
  for (const name of names) {
    await waitFor(
      `CRD ${name} Established`,
      async () => {
        const crd = await api.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
          "GET",
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
        );
        return (crd.status?.conditions ?? []).some((c) => c.type === "Established" && c.status === "True");
      },
      30_000,
    );
  }
  // Discovery lags a little behind Established.
  await waitFor(
    `discovery of ${set.discovery}`,
    async () => {
      const list = await api.request<{ resources?: Array<{ name: string }> }>("GET", set.discovery);
      return (list.resources ?? []).length > 0;
    },
    30_000,
  );
}

const PLURALS: Record<string, string> = {
  Namespace: "namespaces",
  Service: "services",
  Secret: "secrets",
  ConfigMap: "configmaps",
  EndpointSlice: "endpointslices",
  ServiceAccount: "serviceaccounts",
  ClusterRole: "clusterroles",
  ClusterRoleBinding: "clusterrolebindings",
  Role: "roles",
  RoleBinding: "rolebindings",
  Lease: "leases",
  Deployment: "deployments",
  GatewayClass: "gatewayclasses",
  Gateway: "gateways",
  HTTPRoute: "httproutes",
  GRPCRoute: "grpcroutes",
  TLSRoute: "tlsroutes",
  TCPRoute: "tcproutes",
  UDPRoute: "udproutes",
  ReferenceGrant: "referencegrants",
  BackendTLSPolicy: "backendtlspolicies",
  ListenerSet: "listenersets",
  InferencePool: "inferencepools",
  Pod: "pods",
};
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "GatewayClass"]);

/** The collection path of an object (and of the object itself with `name`). */
export function objectPath(obj: Record<string, unknown>, withName = false): string {
  const apiVersion = String(obj["apiVersion"]);
  const kind = String(obj["kind"]);
  const meta = (obj["metadata"] ?? {}) as { name?: string; namespace?: string };
  const plural = PLURALS[kind];
  if (plural === undefined) throw new Error(`objectPath: unknown kind ${kind}`);
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = CLUSTER_SCOPED.has(kind) ? "" : `/namespaces/${meta.namespace ?? "default"}`;
  return `${base}${ns}/${plural}${withName ? `/${meta.name ?? ""}` : ""}`;
}

export async function applyObjects(
  api: KubeApi,
  objects: ReadonlyArray<Record<string, unknown>>,
): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const obj of objects) {
    try {
      out.push(await api.request<Record<string, unknown>>("POST", objectPath(obj), obj));
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 409) throw error;
      const current = await api.request<{ metadata: { resourceVersion: string } }>(
        "GET",
        objectPath(obj, true),
      );
      const meta = { ...(obj["metadata"] as object), resourceVersion: current.metadata.resourceVersion };
      out.push(
        await api.request<Record<string, unknown>>("PUT", objectPath(obj, true), { ...obj, metadata: meta }),
      );
    }
  }
  return out;
}

/** Parses multi-document YAML into objects (for tests that keep fixtures as YAML). */
export function yamlObjects(text: string): Array<Record<string, unknown>> {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o !== null);
}

export { REPO };
