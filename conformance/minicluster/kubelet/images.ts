// Images → local binaries or OCI archives. A container runs a binary of this machine chosen by its
// image, or, for an image mapped to an OCI archive (`REGEX=PATH.oci.tar`, e.g. Gatehouse's own
// image from `npm run image`), the image itself under runc (./oci.ts). Unknown images leave the
// Pod Pending (ErrImagePull).
import { basename } from "node:path";

export interface ImageRule {
  /** Shown in messages. */
  name: string;
  pattern: RegExp;
  /** Binary name in KubeletConfig.binaries, or an absolute path. */
  binary: string;
  /** An OCI image archive (absolute path): the container runs from it under runc. */
  archive?: string;
  /**
   * TCP ports the program listens on once it is up, given its environment; used for readiness
   * when the container has no readiness probe and declares no TCP ports.
   */
  readyPorts(env: Readonly<Record<string, string>>): number[];
}

function echoBasicPorts(env: Readonly<Record<string, string>>): number[] {
  if (env["UDP_ECHO_SERVER"]) return [];
  const port = Number(env["TCP_ECHO_SERVER"] ? (env["TCP_PORT"] ?? "3000") : (env["HTTP_PORT"] ?? "3000"));
  return Number.isInteger(port) && port > 0 ? [port] : [];
}

/** Images the kubelet knows without configuration. */
export const BUILTIN_IMAGES: readonly ImageRule[] = [
  // registry.k8s.io/gateway-api/echo-basic:*, gcr.io/k8s-staging-gateway-api/echo-basic:*
  {
    name: "echo-basic",
    pattern: /(^|\/)echo-basic(:[^/]*)?(@sha256:[0-9a-f]+)?$/,
    binary: "echo-basic",
    readyPorts: echoBasicPorts,
  },
  // registry.k8s.io/gateway-api-inference-extension/lwepp:* (the inference extension's reference
  // endpoint picker, conformance/tools/inference); its Pods declare their ports and gRPC probes.
  {
    name: "lwepp",
    pattern: /(^|\/)lwepp(:[^/]*)?(@sha256:[0-9a-f]+)?$/,
    binary: "lwepp",
    readyPorts: () => [],
  },
  // registry.k8s.io/coredns/coredns:*, coredns/coredns:*
  {
    name: "coredns",
    pattern: /(^|\/)coredns(:[^/]*)?(@sha256:[0-9a-f]+)?$/,
    binary: "coredns",
    readyPorts: () => [],
  },
];

/** Parses `REGEX=BINARY` mappings (from `minicluster start --image`). */
export function parseImageRules(specs: readonly string[]): ImageRule[] {
  return specs.map((spec) => {
    const eq = spec.lastIndexOf("=");
    if (eq <= 0 || eq === spec.length - 1) throw new Error(`bad image mapping "${spec}" (want REGEX=BINARY)`);
    const binary = spec.slice(eq + 1);
    const pattern = new RegExp(spec.slice(0, eq));
    if (binary.endsWith(".oci.tar")) {
      return { name: basename(binary), pattern, binary, archive: binary, readyPorts: () => [] };
    }
    return { name: basename(binary), pattern, binary, readyPorts: () => [] };
  });
}

export type ImageResolution = { ok: true; rule: ImageRule; binary: string } | { ok: false; message: string };

export function resolveImage(
  image: string,
  rules: readonly ImageRule[],
  binaries: Readonly<Record<string, string>>,
): ImageResolution {
  for (const rule of rules) {
    if (!rule.pattern.test(image)) continue;
    const binary = rule.binary.startsWith("/") ? rule.binary : binaries[rule.binary];
    if (binary === undefined)
      return { ok: false, message: `image ${image} maps to "${rule.binary}", which is not built` };
    return { ok: true, rule, binary };
  }
  const known = rules.map((r) => r.name).join(", ");
  return {
    ok: false,
    message: `the fake kubelet has no local binary for image "${image}" (it runs: ${known}; add one with minicluster start --image REGEX=BINARY)`,
  };
}

/**
 * The argv of a container: the image's binary, then `command[1:]` (when the command names the
 * image's own entrypoint) and `args`. A command that runs something else cannot be honoured.
 */
export function containerArgv(
  binary: string,
  command: readonly string[] | undefined,
  args: readonly string[] | undefined,
): { ok: true; argv: string[] } | { ok: false; message: string } {
  if (command === undefined || command.length === 0) return { ok: true, argv: [binary, ...(args ?? [])] };
  const first = command[0] ?? "";
  if (basename(first) !== basename(binary)) {
    return {
      ok: false,
      message: `command ${JSON.stringify(command)} is not the image's entrypoint (${basename(binary)}); the fake kubelet runs only that`,
    };
  }
  return { ok: true, argv: [binary, ...command.slice(1), ...(args ?? [])] };
}
