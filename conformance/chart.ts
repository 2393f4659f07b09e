// The conformance run's controller as users install it: the OCI image of `npm run image`, installed
// with `helm upgrade --install` of charts/gatehouse into the mini-cluster, where the fake kubelet
// runs the image under runc (minicluster/kubelet/oci.ts). The Pod uses host networking and an
// address pool, as the suite needs one address per Gateway on this host.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./minicluster/cluster.ts";
import { run } from "./minicluster/proc.ts";

export const IMAGE_ARCHIVE = join(REPO, "dist", "gatehouse.oci.tar");
/** The chart's default image (`gatehouse:<appVersion>`), mapped by the kubelet to the archive. */
export const IMAGE_PATTERN = "(^|/)gatehouse(:[^/@]*)?$";
export const RELEASE = "gatehouse";
export const NAMESPACE = "gatehouse-system";

/** `npm run image` (cached by a hash of its inputs) and Helm from charts/helm.sh (cached). */
export async function buildImageAndHelm(
  log: (line: string) => void,
): Promise<{ digest: string; helm: string }> {
  const started = Date.now();
  // mmdebstrap, umoci, runc (Debian packages), when missing.
  await run("bash", [join(REPO, "scripts", "image-deps.sh")], { timeoutMs: 10 * 60_000 });
  await run(process.execPath, [join(REPO, "scripts", "image.ts"), "--out", IMAGE_ARCHIVE], {
    timeoutMs: 20 * 60_000,
  });
  const index = JSON.parse(await run("tar", ["-xOf", IMAGE_ARCHIVE, "index.json"])) as {
    manifests: { digest: string }[];
  };
  const digest = index.manifests[0]?.digest ?? "unknown";
  const helm = (await run("bash", [join(REPO, "charts", "helm.sh")], { timeoutMs: 30 * 60_000 })).trim();
  log(`image ${digest.slice(0, 19)} and helm ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { digest, helm };
}

/**
 * The fixed ClusterIP of the controller's config-stream Service in the mini-cluster (inside its
 * service CIDR 10.96.0.0/16): the data-plane pods dial it, as the mini-cluster has no DNS.
 */
export const DISTRIBUTION_CLUSTER_IP = "10.96.100.100";

export type InstallOptions = {
  helm: string;
  kubeconfig: string;
  /** The image's manifest digest: a Pod annotation, so a new image rolls the Deployment. */
  digest: string;
  adminPort: number;
  /** More `--set` values (e.g. `inferenceExtension.installCRD=true`). */
  extraValues?: readonly string[];
} & (
  | {
      /** Each Gateway its own data-plane Deployment and LoadBalancer Service (the chart's default). */
      infrastructure: "kubernetes";
      /** The config-stream Service's ClusterIP, inside the cluster's service CIDR (default DISTRIBUTION_CLUSTER_IP). */
      distributionClusterIP?: string;
    }
  | {
      /** The controller Pod serves every Gateway on host addresses from the pool. */
      infrastructure: "host";
      addressPool: string;
      iface: string;
      haproxyMetricsPort: number;
    }
);

/** helm upgrade --install of charts/gatehouse (the GatewayClass is the run's own). */
export async function installController(options: InstallOptions): Promise<string> {
  const common = [
    "gatewayClass.create=false",
    `admin.port=${options.adminPort}`,
    "logFormat=text",
    "podDisruptionBudget.enabled=false",
    `podAnnotations.gatehouse\\.dev/image-digest=${options.digest.replace(":", "-")}`,
  ];
  const values =
    options.infrastructure === "kubernetes"
      ? [
          ...common,
          "infrastructure=kubernetes",
          `distribution.clusterIP=${options.distributionClusterIP ?? DISTRIBUTION_CLUSTER_IP}`,
          `distribution.address=${options.distributionClusterIP ?? DISTRIBUTION_CLUSTER_IP}:9443`,
        ]
      : [
          ...common,
          "infrastructure=host",
          "hostNetwork=true",
          `addressPool=${options.addressPool}`,
          `interface=${options.iface}`,
          `extraArgs={--haproxy-metrics=127.0.0.1:${options.haproxyMetricsPort}}`,
        ];
  return run(
    options.helm,
    [
      "upgrade",
      "--install",
      RELEASE,
      join(REPO, "charts", "gatehouse"),
      "--namespace",
      NAMESPACE,
      "--create-namespace",
      ...[...values, ...(options.extraValues ?? [])].flatMap((value) => ["--set", value]),
    ],
    { env: { ...process.env, KUBECONFIG: options.kubeconfig }, timeoutMs: 120_000 },
  );
}

/** The kubelet's directories of the controller's Pods (logs/, volumes/state). */
export function controllerPodDirs(runDir: string): string[] {
  const pods = join(runDir, "kubelet", "pods");
  if (!existsSync(pods)) return [];
  return readdirSync(pods)
    .filter((name) => name.startsWith(`${NAMESPACE}_${RELEASE}-controller-`))
    .map((name) => join(pods, name));
}

/** The newest log of the controller container, if any. */
export function controllerLog(runDir: string): string | undefined {
  for (const dir of controllerPodDirs(runDir)) {
    const logs = join(dir, "logs", "controller");
    if (!existsSync(logs)) continue;
    const files = readdirSync(logs)
      .filter((name) => name.endsWith(".log"))
      .sort((a, b) => Number.parseInt(b, 10) - Number.parseInt(a, 10));
    if (files[0] !== undefined) return join(logs, files[0]);
  }
  return undefined;
}
