import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KubeObject } from "../../resources/meta.ts";
import { PodRelevance, poolPods, trimPod } from "./pods.ts";

const pool = (namespace: string, matchLabels: Record<string, string>): KubeObject => ({
  apiVersion: "inference.networking.k8s.io/v1",
  kind: "InferencePool",
  metadata: { name: "p", namespace },
  spec: { selector: { matchLabels }, targetPorts: [{ number: 8000 }] },
});
const pod = (name: string, namespace: string, labels: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels },
  status: { podIP: "10.0.0.1" },
});

const k8s = (o: KubeObject): KubernetesObject => o as unknown as KubernetesObject;

test("trimPod keeps labels, podIP(s), phase and the Ready condition only", () => {
  const full = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "vllm-0",
      namespace: "models",
      labels: { app: "vllm" },
      annotations: { big: "x".repeat(1000) },
      managedFields: [{}],
      resourceVersion: "7",
      ownerReferences: [{}],
    },
    spec: { containers: [{ name: "vllm", image: "vllm", env: [{ name: "A", value: "b" }] }] },
    status: {
      phase: "Running",
      podIP: "10.0.0.7",
      podIPs: [{ ip: "10.0.0.7" }],
      hostIP: "192.0.2.1",
      containerStatuses: [{ name: "vllm" }],
      conditions: [
        { type: "PodScheduled", status: "True", lastTransitionTime: "x" },
        { type: "Ready", status: "True", lastTransitionTime: "x" },
      ],
    },
  };
  assert.deepEqual(trimPod(full as unknown as KubernetesObject), {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "vllm-0", namespace: "models", labels: { app: "vllm" }, resourceVersion: "7" },
    status: {
      phase: "Running",
      podIP: "10.0.0.7",
      podIPs: [{ ip: "10.0.0.7" }],
      conditions: [{ type: "Ready", status: "True" }],
    },
  });
});

test("poolPods keeps the Pods some pool of their namespace selects, and every other object", () => {
  const objects = [
    pool("models", { app: "vllm", tier: "gpu" }),
    pod("selected", "models", { app: "vllm", tier: "gpu", extra: "yes" }),
    pod("partial", "models", { app: "vllm" }),
    pod("elsewhere", "other", { app: "vllm", tier: "gpu" }),
  ];
  assert.deepEqual(
    poolPods(objects).map((o) => `${o.kind} ${o.metadata.name}`),
    ["InferencePool p", "Pod selected"],
  );
  assert.deepEqual(poolPods([pod("alone", "models", { app: "vllm" })]), []);
});

test("PodRelevance: events of selected Pods, or of Pods in the last snapshot, count; others do not", () => {
  const relevance = new PodRelevance();
  const selected = pod("selected", "models", { app: "vllm" });
  const other = pod("other", "models", { app: "web" });
  // Before any snapshot nothing is selected.
  assert.equal(relevance.relevant(k8s(selected)), false);
  relevance.delivered(poolPods([pool("models", { app: "vllm" }), selected, other]));
  assert.equal(relevance.relevant(k8s(selected)), true);
  assert.equal(relevance.relevant(k8s(other)), false);
  // The selected Pod loses its label: still relevant (it must leave the snapshot).
  const relabelled = pod("selected", "models", { app: "web" });
  assert.equal(relevance.relevant(k8s(relabelled)), true);
  // A new Pod with the label is relevant; the same name in another namespace is not.
  assert.equal(relevance.relevant(k8s(pod("new", "models", { app: "vllm" }))), true);
  assert.equal(relevance.relevant(k8s(pod("selected", "other", { app: "vllm" }))), false);
});
