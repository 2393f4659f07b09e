// GatehouseProxy (gatehouse.dev/v1alpha1, namespaced): the parameters of a Gateway's data-plane pods
// under `--infrastructure kubernetes`, named by a GatewayClass's spec.parametersRef or a Gateway's
// spec.infrastructure.parametersRef. The OpenAPI schema below (with its CEL rules) is the one source
// of truth: the CRD in charts/gatehouse/crds/ is generated from it (gatehouseproxy.test.ts checks
// that, GATEHOUSE_UPDATE_CRD=1 rewrites it), and validate.ts checks objects against it without an
// API server (the file provider, the translator, tests).
import { ACCESS_LOG_ENTRY_FIELDS, ACCESS_LOG_TEMPLATE_PATTERN } from "../observability/access-log-fields.ts";
import type { StructuralSchema } from "./cel.ts";
import type { ObjectMeta } from "./meta.ts";

export const GATEHOUSE_GROUP = "gatehouse.dev";
export const GATEHOUSE_PROXY_VERSION = "v1alpha1";
export const GATEHOUSE_PROXY_API_VERSION = `${GATEHOUSE_GROUP}/${GATEHOUSE_PROXY_VERSION}`;
export const GATEHOUSE_PROXY_KIND = "GatehouseProxy";
export const GATEHOUSE_PROXY_PLURAL = "gatehouseproxies";

export type IntOrString = number | string;

export interface GatehouseProxySpec {
  replicas?: number;
  autoscaling?: { minReplicas?: number; maxReplicas: number; targetCPUUtilizationPercentage?: number };
  resources?: {
    limits?: Record<string, IntOrString>;
    requests?: Record<string, IntOrString>;
  };
  service?: {
    type?: "LoadBalancer" | "NodePort" | "ClusterIP";
    annotations?: Record<string, string>;
    externalTrafficPolicy?: "Cluster" | "Local";
    loadBalancerClass?: string;
  };
  nodeSelector?: Record<string, string>;
  tolerations?: Array<{
    key?: string;
    operator?: "Exists" | "Equal";
    value?: string;
    effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
    tolerationSeconds?: number;
  }>;
  /** A core/v1 Affinity, passed to the pods as is. */
  affinity?: Record<string, unknown>;
  /** core/v1 TopologySpreadConstraints; without labelSelector they select the Gateway's pods. */
  topologySpreadConstraints?: Array<Record<string, unknown>>;
  podDisruptionBudget?: { minAvailable?: IntOrString; maxUnavailable?: IntOrString };
  image?: { repository?: string; tag?: string; pullPolicy?: "Always" | "IfNotPresent" | "Never" };
  haproxy?: {
    threads?: number;
    maxconn?: number;
    timeouts?: { connect?: string; client?: string; server?: string };
    hardStopAfter?: string;
  };
  podAnnotations?: Record<string, string>;
  podLabels?: Record<string, string>;
  /** HTTP access logs of the data-plane pods (the dataplane's --access-log-* flags). */
  accessLog?: GatehouseProxyAccessLog;
}

export interface GatehouseProxyAccessLog {
  /** Default json; none: no access log (not "off", which YAML 1.1 readers such as kubectl take for false). */
  format?: "none" | "json" | "text" | "custom";
  /** The `{field}` template of format custom. */
  template?: string;
  /** Default stdout (the pod's log). */
  output?: "stdout" | "file" | "syslog";
  /** Absolute path in the dataplane container (output file). */
  path?: string;
  /** Where syslog lines go over UDP (output syslog). */
  syslog?: { host: string; port: number };
}

export interface GatehouseProxy {
  apiVersion: typeof GATEHOUSE_PROXY_API_VERSION;
  kind: typeof GATEHOUSE_PROXY_KIND;
  metadata: ObjectMeta;
  spec?: GatehouseProxySpec;
}

/** Gateway API Duration (GEP-2257), as the dataplane's --timeout-* flags take it. */
const DURATION: StructuralSchema = {
  type: "string",
  pattern: "^([0-9]{1,5}(h|m|s|ms)){1,4}$",
  description: "A Gateway API duration, e.g. 5s, 1m30s, 500ms.",
};

const STRING_MAP = (description: string, maxProperties = 64): StructuralSchema => ({
  type: "object",
  description,
  maxProperties,
  additionalProperties: { type: "string", maxLength: 4096 },
});

const INT_OR_STRING: StructuralSchema = {
  "x-kubernetes-int-or-string": true,
  anyOf: [{ type: "integer" }, { type: "string" }],
};

const QUANTITIES: StructuralSchema = {
  type: "object",
  maxProperties: 16,
  additionalProperties: {
    "x-kubernetes-int-or-string": true,
    anyOf: [{ type: "integer" }, { type: "string" }],
    pattern:
      "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
  },
};

/** spec.accessLog: the dataplane's --access-log-format and --access-log-output. */
const ACCESS_LOG: StructuralSchema = {
  type: "object",
  description:
    "HTTP access logs of the data-plane pods: one line per request with the Gateway, listener, route, rule, " +
    "backend and endpoint, status, timings, bytes, client address and request id. Default: JSON lines on the " +
    "pod's standard output. A Gateway's accessLog replaces its class's as a whole.",
  "x-kubernetes-validations": [
    {
      rule: "has(self.template) == (has(self.format) && self.format == 'custom')",
      message: "template is required with format custom, and allowed only with it",
    },
    {
      rule: "has(self.path) == (has(self.output) && self.output == 'file')",
      message: "path is required with output file, and allowed only with it",
    },
    {
      rule: "has(self.syslog) == (has(self.output) && self.output == 'syslog')",
      message: "syslog is required with output syslog, and allowed only with it",
    },
  ],
  properties: {
    format: {
      type: "string",
      enum: ["none", "json", "text", "custom"],
      description:
        "json (default): one JSON object per line; text: one readable line; custom: template; none: no access log.",
    },
    template: {
      type: "string",
      minLength: 1,
      maxLength: 1024,
      pattern: ACCESS_LOG_TEMPLATE_PATTERN,
      description: `Format custom: text with {field}s, fields among ${ACCESS_LOG_ENTRY_FIELDS.join(", ")}.`,
    },
    output: {
      type: "string",
      enum: ["stdout", "file", "syslog"],
      description: "stdout (default): the pod's log; file: path; syslog: RFC 5424 over UDP to syslog.",
    },
    path: {
      type: "string",
      minLength: 2,
      maxLength: 1024,
      pattern: "^/[^\\x00-\\x1f\\x7f]+$",
      description: "Output file: an absolute path in the dataplane container (e.g. on a mounted volume).",
    },
    syslog: {
      type: "object",
      required: ["host", "port"],
      properties: {
        host: {
          type: "string",
          minLength: 1,
          maxLength: 253,
          pattern: "^[A-Za-z0-9.:-]+$",
          description: "A host name, IPv4 or IPv6 address.",
        },
        port: { type: "integer", format: "int32", minimum: 1, maximum: 65535 },
      },
    },
  },
};

/** openAPIV3Schema of GatehouseProxy v1alpha1. */
export const GATEHOUSE_PROXY_SCHEMA: StructuralSchema = {
  type: "object",
  description:
    "GatehouseProxy: parameters of the data-plane pods Gatehouse runs for a Gateway (--infrastructure kubernetes). " +
    "Named by a GatewayClass's spec.parametersRef (defaults for its Gateways) and a Gateway's " +
    "spec.infrastructure.parametersRef (overrides, field by field).",
  required: ["spec"],
  properties: {
    apiVersion: { type: "string" },
    kind: { type: "string" },
    metadata: { type: "object" },
    spec: {
      type: "object",
      "x-kubernetes-validations": [
        {
          rule: "!(has(self.replicas) && has(self.autoscaling))",
          message: "replicas and autoscaling are mutually exclusive",
        },
      ],
      properties: {
        replicas: {
          type: "integer",
          format: "int32",
          minimum: 0,
          maximum: 1000,
          description: "Number of data-plane pods (default 1). Mutually exclusive with autoscaling.",
        },
        autoscaling: {
          type: "object",
          description: "A HorizontalPodAutoscaler (autoscaling/v2) on CPU utilization.",
          required: ["maxReplicas"],
          "x-kubernetes-validations": [
            {
              rule: "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
              message: "minReplicas must be less than or equal to maxReplicas",
            },
          ],
          properties: {
            minReplicas: { type: "integer", format: "int32", minimum: 1, maximum: 1000 },
            maxReplicas: { type: "integer", format: "int32", minimum: 1, maximum: 1000 },
            targetCPUUtilizationPercentage: {
              type: "integer",
              format: "int32",
              minimum: 1,
              maximum: 100,
              description: "Target average CPU utilization in percent of the requests (default 80).",
            },
          },
        },
        resources: {
          type: "object",
          description: "Compute resources of the dataplane container (core/v1 ResourceRequirements).",
          properties: { limits: QUANTITIES, requests: QUANTITIES },
        },
        service: {
          type: "object",
          description: "The Service that exposes the Gateway's listeners.",
          "x-kubernetes-validations": [
            {
              rule: "!has(self.loadBalancerClass) || !has(self.type) || self.type == 'LoadBalancer'",
              message: "loadBalancerClass requires type LoadBalancer",
            },
            {
              rule: "!has(self.externalTrafficPolicy) || !has(self.type) || self.type != 'ClusterIP'",
              message: "externalTrafficPolicy requires type LoadBalancer or NodePort",
            },
          ],
          properties: {
            type: {
              type: "string",
              enum: ["LoadBalancer", "NodePort", "ClusterIP"],
              description:
                "Service type (default LoadBalancer; no schema default, so that a Gateway's parameters do not override its class's type with it).",
            },
            annotations: STRING_MAP("Annotations of the Service (e.g. for a cloud load balancer)."),
            externalTrafficPolicy: { type: "string", enum: ["Cluster", "Local"] },
            loadBalancerClass: { type: "string", minLength: 1, maxLength: 253 },
          },
        },
        nodeSelector: STRING_MAP("Node labels the pods must run on."),
        tolerations: {
          type: "array",
          maxItems: 64,
          items: {
            type: "object",
            properties: {
              key: { type: "string", maxLength: 316 },
              operator: { type: "string", enum: ["Exists", "Equal"] },
              value: { type: "string", maxLength: 63 },
              effect: { type: "string", enum: ["NoSchedule", "PreferNoSchedule", "NoExecute"] },
              tolerationSeconds: { type: "integer", format: "int64" },
            },
          },
        },
        affinity: {
          type: "object",
          description: "A core/v1 Affinity for the pods (passed as is; the API server checks it).",
          "x-kubernetes-preserve-unknown-fields": true,
        },
        topologySpreadConstraints: {
          type: "array",
          maxItems: 16,
          description:
            "core/v1 TopologySpreadConstraints for the pods; one without labelSelector selects the Gateway's pods.",
          items: {
            type: "object",
            required: ["maxSkew", "topologyKey", "whenUnsatisfiable"],
            "x-kubernetes-preserve-unknown-fields": true,
            properties: {
              maxSkew: { type: "integer", format: "int32", minimum: 1 },
              topologyKey: { type: "string", minLength: 1, maxLength: 316 },
              whenUnsatisfiable: { type: "string", enum: ["DoNotSchedule", "ScheduleAnyway"] },
            },
          },
        },
        podDisruptionBudget: {
          type: "object",
          description: "A PodDisruptionBudget for the pods: exactly one of minAvailable and maxUnavailable.",
          "x-kubernetes-validations": [
            {
              rule: "has(self.minAvailable) != has(self.maxUnavailable)",
              message: "exactly one of minAvailable and maxUnavailable must be set",
            },
          ],
          properties: { minAvailable: INT_OR_STRING, maxUnavailable: INT_OR_STRING },
        },
        image: {
          type: "object",
          description: "The data-plane image (default: the controller's --dataplane-image).",
          properties: {
            repository: { type: "string", minLength: 1, maxLength: 512, pattern: "^[^\\s@]+$" },
            tag: { type: "string", minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9_][A-Za-z0-9_.-]*$" },
            pullPolicy: { type: "string", enum: ["Always", "IfNotPresent", "Never"] },
          },
        },
        haproxy: {
          type: "object",
          description: "HAProxy settings of the data plane (dataplane flags).",
          properties: {
            threads: { type: "integer", format: "int32", minimum: 1, maximum: 64 },
            maxconn: { type: "integer", format: "int32", minimum: 1, maximum: 10000000 },
            timeouts: {
              type: "object",
              properties: { connect: DURATION, client: DURATION, server: DURATION },
            },
            hardStopAfter: DURATION,
          },
        },
        accessLog: ACCESS_LOG,
        podAnnotations: STRING_MAP("Annotations of the pods."),
        podLabels: STRING_MAP("Labels of the pods (they cannot replace the labels Gatehouse selects on)."),
      },
    },
  },
};

/** The CustomResourceDefinition (what the chart installs from crds/). */
export function gatehouseProxyCRD(): Record<string, unknown> {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${GATEHOUSE_PROXY_PLURAL}.${GATEHOUSE_GROUP}` },
    spec: {
      group: GATEHOUSE_GROUP,
      names: {
        kind: GATEHOUSE_PROXY_KIND,
        listKind: `${GATEHOUSE_PROXY_KIND}List`,
        plural: GATEHOUSE_PROXY_PLURAL,
        singular: "gatehouseproxy",
        categories: ["gatehouse"],
      },
      scope: "Namespaced",
      versions: [
        {
          name: GATEHOUSE_PROXY_VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: GATEHOUSE_PROXY_SCHEMA },
        },
      ],
    },
  };
}
