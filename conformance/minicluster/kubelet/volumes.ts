// Pod volumes as directories on the host: secret, configMap (honouring `items` and modes),
// downwardAPI, projected (secrets, configMaps, downwardAPI, serviceAccountToken), emptyDir,
// hostPath. Containers see them through path rewriting (env.ts), not mounts.
import { chmod, chown, lstat, mkdir, readdir, writeFile } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { fieldRefValue } from "./env.ts";
import type { Container, DataObject, DownwardAPIVolumeFile, KeyToPath, Pod, Volume } from "./types.ts";

export interface VolumeContext {
  pod: Pod;
  podIP: string;
  hostIP: string;
  getConfigMap(name: string): Promise<DataObject | undefined>;
  getSecret(name: string): Promise<DataObject | undefined>;
  /** A bound service-account token (TokenRequest API). */
  requestToken(audience: string | undefined, expirationSeconds: number): Promise<string>;
}

/** A volume cannot be set up (yet): the pod waits, with a FailedMount event. */
export class VolumeError extends Error {}

type Files = Map<string, { data: Buffer; mode: number }>;

function safePath(path: string): string {
  const p = normalize(path);
  if (p.startsWith("/") || p === ".." || p.startsWith("../"))
    throw new VolumeError(`bad path "${path}" in volume items`);
  return p;
}

function bytes(object: DataObject, key: string, base64: boolean): Buffer | undefined {
  const data = object.data?.[key];
  if (data !== undefined) return base64 ? Buffer.from(data, "base64") : Buffer.from(data, "utf8");
  const binary = object.binaryData?.[key];
  if (binary !== undefined) return Buffer.from(binary, "base64");
  return undefined;
}

function project(
  files: Files,
  object: DataObject,
  items: readonly KeyToPath[] | undefined,
  base64: boolean,
  mode: number,
  what: string,
): void {
  if (items === undefined || items.length === 0) {
    for (const key of [...Object.keys(object.data ?? {}), ...Object.keys(object.binaryData ?? {})]) {
      const data = bytes(object, key, base64);
      if (data !== undefined) files.set(safePath(key), { data, mode });
    }
    return;
  }
  for (const item of items) {
    const data = bytes(object, item.key, base64);
    if (data === undefined) throw new VolumeError(`${what}: key "${item.key}" not found`);
    files.set(safePath(item.path), { data, mode: item.mode ?? mode });
  }
}

function downward(
  files: Files,
  items: readonly DownwardAPIVolumeFile[] | undefined,
  ctx: VolumeContext,
  mode: number,
): void {
  for (const item of items ?? []) {
    let value = "";
    if (item.fieldRef !== undefined) {
      const v = fieldRefValue(ctx.pod, item.fieldRef.fieldPath, ctx.podIP, ctx.hostIP);
      if (v === undefined)
        throw new VolumeError(`downwardAPI: unsupported fieldPath ${item.fieldRef.fieldPath}`);
      value = v;
    } else if (item.resourceFieldRef !== undefined) {
      value = item.resourceFieldRef.resource.startsWith("limits.memory") ? String(8 * 1024 ** 3) : "2";
    }
    files.set(safePath(item.path), { data: Buffer.from(value), mode: item.mode ?? mode });
  }
}

async function filesOf(volume: Volume, ctx: VolumeContext): Promise<Files | undefined> {
  const files: Files = new Map();
  if (volume.secret !== undefined) {
    const s = volume.secret;
    const secret = await ctx.getSecret(s.secretName);
    if (secret === undefined) {
      if (s.optional === true) return files;
      throw new VolumeError(`secret "${s.secretName}" not found`);
    }
    project(files, secret, s.items, true, s.defaultMode ?? 0o644, `secret "${s.secretName}"`);
    return files;
  }
  if (volume.configMap !== undefined) {
    const c = volume.configMap;
    const cm = await ctx.getConfigMap(c.name);
    if (cm === undefined) {
      if (c.optional === true) return files;
      throw new VolumeError(`configmap "${c.name}" not found`);
    }
    project(files, cm, c.items, false, c.defaultMode ?? 0o644, `configmap "${c.name}"`);
    return files;
  }
  if (volume.downwardAPI !== undefined) {
    downward(files, volume.downwardAPI.items, ctx, volume.downwardAPI.defaultMode ?? 0o644);
    return files;
  }
  if (volume.projected !== undefined) {
    const mode = volume.projected.defaultMode ?? 0o644;
    for (const source of volume.projected.sources ?? []) {
      if (source.secret !== undefined) {
        const secret = await ctx.getSecret(source.secret.name);
        if (secret === undefined) {
          if (source.secret.optional === true) continue;
          throw new VolumeError(`secret "${source.secret.name}" not found`);
        }
        project(files, secret, source.secret.items, true, mode, `secret "${source.secret.name}"`);
      } else if (source.configMap !== undefined) {
        const cm = await ctx.getConfigMap(source.configMap.name);
        if (cm === undefined) {
          if (source.configMap.optional === true) continue;
          throw new VolumeError(`configmap "${source.configMap.name}" not found`);
        }
        project(files, cm, source.configMap.items, false, mode, `configmap "${source.configMap.name}"`);
      } else if (source.downwardAPI !== undefined) {
        downward(files, source.downwardAPI.items, ctx, mode);
      } else if (source.serviceAccountToken !== undefined) {
        const t = source.serviceAccountToken;
        const token = await ctx.requestToken(t.audience, t.expirationSeconds ?? 3607);
        files.set(safePath(t.path), { data: Buffer.from(token), mode });
      }
    }
    return files;
  }
  return undefined;
}

/**
 * Creates every volume of the pod under `dir` and returns volume name → host directory.
 * Throws VolumeError when a volume cannot be made (missing secret, unsupported type).
 */
export async function materializeVolumes(
  pod: Pod,
  dir: string,
  ctx: VolumeContext,
): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const volume of pod.spec.volumes ?? []) {
    if (volume.hostPath !== undefined) {
      result.set(volume.name, volume.hostPath.path);
      continue;
    }
    const target = join(dir, volume.name);
    await mkdir(target, { recursive: true });
    const fsGroup = pod.spec.securityContext?.fsGroup;
    if (volume.emptyDir !== undefined) {
      // As the kubelet makes it: owned by root, writable by everyone (pods run as other users).
      await chmod(target, 0o777);
      if (fsGroup !== undefined) await applyFsGroup(target, fsGroup, false);
      result.set(volume.name, target);
      continue;
    }
    const files = await filesOf(volume, ctx);
    if (files === undefined) {
      const kind = Object.keys(volume).find((k) => k !== "name") ?? "unknown";
      throw new VolumeError(`volume "${volume.name}": type ${kind} is not supported by the fake kubelet`);
    }
    for (const [path, file] of files) {
      const full = join(target, path);
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, file.data);
      await chmod(full, file.mode & 0o777);
    }
    if (fsGroup !== undefined) await applyFsGroup(target, fsGroup, true);
    result.set(volume.name, target);
  }
  return result;
}

/**
 * The kubelet's volume ownership for a pod with `fsGroup` (SetVolumeOwnership): every file and
 * directory gets that group; files become group-readable (and group-writable unless the volume is
 * read-only: secrets, configMaps, projections), directories group-searchable with the setgid bit.
 */
async function applyFsGroup(dir: string, gid: number, readOnly: boolean): Promise<void> {
  const walk = async (path: string): Promise<void> => {
    const info = await lstat(path);
    if (info.isSymbolicLink()) return;
    await chown(path, info.uid, gid);
    if (info.isDirectory()) {
      await chmod(path, (info.mode & 0o7777) | 0o2000 | (readOnly ? 0o050 : 0o070));
      for (const name of await readdir(path)) await walk(join(path, name));
    } else {
      await chmod(path, (info.mode & 0o7777) | (readOnly ? 0o040 : 0o060));
    }
  };
  await walk(dir);
}

/** mountPath → host path for one container (subPath honoured). */
export function containerMounts(
  container: Container,
  volumes: ReadonlyMap<string, string>,
): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    const host = volumes.get(mount.name);
    if (host === undefined) continue;
    const path = mount.mountPath.replace(/\/+$/, "") || "/";
    mounts.set(
      path,
      mount.subPath !== undefined && mount.subPath !== "" ? join(host, safePath(mount.subPath)) : host,
    );
  }
  return mounts;
}
