// Containers from OCI images, run by runc: what the fake kubelet does for an image mapped to an OCI
// archive (`minicluster start --image REGEX=PATH.oci.tar`), such as Gatehouse's own image from
// `npm run image`. The archive is unpacked once per manifest digest with umoci; every container
// of that image shares the unpacked root filesystem and gets its own runtime spec (config.json),
// written from the Pod the way a CRI runtime would: the image's entrypoint, command and args,
// environment, user and working directory, the Pod's securityContext (user, read-only root,
// capabilities, no_new_privs, sysctls), its volumes as bind mounts at their mountPaths, and the
// Pod's network namespace (the host's for hostNetwork Pods). runtimeSpec is pure.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Container, PodSpec } from "./types.ts";

const execFileAsync = promisify(execFile);

/** The image config's `config` (image-spec config.md). */
export interface ImageConfig {
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  Volumes?: Record<string, unknown>;
}

export interface UnpackedImage {
  /** The manifest digest. */
  digest: string;
  /** The shared root filesystem. */
  rootfs: string;
  config: ImageConfig;
  /** umoci's runtime spec for the image: the template of every container's spec. */
  baseSpec: RuntimeSpec;
}

export interface RuntimeSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities?: Record<"bounding" | "effective" | "inheritable" | "permitted" | "ambient", string[]>;
    noNewPrivileges?: boolean;
    [key: string]: unknown;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: {
    namespaces: { type: string; path?: string }[];
    sysctl?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** The capabilities containerd gives a container by default (before the Pod's add/drop). */
export const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
] as const;

const capName = (name: string): string => (name.startsWith("CAP_") ? name : `CAP_${name}`).toUpperCase();

/** Unpacks `archive` under `cacheDir` (once per manifest digest) and returns the image. */
export async function unpackImage(archive: string, cacheDir: string): Promise<UnpackedImage> {
  const { stdout } = await execFileAsync("tar", ["-xOf", archive, "index.json"], { encoding: "utf8" });
  const index = JSON.parse(stdout) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const manifest = index.manifests[0];
  const ref = manifest?.annotations?.["org.opencontainers.image.ref.name"];
  if (manifest === undefined || ref === undefined) throw new Error(`${archive}: index.json names no image`);
  const dir = join(cacheDir, manifest.digest.replace(":", "-"));
  const bundle = join(dir, "bundle");
  if (!existsSync(join(bundle, "config.json"))) {
    const tmp = `${dir}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(join(tmp, "layout"), { recursive: true });
    await execFileAsync("tar", ["-xf", archive, "-C", join(tmp, "layout")]);
    await execFileAsync("umoci", ["unpack", "--image", `${join(tmp, "layout")}:${ref}`, join(tmp, "bundle")]);
    // The image config (Entrypoint and Cmd apart, which umoci's runtime spec joins into args).
    const blob = (digest: string) => readFile(join(tmp, "layout", "blobs", ...digest.split(":")), "utf8");
    const manifestJson = JSON.parse(await blob(manifest.digest)) as { config: { digest: string } };
    await writeFile(join(tmp, "image-config.json"), await blob(manifestJson.config.digest));
    await rm(join(tmp, "layout"), { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  }
  const baseSpec = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as RuntimeSpec;
  const imageConfig = JSON.parse(await readFile(join(dir, "image-config.json"), "utf8")) as {
    config?: ImageConfig;
  };
  return {
    digest: manifest.digest,
    rootfs: join(bundle, "rootfs"),
    config: imageConfig.config ?? {},
    baseSpec,
  };
}

export interface ContainerInput {
  image: UnpackedImage;
  pod: PodSpec;
  container: Container;
  /** The container's environment from the Pod (already resolved: fieldRefs, secrets...). */
  env: ReadonlyMap<string, string>;
  /** Expands $(VAR) references in command and args. */
  expand: (text: string) => string;
  /** mountPath → host path of the volume. */
  mounts: ReadonlyMap<string, string>;
  /** mountPaths mounted read-only. */
  readOnlyMounts: ReadonlySet<string>;
  /** The Pod's network namespace name, or undefined for hostNetwork. */
  netns: string | undefined;
  hostname: string;
}

/** The runtime spec of one container (pure). */
export function runtimeSpec(input: ContainerInput): RuntimeSpec {
  const { image, pod, container } = input;
  const spec = structuredClone(image.baseSpec);
  const podContext = pod.securityContext ?? {};
  const context = container.securityContext ?? {};

  // Entrypoint/command and Cmd/args as Kubernetes combines them; $(VAR) only in the Pod's own.
  const entrypoint = container.command?.map(input.expand) ?? image.config.Entrypoint ?? [];
  const cmd =
    container.args?.map(input.expand) ?? (container.command !== undefined ? [] : (image.config.Cmd ?? []));
  const args = [...entrypoint, ...cmd];
  if (args.length === 0)
    throw new Error(`container ${container.name}: no command (the image has no entrypoint)`);

  const env = new Map<string, string>();
  for (const entry of image.config.Env ?? []) {
    const eq = entry.indexOf("=");
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  for (const [name, value] of input.env) env.set(name, value);

  const [imageUid, imageGid] = (image.config.User ?? "0:0").split(":").map(Number);
  const uid = context.runAsUser ?? podContext.runAsUser ?? (Number.isInteger(imageUid) ? (imageUid ?? 0) : 0);
  const gid =
    context.runAsGroup ?? podContext.runAsGroup ?? (Number.isInteger(imageGid) ? (imageGid ?? 0) : 0);
  if ((context.runAsNonRoot ?? podContext.runAsNonRoot) === true && uid === 0) {
    throw new Error(`container ${container.name}: runAsNonRoot, but the user is root`);
  }

  const drop = new Set((context.capabilities?.drop ?? []).map(capName));
  const caps = new Set<string>(
    drop.has("CAP_ALL") ? [] : DEFAULT_CAPABILITIES.filter((cap) => !drop.has(cap)),
  );
  for (const cap of context.capabilities?.add ?? []) caps.add(capName(cap));
  const capList = [...caps].sort();

  // umoci's template (runc's default spec) sets RLIMIT_NOFILE 1024:1024; a CRI runtime sets no
  // rlimits (containerd/cri#515, cri-o#639): the container inherits the runtime's, here the
  // kubelet's. HAProxy with a `maxconn` above ~500 cannot start under 1024.
  delete spec.process["rlimits"];
  spec.process = {
    ...spec.process,
    terminal: false,
    user: {
      uid,
      gid,
      // As the kubelet does: fsGroup is one of the container's groups (it owns the volumes).
      ...(podContext.supplementalGroups !== undefined || podContext.fsGroup !== undefined
        ? {
            additionalGids: [
              ...(podContext.supplementalGroups ?? []),
              ...(podContext.fsGroup !== undefined ? [podContext.fsGroup] : []),
            ],
          }
        : {}),
    },
    args,
    env: [...env].map(([name, value]) => `${name}=${value}`),
    cwd: container.workingDir ?? (image.config.WorkingDir || "/"),
    // As containerd does since CVE-2022-24769: no inheritable or ambient capabilities.
    capabilities: { bounding: capList, effective: capList, permitted: capList, inheritable: [], ambient: [] },
    noNewPrivileges: context.allowPrivilegeEscalation === false,
  };
  spec.root = { path: image.rootfs, readonly: context.readOnlyRootFilesystem === true };
  spec.hostname = input.hostname;

  // umoci's mounts, less those a volume replaces (e.g. the tmpfs it makes for an image VOLUME).
  spec.mounts = spec.mounts.filter((mount) => !input.mounts.has(mount.destination));
  for (const [destination, source] of [...input.mounts].sort(([a], [b]) => a.length - b.length)) {
    spec.mounts.push({
      destination,
      type: "bind",
      source,
      options: ["rbind", input.readOnlyMounts.has(destination) ? "ro" : "rw"],
    });
  }

  spec.linux.namespaces =
    input.netns === undefined
      ? spec.linux.namespaces.filter((ns) => ns.type !== "network")
      : spec.linux.namespaces.map((ns) =>
          ns.type === "network" ? { type: "network", path: `/var/run/netns/${input.netns ?? ""}` } : ns,
        );
  if (input.netns === undefined) {
    // The host's network namespace: its UTS namespace too, as Kubernetes does for hostNetwork.
    spec.linux.namespaces = spec.linux.namespaces.filter((ns) => ns.type !== "uts");
    delete spec.hostname;
  }
  const sysctls = podContext.sysctls ?? [];
  if (sysctls.length > 0 && input.netns !== undefined) {
    spec.linux.sysctl = Object.fromEntries(sysctls.map((sysctl) => [sysctl.name, sysctl.value]));
  }
  return spec;
}

/** runc with its state under the cluster's run dir, so `stop` finds every container it made. */
export function runcArgs(stateRoot: string, ...args: string[]): string[] {
  return ["--root", stateRoot, ...args];
}

/** Force-deletes a container (killing it if it still runs); errors ignored: it may be gone. */
export async function deleteContainer(stateRoot: string, id: string): Promise<void> {
  await execFileAsync("runc", runcArgs(stateRoot, "delete", "--force", id)).catch(() => undefined);
}

/** Every container under `stateRoot`, killed and deleted (teardown after a killed kubelet). */
export async function deleteAllContainers(stateRoot: string): Promise<string[]> {
  if (!existsSync(stateRoot)) return [];
  const { stdout } = await execFileAsync("runc", runcArgs(stateRoot, "list", "--quiet"), {
    encoding: "utf8",
  });
  const ids = stdout.split("\n").filter((id) => id !== "");
  for (const id of ids) await deleteContainer(stateRoot, id);
  return ids;
}
