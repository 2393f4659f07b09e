import assert from "node:assert/strict";
import { test } from "node:test";
import { haproxyValidators } from "../../dataplane/haproxy/capabilities.ts";
import { parseDocuments } from "../../resources/load.ts";
import { buildSnapshot } from "../../resources/snapshot.ts";
import { translate } from "../index.ts";

const OPTIONS = {
  controllerName: "gatehouse.dev/gateway-controller",
  now: "2026-01-01T00:00:00Z",
  validators: haproxyValidators,
};

test("a pool used through 33 Gateways lists the first 32 (by namespace/name): the API's maximum", () => {
  const names = Array.from({ length: 33 }, (_, i) => `gw-${String(i).padStart(2, "0")}`);
  const yaml = [
    "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: gatehouse}\nspec: {controllerName: gatehouse.dev/gateway-controller}",
    ...names.map(
      (n) =>
        `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ${n}}\nspec:\n  gatewayClassName: gatehouse\n  listeners: [{name: http, port: 80, protocol: HTTP}]`,
    ),
    // Two routes (a route has at most 32 parentRefs).
    ...[names.slice(0, 20), names.slice(20)].map(
      (part, i) =>
        `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r${i}}\nspec:\n  parentRefs: [${part.map((n) => `{name: ${n}}`).join(", ")}]\n  rules: [{backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: p}]}]`,
    ),
    "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p}\nspec:\n  selector: {matchLabels: {app: m}}\n  targetPorts: [{number: 8000}]",
  ].join("\n---\n");
  const parsed = parseDocuments(yaml, "many.yaml");
  assert.deepEqual(parsed.errors, []);
  const { statuses } = translate(buildSnapshot(parsed.objects).snapshot, OPTIONS);
  const pool = statuses.find((s) => s.kind === "InferencePool");
  const parents = (pool?.status["parents"] ?? []) as Array<{ parentRef: { name: string } }>;
  assert.equal(parents.length, 32);
  assert.equal(parents[0]?.parentRef.name, "gw-00");
  assert.equal(parents.at(-1)?.parentRef.name, "gw-31");
});
