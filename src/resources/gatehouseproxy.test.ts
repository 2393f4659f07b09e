// The GatehouseProxy CRD in the chart is the schema of gatehouseproxy.ts (GATEHOUSE_UPDATE_CRD=1
// rewrites it), and validateObject checks objects against that schema and its CEL rules.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { mergeParameters } from "../translate/parameters.ts";
import { gatehouseProxyCRD } from "./gatehouseproxy.ts";
import type { KubeObject } from "./meta.ts";
import { validateObject } from "./validate.ts";

export const CRD_PATH = join(
  import.meta.dirname,
  "..",
  "..",
  "charts",
  "gatehouse",
  "crds",
  "gatehouse.dev_gatehouseproxies.yaml",
);
const HEADER =
  "# Generated from src/resources/gatehouseproxy.ts: do not edit (GATEHOUSE_UPDATE_CRD=1 node --test src/resources/gatehouseproxy.test.ts)\n";

const proxy = (spec: unknown): KubeObject => ({
  apiVersion: "gatehouse.dev/v1alpha1",
  kind: "GatehouseProxy",
  metadata: { name: "p", namespace: "default" },
  spec,
});
const errors = (spec: unknown): string[] =>
  validateObject(proxy(spec)).errors.map((e) => `${e.path}: ${e.message}`);

describe("GatehouseProxy", () => {
  test("the chart's CRD is generated from the schema", () => {
    const text = HEADER + stringify(gatehouseProxyCRD(), { lineWidth: 0 });
    if (process.env["GATEHOUSE_UPDATE_CRD"] === "1") writeFileSync(CRD_PATH, text);
    assert.deepEqual(parse(readFileSync(CRD_PATH, "utf8")), gatehouseProxyCRD());
    assert.equal(readFileSync(CRD_PATH, "utf8"), text);
  });

  test("a full, valid object passes", () => {
    assert.deepEqual(
      errors({
        autoscaling: { minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 70 },
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "1Gi" } },
        service: { type: "NodePort", annotations: { a: "b" }, externalTrafficPolicy: "Local" },
        nodeSelector: { "kubernetes.io/os": "linux" },
        tolerations: [{ key: "edge", operator: "Exists", effect: "NoSchedule" }],
        affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
        topologySpreadConstraints: [
          { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway" },
        ],
        podDisruptionBudget: { maxUnavailable: "50%" },
        image: { repository: "registry.example:5000/gatehouse", tag: "1.2.3", pullPolicy: "IfNotPresent" },
        haproxy: {
          threads: 2,
          maxconn: 50000,
          timeouts: { connect: "5s", client: "1m", server: "1m30s" },
          hardStopAfter: "30s",
        },
        podAnnotations: { x: "y" },
        podLabels: { tier: "edge" },
      }),
      [],
    );
  });

  test("CEL rules: replicas xor autoscaling, min <= max, one PDB bound, Service type constraints", () => {
    assert.deepEqual(errors({ replicas: 2, autoscaling: { maxReplicas: 3 } }), [
      "spec: replicas and autoscaling are mutually exclusive",
    ]);
    assert.deepEqual(errors({ autoscaling: { minReplicas: 4, maxReplicas: 3 } }), [
      "spec.autoscaling: minReplicas must be less than or equal to maxReplicas",
    ]);
    assert.deepEqual(errors({ podDisruptionBudget: { minAvailable: 1, maxUnavailable: 1 } }), [
      "spec.podDisruptionBudget: exactly one of minAvailable and maxUnavailable must be set",
    ]);
    assert.deepEqual(errors({ podDisruptionBudget: {} }), [
      "spec.podDisruptionBudget: exactly one of minAvailable and maxUnavailable must be set",
    ]);
    assert.deepEqual(errors({ service: { type: "ClusterIP", loadBalancerClass: "x/y" } }), [
      "spec.service: loadBalancerClass requires type LoadBalancer",
    ]);
    assert.deepEqual(errors({ service: { type: "ClusterIP", externalTrafficPolicy: "Local" } }), [
      "spec.service: externalTrafficPolicy requires type LoadBalancer or NodePort",
    ]);
  });

  test("schema: types, enums, durations, unknown fields", () => {
    assert.deepEqual(errors({ haproxy: { timeouts: { connect: "5 seconds" } } }), [
      "spec.haproxy.timeouts.connect: Invalid value: \"5 seconds\": must match the regular expression '^([0-9]{1,5}(h|m|s|ms)){1,4}$'",
    ]);
    assert.deepEqual(errors({ service: { type: "ExternalName" } }), [
      'spec.service.type: Unsupported value: "ExternalName": supported values: "LoadBalancer", "NodePort", "ClusterIP"',
    ]);
    assert.deepEqual(errors({ replica: 1 }), ["spec.replica: field not declared in schema"]);
    assert.deepEqual(errors({ haproxy: { threads: 0 } }), ["spec.haproxy.threads: must be >= 1"]);
    assert.deepEqual(
      validateObject({ ...proxy({}), apiVersion: "gatehouse.dev/v1" }).errors.map((e) => e.message),
      ["GatehouseProxy is not served at gatehouse.dev/v1; served versions: gatehouse.dev/v1alpha1"],
    );
  });
  test("accessLog: formats, outputs and their CEL rules; template fields checked", () => {
    assert.deepEqual(errors({ accessLog: { format: "custom", template: "{time} {status} {route}" } }), []);
    assert.deepEqual(errors({ accessLog: { format: "none" } }), []);
    assert.deepEqual(
      errors({ accessLog: { format: "json", output: "syslog", syslog: { host: "10.0.0.5", port: 514 } } }),
      [],
    );
    assert.deepEqual(errors({ accessLog: { output: "file", path: "/var/log/access.log" } }), []);
    assert.deepEqual(errors({ accessLog: { format: "custom" } }), [
      "spec.accessLog: template is required with format custom, and allowed only with it",
    ]);
    assert.deepEqual(errors({ accessLog: { format: "json", template: "{status}" } }), [
      "spec.accessLog: template is required with format custom, and allowed only with it",
    ]);
    assert.deepEqual(errors({ accessLog: { output: "syslog" } }), [
      "spec.accessLog: syslog is required with output syslog, and allowed only with it",
    ]);
    assert.deepEqual(errors({ accessLog: { path: "/x" } }), [
      "spec.accessLog: path is required with output file, and allowed only with it",
    ]);
    // Unknown fields, and a line break a header could not put there but a template could.
    for (const template of ["{status} {secret}", "{status}\n{route}", "{status"]) {
      const found = errors({ accessLog: { format: "custom", template } });
      assert.equal(found.length, 1, template);
      assert.match(found[0] ?? "", /^spec\.accessLog\.template: Invalid value/);
    }
    assert.match(errors({ accessLog: { format: "off" } })[0] ?? "", /Unsupported value: "off"/);
    assert.match(
      errors({ accessLog: { output: "file", path: "relative/x" } })[0] ?? "",
      /^spec\.accessLog\.path: Invalid value/,
    );
  });

  test("the CRD never writes a YAML 1.1 boolean word unquoted in an enum (kubectl would read false)", () => {
    const text = readFileSync(CRD_PATH, "utf8");
    assert.doesNotMatch(text, /^\s*- (y|n|yes|no|on|off|true|false)$/im);
  });

  test("accessLog: a Gateway's replaces its class's as a whole", () => {
    const merged = mergeParameters(
      { accessLog: { format: "text", output: "syslog", syslog: { host: "h", port: 514 } } },
      { accessLog: { format: "json" } },
    );
    assert.deepEqual(merged.accessLog, { format: "json" });
    assert.deepEqual(mergeParameters({ accessLog: { format: "none" } }, { replicas: 2 }).accessLog, {
      format: "none",
    });
  });
});
