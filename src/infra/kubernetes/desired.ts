// The Kubernetes objects of one Gateway's data plane (`--infrastructure kubernetes`), from the
// Gateway, its merged GatehouseProxy parameters and the controller's options. Pure: the same inputs
// give the same objects (the reconciler applies an object only when this output changes).
//
// Every object lives in the Gateway's namespace (owner references cannot cross namespaces), is named
// objectName(gateway), carries the Gateway's spec.infrastructure labels and annotations (our own
// labels win), and is owned by the Gateway (controller, blockOwnerDeletion): deleting the Gateway
// deletes them (the garbage collector).
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import type { IssuedCertificate } from "../../distribute/contract.ts";
import type { GatehouseProxySpec } from "../../resources/gatehouseproxy.ts";
import type { Gateway } from "../../resources/generated/types.ts";
import { parseDuration } from "../../translate/duration.ts";

export const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "gatehouse";
export const COMPONENT_LABEL = "app.kubernetes.io/component";
export const COMPONENT = "dataplane";
/** The controller's namespace: two controllers in different namespaces never touch each other's objects. */
export const CONTROLLER_NAMESPACE_LABEL = "gatehouse.dev/controller-namespace";
/** Pod-template annotation: hash of the configuration-independent inputs (a change rolls the pods). */
export const PARAMETERS_HASH_ANNOTATION = "gatehouse.dev/parameters-hash";

export const TLS_DIR = "/etc/gatehouse/tls";
/** The emptyDir's mount point; the agent's state dir is a directory of its own inside it. */
export const STATE_VOLUME = "/var/run/gatehouse";
/**
 * An emptyDir belongs to root (mode 0777, or group-writable with fsGroup): the agent, which wants
 * a state directory it owns, creates this one in it.
 */
export const STATE_DIR = `${STATE_VOLUME}/state`;
export const ADMIN_PORT = 9901;
/** The data plane's drain before HAProxy's hard stop (see the dataplane). */
export const DRAIN_SECONDS = 5;
/** The dataplane's --hard-stop-after default. */
export const DEFAULT_HARD_STOP_AFTER = "10m";
const RUN_AS = 65532;

export interface DesiredOptions {
  /** The data-plane image (`repository:tag` or `repository@digest`); GatehouseProxy spec.image overrides. */
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  imagePullSecrets?: readonly string[];
  /** Where pods reach the controller's config stream (`host:port`). */
  controllerAddress: string;
  /** The controller's namespace (a label on every object, see CONTROLLER_NAMESPACE_LABEL). */
  controllerNamespace: string;
}

/** A listener port the data plane serves. */
export interface DesiredPort {
  port: number;
  protocol: "TCP" | "UDP";
}

export interface DesiredInput {
  gateway: Gateway;
  parameters: GatehouseProxySpec;
  /** Listener ports (the Gateway's and its ListenerSets'). */
  ports: readonly DesiredPort[];
  certificate: IssuedCertificate;
  options: DesiredOptions;
}

export interface KubeManifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences: Array<Record<string, unknown>>;
  };
  [field: string]: unknown;
}

/** A requested address the Service cannot honour: the Gateway reports Programmed False with this reason. */
export interface AddressProblem {
  reason: "AddressNotUsable";
  message: string;
}

export interface DesiredObjects {
  /** ServiceAccount, Secret, Deployment, Service (unless addressProblem), PodDisruptionBudget?, HorizontalPodAutoscaler?. */
  objects: KubeManifest[];
  /** The IPv4 address requested through spec.addresses (the Service's loadBalancerIP), if any. */
  requestedAddress?: string;
  addressProblem?: AddressProblem;
}

const hash = (text: string, length: number): string =>
  createHash("sha256").update(text).digest("hex").slice(0, length);

/**
 * A DNS-1035 label (≤ 63) from `prefix` and a name: `prefix + name` when that is one already, else
 * the name lowercased, with other characters turned into `-`, cut to fit before `-<hash of the name>`
 * (so two names never give the same result unless their hashes collide).
 */
export function boundedName(prefix: string, name: string, max = 63): string {
  const plain = `${prefix}${name}`;
  if (plain.length <= max && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(plain)) return plain;
  const suffix = `-${hash(name, 10)}`;
  const body = `${prefix}${name.toLowerCase().replace(/[^-a-z0-9]/g, "-")}`
    .slice(0, max - suffix.length)
    .replace(/-+$/, "");
  return `${body}${suffix}`;
}

/** Name of every object of a Gateway's data plane. */
export function objectName(gatewayName: string): string {
  return boundedName("gatehouse-", gatewayName);
}

/** The gateway-name label value: the name itself when it is a valid label value, else bounded with a hash. */
export function gatewayLabelValue(gatewayName: string): string {
  if (gatewayName.length <= 63 && /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/.test(gatewayName))
    return gatewayName;
  const suffix = `-${hash(gatewayName, 10)}`;
  return `${gatewayName.slice(0, 63 - suffix.length).replace(/[^A-Za-z0-9]+$/, "")}${suffix}`;
}

/** The labels that select a Gateway's pods (also on every object; the Deployment's selector, immutable). */
export function selectorLabels(gatewayName: string): Record<string, string> {
  return {
    [GATEWAY_NAME_LABEL]: gatewayLabelValue(gatewayName),
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [COMPONENT_LABEL]: COMPONENT,
  };
}

/** The image of the pods: the controller's default with GatehouseProxy spec.image over it. */
export function imageOf(defaultImage: string, override: GatehouseProxySpec["image"]): string {
  if (override?.repository === undefined && override?.tag === undefined) return defaultImage;
  const at = defaultImage.indexOf("@");
  const colon = defaultImage.lastIndexOf(":");
  const tagged = at < 0 && colon > defaultImage.lastIndexOf("/");
  const repository =
    at >= 0 ? defaultImage.slice(0, at) : tagged ? defaultImage.slice(0, colon) : defaultImage;
  const tag = tagged ? defaultImage.slice(colon + 1) : undefined;
  const repo = override.repository ?? repository;
  // A digest names the default repository's image: another repository or tag does not keep it.
  const t = override.tag ?? tag;
  return t === undefined ? repo : `${repo}:${t}`;
}

/** `dataplane ...` arguments of the container. */
export function dataplaneArgs(
  gateway: Gateway,
  parameters: GatehouseProxySpec,
  controllerAddress: string,
): string[] {
  const h = parameters.haproxy;
  const args = [
    "dataplane",
    "--controller",
    controllerAddress,
    "--gateway",
    `${gateway.metadata.namespace ?? "default"}/${gateway.metadata.name}`,
    "--tls-dir",
    TLS_DIR,
    "--admin",
    `0.0.0.0:${ADMIN_PORT}`,
    "--state-dir",
    STATE_DIR,
  ];
  if (h?.threads !== undefined) args.push("--threads", String(h.threads));
  if (h?.maxconn !== undefined) args.push("--maxconn", String(h.maxconn));
  if (h?.timeouts?.connect !== undefined) args.push("--timeout-connect", h.timeouts.connect);
  if (h?.timeouts?.client !== undefined) args.push("--timeout-client", h.timeouts.client);
  if (h?.timeouts?.server !== undefined) args.push("--timeout-server", h.timeouts.server);
  if (h?.hardStopAfter !== undefined) args.push("--hard-stop-after", h.hardStopAfter);
  args.push(...accessLogArgs(parameters.accessLog));
  return args;
}

/**
 * spec.accessLog as the dataplane's --access-log-format / --access-log-output (nothing when unset:
 * the dataplane's defaults, JSON lines on stdout). The schema checked every value (the template's
 * fields, no control characters); they are arguments, never parsed by a shell.
 */
export function accessLogArgs(log: GatehouseProxySpec["accessLog"]): string[] {
  if (log === undefined) return [];
  const args: string[] = [];
  if (log.format !== undefined)
    args.push(
      "--access-log-format",
      log.format === "custom" ? `custom:${log.template ?? ""}` : log.format === "none" ? "off" : log.format,
    );
  if (log.output === "file" && log.path !== undefined) args.push("--access-log-output", `file:${log.path}`);
  else if (log.output === "syslog" && log.syslog !== undefined) {
    const host = log.syslog.host.includes(":") ? `[${log.syslog.host}]` : log.syslog.host;
    args.push("--access-log-output", `syslog:${host}:${log.syslog.port}`);
  } else if (log.output === "stdout") args.push("--access-log-output", "stdout");
  return args;
}

const portName = (p: DesiredPort): string => `${p.protocol.toLowerCase()}-${p.port}`;

/** The listener ports, deduplicated and sorted (a port may serve TCP and UDP). */
export function normalisePorts(ports: readonly DesiredPort[]): DesiredPort[] {
  const seen = new Map<string, DesiredPort>();
  for (const p of ports) seen.set(portName(p), { port: p.port, protocol: p.protocol });
  return [...seen.values()].sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : 1));
}

/** What the Service does with spec.addresses (IPAddress values; the translator refused other types). */
function requestedAddresses(
  gateway: Gateway,
  serviceType: string,
): { address?: string; problem?: AddressProblem } {
  const values = [
    ...new Set(
      (gateway.spec.addresses ?? [])
        .filter((a) => (a.type ?? "IPAddress") === "IPAddress" && a.value !== undefined && a.value !== "")
        .map((a) => a.value as string),
    ),
  ];
  if (values.length === 0) return {};
  const fix =
    "Gatehouse requests one IPv4 address of a LoadBalancer Service (spec.loadBalancerIP): give at most one IPv4 value, or none to have one assigned";
  if (serviceType !== "LoadBalancer")
    return {
      problem: {
        reason: "AddressNotUsable",
        message: `spec.addresses: ${values.join(", ")} cannot be requested of a ${serviceType} Service; ${fix}`,
      },
    };
  const [only] = values;
  if (values.length > 1 || only === undefined || isIP(only) !== 4)
    return {
      problem: {
        reason: "AddressNotUsable",
        message: `spec.addresses: ${values.join(", ")} cannot be requested; ${fix}`,
      },
    };
  return { address: only };
}

/** Stable JSON (sorted keys) for hashes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function desiredObjects(input: DesiredInput): DesiredObjects {
  const { gateway, parameters: p, options } = input;
  const namespace = gateway.metadata.namespace ?? "default";
  const name = objectName(gateway.metadata.name);
  const uid = gateway.metadata.uid;
  if (uid === undefined || uid === "")
    throw new Error(
      `Gateway ${namespace}/${gateway.metadata.name} has no metadata.uid (not from an API server)`,
    );
  const selector = selectorLabels(gateway.metadata.name);
  const infraLabels = gateway.spec.infrastructure?.labels ?? {};
  const infraAnnotations = gateway.spec.infrastructure?.annotations ?? {};
  const labels = {
    ...infraLabels,
    ...selector,
    [CONTROLLER_NAMESPACE_LABEL]: options.controllerNamespace,
  };
  const meta = (extraAnnotations: Record<string, string> = {}): KubeManifest["metadata"] => {
    const annotations = { ...infraAnnotations, ...extraAnnotations };
    return {
      name,
      namespace,
      labels,
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      ownerReferences: [
        {
          apiVersion: "gateway.networking.k8s.io/v1",
          kind: "Gateway",
          name: gateway.metadata.name,
          uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    };
  };
  const ports = normalisePorts(input.ports);
  const image = imageOf(options.image, p.image);
  const pullPolicy = p.image?.pullPolicy ?? options.imagePullPolicy;
  const hardStopMs = parseDuration(p.haproxy?.hardStopAfter ?? DEFAULT_HARD_STOP_AFTER) ?? 600_000;
  const args = dataplaneArgs(gateway, p, options.controllerAddress);

  const serviceAccount: KubeManifest = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: meta(),
    automountServiceAccountToken: false,
  };
  const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
  const secret: KubeManifest = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta(),
    type: "kubernetes.io/tls",
    data: {
      "tls.crt": b64(input.certificate.certPem),
      "tls.key": b64(input.certificate.keyPem),
      "ca.crt": b64(input.certificate.caPem),
    },
  };

  // Everything but the configuration (which comes over the stream) and the certificate (read from
  // the mounted Secret): a change rolls the pods.
  const parametersHash = hash(
    canonicalJson({ parameters: p, image, pullPolicy, args, ports, infraLabels, infraAnnotations }),
    16,
  );
  const podLabels = { ...infraLabels, ...p.podLabels, ...selector };
  const podAnnotations = {
    ...infraAnnotations,
    ...p.podAnnotations,
    [PARAMETERS_HASH_ANNOTATION]: parametersHash,
  };
  const container: Record<string, unknown> = {
    name: "dataplane",
    image,
    ...(pullPolicy !== undefined ? { imagePullPolicy: pullPolicy } : {}),
    args,
    env: [
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    ],
    ports: [
      { name: "admin", containerPort: ADMIN_PORT, protocol: "TCP" },
      ...ports.map((port) => ({ name: portName(port), containerPort: port.port, protocol: port.protocol })),
    ],
    readinessProbe: {
      httpGet: { path: "/ready", port: ADMIN_PORT },
      periodSeconds: 5,
      failureThreshold: 2,
    },
    livenessProbe: {
      httpGet: { path: "/healthz", port: ADMIN_PORT },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      failureThreshold: 3,
    },
    ...(p.resources !== undefined ? { resources: p.resources } : {}),
    securityContext: {
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    },
    volumeMounts: [
      { name: "tls", mountPath: TLS_DIR, readOnly: true },
      { name: "state", mountPath: STATE_VOLUME },
      { name: "tmp", mountPath: "/tmp" },
    ],
  };
  const spread = (p.topologySpreadConstraints ?? []).map((c) =>
    c["labelSelector"] === undefined ? { ...c, labelSelector: { matchLabels: selector } } : c,
  );
  const podSpec: Record<string, unknown> = {
    serviceAccountName: name,
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: DRAIN_SECONDS + Math.ceil(hardStopMs / 1000) + 5,
    securityContext: {
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      runAsNonRoot: true,
      fsGroup: RUN_AS,
      seccompProfile: { type: "RuntimeDefault" },
      // Listeners below 1024 bind without any capability (a namespaced sysctl).
      sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
    },
    containers: [container],
    volumes: [
      { name: "tls", secret: { secretName: name, defaultMode: 0o440 } },
      { name: "state", emptyDir: {} },
      { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
    ],
    ...(options.imagePullSecrets !== undefined && options.imagePullSecrets.length > 0
      ? { imagePullSecrets: options.imagePullSecrets.map((n) => ({ name: n })) }
      : {}),
    ...(p.nodeSelector !== undefined ? { nodeSelector: p.nodeSelector } : {}),
    ...(p.tolerations !== undefined ? { tolerations: p.tolerations } : {}),
    ...(p.affinity !== undefined ? { affinity: p.affinity } : {}),
    ...(spread.length > 0 ? { topologySpreadConstraints: spread } : {}),
  };
  const deployment: KubeManifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(),
    spec: {
      // With an HPA the replica count is the HPA's (not applied by us: no fight over the field).
      ...(p.autoscaling === undefined ? { replicas: p.replicas ?? 1 } : {}),
      selector: { matchLabels: selector },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: { metadata: { labels: podLabels, annotations: podAnnotations }, spec: podSpec },
    },
  };

  const serviceType = p.service?.type ?? "LoadBalancer";
  const addresses = requestedAddresses(gateway, serviceType);
  const objects: KubeManifest[] = [serviceAccount, secret, deployment];
  if (addresses.problem === undefined) {
    objects.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: meta(p.service?.annotations),
      spec: {
        type: serviceType,
        selector,
        ports: ports.map((port) => ({
          name: portName(port),
          protocol: port.protocol,
          port: port.port,
          targetPort: port.port,
        })),
        ...(p.service?.externalTrafficPolicy !== undefined
          ? { externalTrafficPolicy: p.service.externalTrafficPolicy }
          : {}),
        ...(p.service?.loadBalancerClass !== undefined
          ? { loadBalancerClass: p.service.loadBalancerClass }
          : {}),
        ...(addresses.address !== undefined ? { loadBalancerIP: addresses.address } : {}),
      },
    });
  }
  if (p.podDisruptionBudget !== undefined) {
    const pdb = p.podDisruptionBudget;
    objects.push({
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: meta(),
      spec: {
        selector: { matchLabels: selector },
        ...(pdb.minAvailable !== undefined ? { minAvailable: pdb.minAvailable } : {}),
        ...(pdb.maxUnavailable !== undefined ? { maxUnavailable: pdb.maxUnavailable } : {}),
      },
    });
  }
  if (p.autoscaling !== undefined) {
    const a = p.autoscaling;
    objects.push({
      apiVersion: "autoscaling/v2",
      kind: "HorizontalPodAutoscaler",
      metadata: meta(),
      spec: {
        scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
        minReplicas: a.minReplicas ?? 1,
        maxReplicas: a.maxReplicas,
        metrics: [
          {
            type: "Resource",
            resource: {
              name: "cpu",
              target: { type: "Utilization", averageUtilization: a.targetCPUUtilizationPercentage ?? 80 },
            },
          },
        ],
      },
    });
  }
  return {
    objects,
    ...(addresses.address !== undefined ? { requestedAddress: addresses.address } : {}),
    ...(addresses.problem !== undefined ? { addressProblem: addresses.problem } : {}),
  };
}
