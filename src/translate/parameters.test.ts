// GatehouseProxy parameters: the merge (class, then Gateway), and the translator's own validation of
// a referenced object that never went through a loader (what an API server without the CRD's CEL
// rules, or a test, could hand over).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";
import type { KubeObject } from "../resources/meta.ts";
import { buildSnapshot } from "../resources/snapshot.ts";
import { translate } from "./index.ts";
import { mergeParameters } from "./parameters.ts";

describe("mergeParameters", () => {
  test("objects field by field, maps key by key, lists and affinity replaced", () => {
    const merged = mergeParameters(
      {
        replicas: 2,
        service: { type: "NodePort", annotations: { a: "1", b: "1" } },
        haproxy: { maxconn: 100, timeouts: { connect: "5s", client: "1m" } },
        image: { repository: "r", tag: "t" },
        resources: { requests: { cpu: "1" }, limits: { memory: "1Gi" } },
        nodeSelector: { zone: "a" },
        tolerations: [{ key: "x", operator: "Exists" }],
        affinity: { nodeAffinity: {} },
        podLabels: { l: "1" },
      },
      {
        service: { annotations: { b: "2" } },
        haproxy: { timeouts: { client: "2m" }, threads: 2 },
        image: { tag: "u" },
        resources: { requests: { memory: "2Gi" } },
        nodeSelector: { disk: "ssd" },
        tolerations: [{ key: "y", operator: "Exists" }],
        affinity: { podAffinity: {} },
        podLabels: { m: "2" },
      },
    );
    assert.deepEqual(merged, {
      replicas: 2,
      service: { type: "NodePort", annotations: { a: "1", b: "2" } },
      haproxy: { maxconn: 100, threads: 2, timeouts: { connect: "5s", client: "2m" } },
      image: { repository: "r", tag: "u" },
      resources: { requests: { cpu: "1", memory: "2Gi" }, limits: { memory: "1Gi" } },
      nodeSelector: { zone: "a", disk: "ssd" },
      tolerations: [{ key: "y", operator: "Exists" }],
      affinity: { podAffinity: {} },
      podLabels: { l: "1", m: "2" },
    });
  });

  test("replicas and autoscaling are one choice; a PDB is replaced as a whole", () => {
    assert.deepEqual(
      mergeParameters(
        { replicas: 3, podDisruptionBudget: { minAvailable: 1 } },
        { autoscaling: { maxReplicas: 5 }, podDisruptionBudget: { maxUnavailable: 1 } },
      ),
      { autoscaling: { maxReplicas: 5 }, podDisruptionBudget: { maxUnavailable: 1 } },
    );
    assert.deepEqual(mergeParameters({ autoscaling: { maxReplicas: 5 } }, { replicas: 1 }), { replicas: 1 });
    assert.deepEqual(mergeParameters({ autoscaling: { maxReplicas: 5 } }, { haproxy: { threads: 1 } }), {
      autoscaling: { maxReplicas: 5 },
      haproxy: { threads: 1 },
    });
  });
});

const objects = (proxySpec: unknown, infrastructure?: Record<string, unknown>): KubeObject[] => [
  {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "GatewayClass",
    metadata: { name: "gh" },
    spec: { controllerName: "gatehouse.dev/gateway-controller" },
  },
  {
    apiVersion: "gatehouse.dev/v1alpha1",
    kind: "GatehouseProxy",
    metadata: { name: "p", namespace: "edge" },
    spec: proxySpec,
  },
  {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: "g", namespace: "edge" },
    spec: {
      gatewayClassName: "gh",
      listeners: [{ name: "http", port: 80, protocol: "HTTP" }],
      infrastructure: infrastructure ?? {
        parametersRef: { group: "gatehouse.dev", kind: "GatehouseProxy", name: "p" },
      },
    },
  },
];

function gatewayAccepted(objs: KubeObject[], infrastructure: "host" | "kubernetes" = "kubernetes") {
  const { snapshot } = buildSnapshot(objs.map((object) => ({ object, source: {} })));
  const result = translate(snapshot, {
    controllerName: "gatehouse.dev/gateway-controller",
    now: "2026-01-01T00:00:00Z",
    validators: haproxyValidators,
    infrastructure,
  });
  const gw = result.statuses.find((s) => s.kind === "Gateway");
  const conditions = gw?.status["conditions"] as Array<{ type: string; reason: string; message: string }>;
  return { accepted: conditions.find((c) => c.type === "Accepted"), ir: result.ir };
}

describe("translator: a referenced GatehouseProxy", () => {
  test("is validated by the translator itself (schema and CEL)", () => {
    const { accepted, ir } = gatewayAccepted(objects({ replicas: 1, autoscaling: { maxReplicas: 2 } }));
    assert.equal(accepted?.reason, "InvalidParameters");
    assert.equal(
      accepted?.message,
      "spec.infrastructure.parametersRef: GatehouseProxy edge/p is invalid: spec: replicas and autoscaling are mutually exclusive",
    );
    assert.deepEqual(ir.gateways, []);
    const typed = gatewayAccepted(objects({ haproxy: { threads: "many" } })).accepted;
    assert.match(typed?.message ?? "", /spec\.haproxy\.threads: must be of type integer/);
  });

  test("a valid one is accepted; in host mode any parametersRef is refused as before", () => {
    assert.equal(gatewayAccepted(objects({ replicas: 2 })).accepted?.reason, "Accepted");
    assert.equal(gatewayAccepted(objects({ replicas: 2 }), "host").accepted?.reason, "InvalidParameters");
    assert.equal(gatewayAccepted(objects({}, { labels: { a: "b" } })).accepted?.reason, "Accepted");
  });
});
