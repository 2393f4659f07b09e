// The in-cluster configuration of a container that runs as a local binary: client-go and
// controller-runtime read the ServiceAccount's token, the cluster CA and the namespace from the
// fixed directory /var/run/secrets/kubernetes.io/serviceaccount (and the API server from
// KUBERNETES_SERVICE_HOST/PORT, see pod.ts), which path rewriting cannot reach. So such a container
// runs in a private mount namespace of its own where the directory with those files is
// bind-mounted at that path (containers of OCI images get all their volumes mounted by runc).
//
// The files come from the volume mounted there, normally the `kube-api-access-*` projected volume
// (TokenRequest token, kube-root-ca.crt, namespace) that the API server's ServiceAccount admission
// adds to every Pod unless automountServiceAccountToken is false; when a Pod has no such mount
// although automounting is on (admission disabled), the kubelet writes the three files itself.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { PodSpec } from "./types.ts";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The host directory mounted at SERVICE_ACCOUNT_DIR for this container, if any. */
export function mountedServiceAccountDir(mounts: ReadonlyMap<string, string>): string | undefined {
  return mounts.get(SERVICE_ACCOUNT_DIR);
}

/**
 * Whether the Pod gets credentials: `spec.automountServiceAccountToken` when set, otherwise the
 * ServiceAccount's own field, otherwise true (Kubernetes' rule).
 */
export function automountsToken(
  spec: PodSpec,
  serviceAccount: { automountServiceAccountToken?: boolean } | undefined,
): boolean {
  if (spec.automountServiceAccountToken !== undefined) return spec.automountServiceAccountToken;
  return serviceAccount?.automountServiceAccountToken ?? true;
}

/** Writes token, ca.crt and namespace into `dir` (mode 0644, as the projected volume does). */
export async function writeServiceAccountFiles(
  dir: string,
  files: { token: string; caCert: string; namespace: string },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "token"), files.token, { mode: 0o644 });
  await writeFile(join(dir, "ca.crt"), files.caCert, { mode: 0o644 });
  await writeFile(join(dir, "namespace"), files.namespace, { mode: 0o644 });
}

/**
 * `argv` run in a private mount namespace (util-linux `unshare`) where `hostDir` is bind-mounted
 * read-only at `target`. The mount point is created on the host if missing (empty directories
 * only: the mount itself is visible only inside the namespace). `sh` sets it up, then execs the
 * program, which keeps the pid.
 */
export function withBindMount(
  argv: readonly string[],
  hostDir: string,
  target = SERVICE_ACCOUNT_DIR,
): string[] {
  const script =
    'mkdir -p "$1" && mount --bind "$2" "$1" && mount -o remount,bind,ro "$1" && shift 2 && exec "$@"';
  return [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "/bin/sh",
    "-c",
    script,
    "sh",
    target,
    hostDir,
    ...argv,
  ];
}
