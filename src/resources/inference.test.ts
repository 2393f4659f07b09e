// InferencePool (Gateway API Inference Extension v1.6.0) and Pods in the resource model: schema,
// CEL rules and defaults from the generated CRD schema, and their place in the snapshot.
import assert from "node:assert/strict";
import { test } from "node:test";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";
import { translate } from "../translate/index.ts";
import { loadSnapshot, parseDocuments } from "./load.ts";
import type { KubeObject } from "./meta.ts";
import { buildSnapshot } from "./snapshot.ts";
import { validateObject } from "./validate.ts";

function pool(spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name: "llm", namespace: "models" },
    spec,
  };
}

const MINIMAL = { selector: { matchLabels: { app: "vllm" } }, targetPorts: [{ number: 8000 }] };

test("a minimal InferencePool is valid and defaulted (appProtocol http)", () => {
  const { object, errors } = validateObject(pool(MINIMAL));
  assert.deepEqual(errors, []);
  assert.equal((object["spec"] as { appProtocol?: string }).appProtocol, "http");
});

test("endpointPickerRef defaults: kind Service, group core, failureMode FailClose", () => {
  const { object, errors } = validateObject(
    pool({ ...MINIMAL, endpointPickerRef: { name: "epp", port: { number: 9002 } } }),
  );
  assert.deepEqual(errors, []);
  assert.deepEqual((object["spec"] as { endpointPickerRef?: unknown }).endpointPickerRef, {
    name: "epp",
    port: { number: 9002 },
    kind: "Service",
    group: "",
    failureMode: "FailClose",
  });
});

test("the CRD's CEL rules are enforced: unique target ports, a port for a Service picker", () => {
  const dup = validateObject(pool({ ...MINIMAL, targetPorts: [{ number: 8000 }, { number: 8000 }] }));
  assert.ok(
    dup.errors.some((e) => e.path === "spec.targetPorts" && /port number must be unique/.test(e.message)),
    JSON.stringify(dup.errors),
  );
  const noPort = validateObject(pool({ ...MINIMAL, endpointPickerRef: { name: "epp" } }));
  assert.ok(
    noPort.errors.some((e) => e.path === "spec.endpointPickerRef" && /port is required/.test(e.message)),
    JSON.stringify(noPort.errors),
  );
});

test("schema limits: an empty selector, no target ports, a bad appProtocol or failureMode are rejected", () => {
  const paths = (spec: Record<string, unknown>): string[] =>
    validateObject(pool(spec)).errors.map((e) => e.path);
  assert.ok(paths({ ...MINIMAL, selector: { matchLabels: {} } }).includes("spec.selector.matchLabels"));
  assert.ok(paths({ ...MINIMAL, targetPorts: [] }).includes("spec.targetPorts"));
  assert.ok(paths({ ...MINIMAL, appProtocol: "grpc" }).includes("spec.appProtocol"));
  assert.ok(
    paths({
      ...MINIMAL,
      endpointPickerRef: { name: "e", port: { number: 1 }, failureMode: "Maybe" },
    }).includes("spec.endpointPickerRef.failureMode"),
  );
  assert.ok(paths({ ...MINIMAL, unknownField: 1 }).includes("spec.unknownField"));
});

test("InferencePool is served at inference.networking.k8s.io/v1 only", () => {
  const { errors } = validateObject({ ...pool(MINIMAL), apiVersion: "inference.networking.k8s.io/v1alpha2" });
  assert.deepEqual(errors, [
    {
      path: "apiVersion",
      message:
        "InferencePool is not served at inference.networking.k8s.io/v1alpha2; served versions: inference.networking.k8s.io/v1",
    },
  ]);
});

test("Pods: status.podIP and podIPs must be IPs; the rest of the Pod is accepted as is", () => {
  const podOf = (status: unknown): KubeObject => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "vllm-0", namespace: "models", labels: { app: "vllm" } },
    spec: { containers: [{ name: "vllm", image: "vllm" }] },
    status,
  });
  assert.deepEqual(validateObject(podOf({ podIP: "10.0.0.7", phase: "Running" })).errors, []);
  assert.deepEqual(
    validateObject(podOf({ podIP: "vllm.local" })).errors.map((e) => e.path),
    ["status.podIP"],
  );
  assert.deepEqual(
    validateObject(podOf({ podIPs: [{ ip: "10.0.0.7" }, { ip: "x" }] })).errors.map((e) => e.path),
    ["status.podIPs[1].ip"],
  );
  assert.deepEqual(
    validateObject(podOf({ conditions: [{ type: "Ready" }] })).errors.map((e) => e.path),
    ["status.conditions[0]"],
  );
});

test("YAML with pools and pods loads into the snapshot's inferencePools and pods", () => {
  const parsed = parseDocuments(
    `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: llm, namespace: models}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}]
---
apiVersion: v1
kind: Pod
metadata: {name: vllm-0, namespace: models, labels: {app: vllm}}
status: {podIP: 127.0.0.1}
`,
    "pools.yaml",
  );
  assert.deepEqual(parsed.errors, []);
  const { snapshot } = buildSnapshot(parsed.objects);
  assert.deepEqual([...snapshot.inferencePools.keys()], ["models/llm"]);
  assert.equal(snapshot.inferencePools.get("models/llm")?.spec.appProtocol, "http");
  assert.deepEqual([...snapshot.pods.keys()], ["models/vllm-0"]);
});

test("examples/inference loads without errors and routes to the pool's two endpoints", async () => {
  const root = new URL("../../examples/inference", import.meta.url).pathname;
  const { snapshot, errors } = await loadSnapshot(root);
  assert.deepEqual(errors, []);
  const { ir, statuses } = translate(snapshot, {
    controllerName: "gatehouse.dev/gateway-controller",
    now: "2026-01-01T00:00:00Z",
    validators: haproxyValidators,
  });
  assert.deepEqual(ir.backends.find((b) => b.id === "inferencepool/default/llm")?.endpoints, [
    { address: "127.0.0.1", port: 9001 },
    { address: "127.0.0.1", port: 9002 },
  ]);
  const pool = statuses.find((s) => s.kind === "InferencePool");
  assert.match(JSON.stringify(pool?.status), /"type":"Accepted","status":"True"/);
});
