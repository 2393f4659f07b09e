// A container's environment as the kubelet computes it: envFrom, then env (plain values,
// $(VAR) references to earlier variables, downward API fieldRefs, configMap and secret keys).
import type { Container, DataObject, Pod } from "./types.ts";

export interface EnvContext {
  pod: Pod;
  podIP: string;
  hostIP: string;
  getConfigMap(name: string): Promise<DataObject | undefined>;
  getSecret(name: string): Promise<DataObject | undefined>;
}

/** A problem that keeps the container from starting (CreateContainerConfigError). */
export class ContainerConfigError extends Error {}

/** Value of a downward-API field path, or undefined for an unsupported one. */
export function fieldRefValue(
  pod: Pod,
  fieldPath: string,
  podIP: string,
  hostIP: string,
): string | undefined {
  const bracket = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (bracket !== null) {
    const map = bracket[1] === "labels" ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[bracket[2] ?? ""] ?? "";
  }
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata.name;
    case "metadata.namespace":
      return pod.metadata.namespace ?? "default";
    case "metadata.uid":
      return pod.metadata.uid;
    case "metadata.labels":
      return formatMap(pod.metadata.labels);
    case "metadata.annotations":
      return formatMap(pod.metadata.annotations);
    case "spec.nodeName":
      return pod.spec.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec.serviceAccountName ?? "default";
    case "status.hostIP":
    case "status.hostIPs":
      return hostIP;
    case "status.podIP":
    case "status.podIPs":
      return podIP;
    default:
      return undefined;
  }
}

/** `key="value"` lines, sorted, as the downward API writes labels and annotations. */
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(map?.[k] ?? "")}`)
    .join("\n");
}

/** Kubernetes variable expansion: `$(NAME)` → value when defined, `$$` → `$`, anything else as is. */
export function expand(input: string, vars: ReadonlyMap<string, string>): string {
  let out = "";
  for (let i = 0; i < input.length; i++) {
    const c = input.charAt(i);
    if (c !== "$" || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1];
    if (next === "$") {
      out += "$";
      i++;
    } else if (next === "(") {
      const close = input.indexOf(")", i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      const value = vars.get(name);
      out += value ?? `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

function decode(object: DataObject, key: string, binary: boolean): string | undefined {
  if (object.data?.[key] !== undefined) {
    return binary ? Buffer.from(object.data[key], "base64").toString("utf8") : object.data[key];
  }
  if (object.binaryData?.[key] !== undefined)
    return Buffer.from(object.binaryData[key], "base64").toString("utf8");
  return undefined;
}

function allKeys(object: DataObject): string[] {
  return [...Object.keys(object.data ?? {}), ...Object.keys(object.binaryData ?? {})];
}

/** The container's environment variables, in order (later ones win). */
export async function containerEnv(container: Container, ctx: EnvContext): Promise<Map<string, string>> {
  const vars = new Map<string, string>();
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? "";
    if (from.configMapRef !== undefined) {
      const cm = await ctx.getConfigMap(from.configMapRef.name);
      if (cm === undefined) {
        if (from.configMapRef.optional === true) continue;
        throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
      }
      for (const key of allKeys(cm)) vars.set(prefix + key, decode(cm, key, false) ?? "");
    }
    if (from.secretRef !== undefined) {
      const secret = await ctx.getSecret(from.secretRef.name);
      if (secret === undefined) {
        if (from.secretRef.optional === true) continue;
        throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
      }
      for (const key of allKeys(secret)) vars.set(prefix + key, decode(secret, key, true) ?? "");
    }
  }
  for (const env of container.env ?? []) {
    if (env.valueFrom === undefined) {
      vars.set(env.name, expand(env.value ?? "", vars));
      continue;
    }
    const from = env.valueFrom;
    if (from.fieldRef !== undefined) {
      const value = fieldRefValue(ctx.pod, from.fieldRef.fieldPath, ctx.podIP, ctx.hostIP);
      if (value === undefined)
        throw new ContainerConfigError(`env ${env.name}: unsupported fieldPath ${from.fieldRef.fieldPath}`);
      vars.set(env.name, value);
    } else if (from.configMapKeyRef !== undefined) {
      const ref = from.configMapKeyRef;
      const cm = await ctx.getConfigMap(ref.name);
      const value = cm === undefined ? undefined : decode(cm, ref.key, false);
      if (value === undefined) {
        if (ref.optional === true) continue;
        throw new ContainerConfigError(`env ${env.name}: configmap "${ref.name}" key "${ref.key}" not found`);
      }
      vars.set(env.name, value);
    } else if (from.secretKeyRef !== undefined) {
      const ref = from.secretKeyRef;
      const secret = await ctx.getSecret(ref.name);
      const value = secret === undefined ? undefined : decode(secret, ref.key, true);
      if (value === undefined) {
        if (ref.optional === true) continue;
        throw new ContainerConfigError(`env ${env.name}: secret "${ref.name}" key "${ref.key}" not found`);
      }
      vars.set(env.name, value);
    } else if (from.resourceFieldRef !== undefined) {
      vars.set(env.name, resourceValue(container, from.resourceFieldRef.resource));
    }
  }
  return vars;
}

/** limits/requests as the downward API reports them (limits default to the node: 2 CPUs, 8 GiB). */
function resourceValue(container: Container, resource: string): string {
  const [kind, name] = resource.split(".");
  const set = kind === "limits" ? container.resources?.limits : container.resources?.requests;
  const value = set?.[name ?? ""];
  if (value !== undefined) return value;
  if (kind === "limits") return name === "memory" ? String(8 * 1024 ** 3) : "2";
  return "0";
}

/**
 * Rewrites in-container paths to where their volumes are on the host: there is no mount namespace,
 * so `/etc/secret-volume/crt` in an env value or argument becomes `<pod dir>/volumes/x/crt`.
 * `mounts` maps mountPath → host directory; the longest mountPath wins; a path must start at the
 * beginning of the value or after `=`, `:`, `,` or whitespace, and end at `/` or the end of a word.
 */
export function rewritePaths(value: string, mounts: ReadonlyMap<string, string>): string {
  const paths = [...mounts.keys()]
    .map((p) => p.replace(/\/+$/, "") || "/")
    .sort((a, b) => b.length - a.length);
  if (paths.length === 0) return value;
  const escaped = paths.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(^|[=:,\\s])(${escaped.join("|")})(?=/|$|[\\s,:])`, "g");
  return value.replace(re, (_match, lead: string, path: string) => {
    const host = mounts.get(path) ?? mounts.get(`${path}/`) ?? path;
    return lead + host;
  });
}
