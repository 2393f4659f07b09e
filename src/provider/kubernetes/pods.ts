// Pods in the Kubernetes provider: they are read only as the endpoints of InferencePools.
//
// Why all Pods, field-trimmed, and not one watch per pool selector: a list/watch takes one label
// selector, and selectors cannot be OR-ed, so "Pods matching some pool" would need one informer per
// distinct (namespace, matchLabels) of the pools, started and stopped as pools come and go. That is
// worth doing for clusters with many Pods and few pools (see docs/inference.md), but it adds a second
// life cycle of informers to the provider. A metadata-only watch (as for Secrets) is not enough: the
// pool needs `status.podIP` and the Ready condition, which PartialObjectMetadata does not carry.
// So Pods are watched in full and trimmed at once (trimPod) to what a pool reads: name, namespace,
// labels, deletionTimestamp, resourceVersion, and status phase, podIP(s) and the Ready condition.
// Two things keep unrelated Pods from costing translations:
// - the snapshot holds only Pods that some InferencePool selects (poolPods), and
// - a Pod event asks for a new snapshot only when the Pod is, or was in the last snapshot, selected
//   by a pool (PodRelevance): Pod churn elsewhere in the cluster never re-translates.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KubeObject } from "../../resources/meta.ts";

const POD_METADATA_KEPT = new Set([
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "labels",
  "deletionTimestamp",
  "generation",
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Trims a Pod in place to the fields an InferencePool reads (the informer caches this object). */
export function trimPod<T extends KubernetesObject>(obj: T): T {
  const record = obj as unknown as Record<string, unknown>;
  for (const key of Object.keys(record))
    if (key !== "apiVersion" && key !== "kind" && key !== "metadata" && key !== "status")
      Reflect.deleteProperty(record, key);
  const meta = record["metadata"];
  if (isRecord(meta))
    for (const key of Object.keys(meta)) if (!POD_METADATA_KEPT.has(key)) Reflect.deleteProperty(meta, key);
  const status = record["status"];
  if (isRecord(status)) {
    const kept: Record<string, unknown> = {};
    for (const key of ["phase", "podIP", "podIPs"]) if (status[key] !== undefined) kept[key] = status[key];
    const conditions = status["conditions"];
    if (Array.isArray(conditions)) {
      const ready = conditions
        .filter((c): c is Record<string, unknown> => isRecord(c) && c["type"] === "Ready")
        .map((c) => ({ type: "Ready", status: c["status"] }));
      if (ready.length > 0) kept["conditions"] = ready;
    }
    for (const key of Object.keys(status)) Reflect.deleteProperty(status, key);
    Object.assign(status, kept);
  }
  return obj;
}

/** namespace → the matchLabels of every InferencePool in it. */
type Selectors = Map<string, Array<Record<string, string>>>;

function poolSelectors(objects: readonly KubeObject[]): Selectors {
  const out: Selectors = new Map();
  for (const o of objects) {
    if (o.kind !== "InferencePool") continue;
    const spec = o["spec"];
    const selector = isRecord(spec) ? spec["selector"] : undefined;
    const matchLabels = isRecord(selector) ? selector["matchLabels"] : undefined;
    if (!isRecord(matchLabels) || Object.keys(matchLabels).length === 0) continue;
    const namespace = o.metadata.namespace ?? "default";
    let list = out.get(namespace);
    if (list === undefined) out.set(namespace, (list = []));
    list.push(matchLabels as Record<string, string>);
  }
  return out;
}

function selected(
  pod: { metadata?: { namespace?: string; labels?: Record<string, string> } },
  selectors: Selectors,
): boolean {
  const list = selectors.get(pod.metadata?.namespace ?? "default");
  if (list === undefined) return false;
  const labels = pod.metadata?.labels ?? {};
  return list.some((m) => Object.entries(m).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v));
}

function podKey(pod: { metadata?: { namespace?: string; name?: string } }): string {
  return `${pod.metadata?.namespace ?? "default"}/${pod.metadata?.name ?? ""}`;
}

/**
 * `objects` without the Pods no InferencePool selects (a pool selects Pods of its own namespace by
 * `spec.selector.matchLabels`).
 */
export function poolPods(objects: readonly KubeObject[]): KubeObject[] {
  const selectors = poolSelectors(objects);
  return objects.filter((o) => o.kind !== "Pod" || selected(o, selectors));
}

/**
 * Decides whether a Pod event can change the snapshot: the Pod is selected by a pool now, or it was
 * in the last snapshot delivered (its labels may have changed, or it was deleted).
 */
export class PodRelevance {
  #selectors: Selectors = new Map();
  #delivered = new Set<string>();

  /** Called with the objects of each snapshot delivered (after poolPods). */
  delivered(objects: readonly KubeObject[]): void {
    this.#selectors = poolSelectors(objects);
    this.#delivered = new Set(objects.filter((o) => o.kind === "Pod").map(podKey));
  }

  relevant(pod: KubernetesObject): boolean {
    return this.#delivered.has(podKey(pod)) || selected(pod, this.#selectors);
  }
}
