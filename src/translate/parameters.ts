// Gateway parameters under `--infrastructure kubernetes`: a GatewayClass's spec.parametersRef and a
// Gateway's spec.infrastructure.parametersRef name a gatehouse.dev GatehouseProxy. The spec: "If the
// referent cannot be found, refers to an unsupported kind, or when the data within that resource is
// malformed, the GatewayClass [Gateway] SHOULD be rejected with the "Accepted" status condition set
// to "False" and an "InvalidParameters" reason."
//
// Merge (the spec leaves it to the implementation; "GatewayClass provides defaults that can be
// overridden by a Gateway"): the class's parameters, then the Gateway's over them, field by field:
// - objects (service, image, haproxy, haproxy.timeouts, resources) merge field by field;
// - string maps (nodeSelector, podLabels, podAnnotations, service.annotations, resources.limits,
//   resources.requests) merge key by key;
// - lists (tolerations, topologySpreadConstraints) and affinity are replaced as a whole;
// - replicas and autoscaling are one choice: a Gateway that sets either drops both of the class's;
// - podDisruptionBudget is replaced as a whole (minAvailable and maxUnavailable exclude each other).
// The merged result is validated again (e.g. a class's loadBalancerClass with a Gateway's
// service type ClusterIP is refused).
// Pure: the translator and the infrastructure reconciler both call it on the same snapshot.
import {
  GATEHOUSE_GROUP,
  GATEHOUSE_PROXY_API_VERSION,
  GATEHOUSE_PROXY_KIND,
  type GatehouseProxy,
  type GatehouseProxySpec,
} from "../resources/gatehouseproxy.ts";
import type { Gateway, GatewayClass } from "../resources/generated/types.ts";
import type { KubeObject } from "../resources/meta.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import { validateObject } from "../resources/validate.ts";

export type Parameters = { ok: true; spec: GatehouseProxySpec } | { ok: false; message: string };

const EMPTY: Parameters = { ok: true, spec: {} };

/** The GatewayClass's parameters (`field` names the reference in messages). */
export function classParameters(snapshot: Snapshot, gatewayClass: GatewayClass): Parameters {
  const ref = gatewayClass.spec.parametersRef;
  if (ref === undefined) return EMPTY;
  const field = "spec.parametersRef";
  const kind = checkKind(field, ref.group, ref.kind);
  if (kind !== undefined) return kind;
  if (ref.namespace === undefined || ref.namespace === "")
    return {
      ok: false,
      message: `${field}.namespace: required: a GatehouseProxy is namespaced; name its namespace`,
    };
  return lookup(snapshot, field, ref.namespace, ref.name);
}

/** The Gateway's own parameters (spec.infrastructure.parametersRef, in the Gateway's namespace). */
export function gatewayOwnParameters(snapshot: Snapshot, gateway: Gateway): Parameters {
  const ref = gateway.spec.infrastructure?.parametersRef;
  if (ref === undefined) return EMPTY;
  const field = "spec.infrastructure.parametersRef";
  const kind = checkKind(field, ref.group, ref.kind);
  if (kind !== undefined) return kind;
  return lookup(snapshot, field, gateway.metadata.namespace ?? "default", ref.name);
}

/**
 * The Gateway's merged parameters: its class's, then its own. The class's are assumed valid (a
 * class with invalid parameters is not accepted, and neither are its Gateways).
 */
export function gatewayParameters(
  snapshot: Snapshot,
  gateway: Gateway,
  classSpec: GatehouseProxySpec,
): Parameters {
  const own = gatewayOwnParameters(snapshot, gateway);
  if (!own.ok) return own;
  if (gateway.spec.infrastructure?.parametersRef === undefined) return { ok: true, spec: classSpec };
  const merged = mergeParameters(classSpec, own.spec);
  const errors = validateSpec(merged);
  if (errors !== undefined)
    return {
      ok: false,
      message: `spec.infrastructure.parametersRef: merged over the GatewayClass's parameters, the result is invalid: ${errors}`,
    };
  return { ok: true, spec: merged };
}

function checkKind(field: string, group: string, kind: string): Parameters | undefined {
  if (group === GATEHOUSE_GROUP && kind === GATEHOUSE_PROXY_KIND) return undefined;
  return {
    ok: false,
    message: `${field}: ${group === "" ? "core" : group}/${kind} is not supported; reference a ${GATEHOUSE_GROUP} ${GATEHOUSE_PROXY_KIND}`,
  };
}

function lookup(snapshot: Snapshot, field: string, namespace: string, name: string): Parameters {
  const proxy = snapshot.gatehouseProxies.get(`${namespace}/${name}`);
  if (proxy === undefined)
    return { ok: false, message: `${field}: ${GATEHOUSE_PROXY_KIND} ${namespace}/${name} not found` };
  const errors = validateProxy(proxy);
  if (errors !== undefined)
    return {
      ok: false,
      message: `${field}: ${GATEHOUSE_PROXY_KIND} ${namespace}/${name} is invalid: ${errors}`,
    };
  return { ok: true, spec: proxy.spec ?? {} };
}

const verdicts = new WeakMap<object, string | null>();

/** The object's schema and CEL errors as one message, or undefined when it is valid (cached per object). */
function validateProxy(proxy: GatehouseProxy): string | undefined {
  const cached = verdicts.get(proxy);
  if (cached !== undefined) return cached ?? undefined;
  const { errors } = validateObject(proxy as unknown as KubeObject);
  const message =
    errors.length === 0
      ? undefined
      : errors
          .slice(0, 5)
          .map((e) => `${e.path === "" ? "" : `${e.path}: `}${e.message}`)
          .join("; ") + (errors.length > 5 ? `; and ${errors.length - 5} more` : "");
  verdicts.set(proxy, message ?? null);
  return message;
}

function validateSpec(spec: GatehouseProxySpec): string | undefined {
  return validateProxy({
    apiVersion: GATEHOUSE_PROXY_API_VERSION,
    kind: GATEHOUSE_PROXY_KIND,
    metadata: { name: "merged", namespace: "merged" },
    spec,
  });
}

type Json = Record<string, unknown>;

function mergeMap<T>(a: Record<string, T> | undefined, b: Record<string, T> | undefined) {
  return a === undefined ? b : b === undefined ? a : { ...a, ...b };
}

function mergeFields<T extends Json>(a: T | undefined, b: T | undefined, maps: readonly string[] = []) {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const out: Json = { ...a, ...b };
  for (const key of maps) {
    const merged = mergeMap(a[key] as Json | undefined, b[key] as Json | undefined);
    if (merged !== undefined) out[key] = merged;
  }
  return out as T;
}

/** `gateway` over `base` (see the top of this file). */
export function mergeParameters(base: GatehouseProxySpec, gateway: GatehouseProxySpec): GatehouseProxySpec {
  const out: GatehouseProxySpec = { ...base, ...gateway };
  if (gateway.replicas !== undefined || gateway.autoscaling !== undefined) {
    delete out.replicas;
    delete out.autoscaling;
    if (gateway.replicas !== undefined) out.replicas = gateway.replicas;
    if (gateway.autoscaling !== undefined) out.autoscaling = gateway.autoscaling;
  }
  const set = <K extends keyof GatehouseProxySpec>(key: K, value: GatehouseProxySpec[K] | undefined) => {
    if (value === undefined) Reflect.deleteProperty(out, key);
    else out[key] = value;
  };
  set("resources", mergeFields(base.resources, gateway.resources, ["limits", "requests"]));
  set("service", mergeFields(base.service, gateway.service, ["annotations"]));
  set("image", mergeFields(base.image, gateway.image));
  const haproxy = mergeFields(base.haproxy, gateway.haproxy);
  if (haproxy !== undefined) {
    const timeouts = mergeFields(base.haproxy?.timeouts, gateway.haproxy?.timeouts);
    set("haproxy", timeouts === undefined ? haproxy : { ...haproxy, timeouts });
  }
  set("nodeSelector", mergeMap(base.nodeSelector, gateway.nodeSelector));
  set("podLabels", mergeMap(base.podLabels, gateway.podLabels));
  set("podAnnotations", mergeMap(base.podAnnotations, gateway.podAnnotations));
  return out;
}
