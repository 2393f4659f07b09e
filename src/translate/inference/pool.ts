// InferencePool (Gateway API Inference Extension v1.6.0) as an HTTPRoute backend: the pool's
// endpoints, and its endpoint picker.
//
// Endpoints: the Pods of the pool's namespace matching `spec.selector.matchLabels`, ready and not
// being deleted, at `status.podIP`, each on every `spec.targetPorts[].number` ("Every port will be
// treated as a distinctive endpoint ... addressable as a 'podIP:portNumber' combination").
// A backendRef's `port` is ignored for a pool (the conformance test
// InferencePoolHTTPRoutePortValidation: "HTTP Port is ignored when inferencePool is backendRef").
//
// The endpoint picker (`spec.endpointPickerRef`): the IR backend carries it (`IRBackend.picker`: the
// picker Service port's ready endpoints, its transport and the failureMode); the data plane's picker
// bridge calls it for every request (src/dataplane/epp, docs/inference.md):
// - no endpointPickerRef: allowed since v1.5.0 for implementations that balance on their own, which
//   Gatehouse does (HAProxy's balancing over the ready endpoints);
// - failureMode FailOpen: "the parent should forward the request to an endpoint of its picking when
//   the Endpoint Picker extension fails" — HAProxy balances over the pool's ready endpoints;
// - failureMode FailClose (the default): "the parent should drop the request" — 503;
// - a picker reference that does not resolve (a kind other than Service, or a Service that does not
//   exist or lacks the port): a configuration error, not an outage, so 503 whatever the failureMode.
// The pool's status says which of these applies, in the message of its Accepted condition.
import { isIP } from "node:net";
import type { IRBackendProtocol, IREndpoint, IRPicker } from "../../ir/types.ts";
import type { Pod } from "../../resources/core.ts";
import type { InferencePool } from "../../resources/generated/inference-types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import {
  serviceEndpoints,
  type BackendRef,
  type BackendResult,
  type ProtocolFamily,
  type RefSource,
} from "../backends.ts";
import { referenceAllowed } from "../referencegrant.ts";

export const INFERENCE_GROUP = "inference.networking.k8s.io";
export const INFERENCE_POOL_KIND = "InferencePool";

/** Whether a backendRef names an InferencePool (the hook in resolveBackendRef). */
export function isInferencePoolRef(ref: BackendRef): boolean {
  return (ref.group ?? "") === INFERENCE_GROUP && (ref.kind ?? "Service") === INFERENCE_POOL_KIND;
}

/** How requests to a pool are routed, and why. */
export type PickerMode =
  | { kind: "none" }
  | { kind: "failOpen"; picker: string; ir: IRPicker }
  | { kind: "failClose"; picker: string; ir: IRPicker }
  | { kind: "invalid"; problem: string };

/** The endpointPickerRef of a pool, resolved against the snapshot. */
export function pickerMode(snapshot: Snapshot, pool: InferencePool): PickerMode {
  const ref = pool.spec.endpointPickerRef;
  if (ref === undefined) return { kind: "none" };
  const namespace = pool.metadata.namespace ?? "default";
  const group = ref.group ?? "";
  const kind = ref.kind ?? "Service";
  if (group !== "" || kind !== "Service") {
    return {
      kind: "invalid",
      problem: `endpointPickerRef: ${group === "" ? "" : group + "/"}${kind} is not supported; the endpoint picker must be a core Service`,
    };
  }
  const service = snapshot.services.get(`${namespace}/${ref.name}`);
  if (service === undefined)
    return { kind: "invalid", problem: `endpointPickerRef: Service ${namespace}/${ref.name} not found` };
  if (service.spec?.type === "ExternalName")
    return {
      kind: "invalid",
      problem: `endpointPickerRef: Service ${namespace}/${ref.name} is of type ExternalName, which must not be used`,
    };
  const port = ref.port?.number;
  const servicePort = (service.spec?.ports ?? []).find(
    (p) => p.port === port && (p.protocol ?? "TCP") === "TCP",
  );
  if (port === undefined || servicePort === undefined)
    return {
      kind: "invalid",
      problem: `endpointPickerRef: Service ${namespace}/${ref.name} has no port ${port ?? "(none given)"}`,
    };
  const picker = `Service ${namespace}/${ref.name} port ${port}`;
  const failureMode = (ref.failureMode ?? "FailClose") === "FailOpen" ? "FailOpen" : "FailClose";
  const ir: IRPicker = {
    service: `${namespace}/${ref.name}:${port}`,
    endpoints: serviceEndpoints(snapshot, service, servicePort),
    // The reference picker serves ext_proc over TLS unless told otherwise (--secure-serving=false),
    // which a Service port says with appProtocol kubernetes.io/h2c.
    transport: servicePort.appProtocol?.toLowerCase() === "kubernetes.io/h2c" ? "h2c" : "tls",
    failureMode,
  };
  return failureMode === "FailOpen" ? { kind: "failOpen", picker, ir } : { kind: "failClose", picker, ir };
}

/** Resolves a backendRef to an InferencePool (the caller checked isInferencePoolRef). */
export function resolveInferencePoolRef(
  snapshot: Snapshot,
  from: RefSource,
  ref: BackendRef,
  family: ProtocolFamily,
  field: string,
): BackendResult {
  const namespace = ref.namespace ?? from.namespace;
  if (family !== "http") {
    return {
      ok: false,
      reason: "InvalidKind",
      message: `${field}: an InferencePool is a backend of HTTPRoutes only`,
    };
  }
  const to = { group: INFERENCE_GROUP, kind: INFERENCE_POOL_KIND, namespace, name: ref.name };
  if (!referenceAllowed(snapshot.referenceGrants, from, to)) {
    return {
      ok: false,
      reason: "RefNotPermitted",
      message: `${field}: InferencePool ${namespace}/${ref.name} is in another namespace and no ReferenceGrant allows ${from.kind} from ${from.namespace}`,
    };
  }
  const pool = snapshot.inferencePools.get(`${namespace}/${ref.name}`);
  if (pool === undefined) {
    return {
      ok: false,
      reason: "BackendNotFound",
      message: `${field}: InferencePool ${namespace}/${ref.name} not found`,
    };
  }
  const mode = pickerMode(snapshot, pool);
  return {
    ok: true,
    backend: {
      id: poolBackendId(namespace, ref.name),
      source: { kind: INFERENCE_POOL_KIND, namespace, name: ref.name },
      port: pool.spec.targetPorts[0]?.number ?? 0,
      protocol: poolProtocol(pool),
      // An unresolvable picker: no endpoints, 503.
      endpoints: mode.kind === "invalid" ? [] : poolEndpoints(snapshot, pool),
      ...(mode.kind === "failOpen" || mode.kind === "failClose" ? { picker: mode.ir } : {}),
    },
  };
}

/** `inferencepool/<ns>/<name>` */
export function poolBackendId(namespace: string, name: string): string {
  return `inferencepool/${namespace}/${name}`;
}

function poolProtocol(pool: InferencePool): IRBackendProtocol {
  return pool.spec.appProtocol === "kubernetes.io/h2c" ? "h2c" : "http";
}

/** A Pod counts as ready when its Ready condition is True, or (static Pods) it has none and runs. */
export function podReady(pod: Pod): boolean {
  if (pod.metadata.deletionTimestamp !== undefined) return false;
  const phase = pod.status?.phase;
  if (phase !== undefined && phase !== "Running") return false;
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  return ready === undefined ? true : ready.status === "True";
}

/** The Pod's primary IP (status.podIP, else the first of status.podIPs), if it is an IP. */
function podAddress(pod: Pod): string | undefined {
  const ip = pod.status?.podIP ?? pod.status?.podIPs?.[0]?.ip;
  return ip !== undefined && isIP(ip) !== 0 ? ip : undefined;
}

/** Whether a pool's selector selects a Pod (same namespace, every matchLabels entry). */
export function selects(pool: InferencePool, pod: Pod): boolean {
  if ((pod.metadata.namespace ?? "default") !== (pool.metadata.namespace ?? "default")) return false;
  const labels = pod.metadata.labels ?? {};
  const wanted = Object.entries(pool.spec.selector.matchLabels);
  return wanted.length > 0 && wanted.every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}

/** The selected Pods (ready or not), sorted by name. */
export function selectedPods(snapshot: Snapshot, pool: InferencePool): Pod[] {
  return [...snapshot.pods.values()].filter((p) => selects(pool, p));
}

/** Ready endpoints of a pool: every ready selected Pod's IP on every target port, sorted. */
export function poolEndpoints(snapshot: Snapshot, pool: InferencePool): IREndpoint[] {
  const found = new Map<string, IREndpoint>();
  for (const pod of selectedPods(snapshot, pool)) {
    if (!podReady(pod)) continue;
    const address = podAddress(pod);
    if (address === undefined) continue;
    for (const { number } of pool.spec.targetPorts)
      found.set(`${address}|${number}`, { address, port: number });
  }
  return [...found.values()].sort((a, b) =>
    a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port,
  );
}
