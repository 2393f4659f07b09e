/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- reading the generated manifests as plain JSON */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { GatehouseProxySpec } from "../../resources/gatehouseproxy.ts";
import {
  boundedName,
  desiredObjects,
  gatewayLabelValue,
  imageOf,
  objectName,
  PARAMETERS_HASH_ANNOTATION,
  type DesiredInput,
  type KubeManifest,
} from "./desired.ts";
import { gateway } from "./testing.ts";
import { parseDataplaneArgs } from "../../cli/dataplane.ts";

const options = {
  image: "ghcr.io/gatehouse/gatehouse:1.0.0",
  controllerAddress: "gatehouse.gatehouse-system.svc:9443",
  controllerNamespace: "gatehouse-system",
};
const certificate = {
  certPem: "CERT",
  keyPem: "KEY",
  caPem: "CA",
  notBefore: new Date(0),
  notAfter: new Date(1000),
};
function build(over: Partial<DesiredInput> = {}, parameters: GatehouseProxySpec = {}) {
  return desiredObjects({
    gateway: gateway("web"),
    parameters,
    ports: [{ port: 80, protocol: "TCP" }],
    certificate,
    options,
    ...over,
  });
}
const byKind = (objects: KubeManifest[], kind: string) => objects.find((o) => o.kind === kind);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const spec = (o: KubeManifest | undefined): any => o?.["spec"];

describe("names", () => {
  test("gatehouse-<name> when it is a DNS label of at most 63 characters", () => {
    assert.equal(objectName("web"), "gatehouse-web");
    assert.equal(objectName("a".repeat(53)).length, 63);
    assert.equal(objectName("a".repeat(53)), `gatehouse-${"a".repeat(53)}`);
  });
  test("truncated or rewritten names get a hash of the full name: no collisions, ≤ 63", () => {
    const long1 = `${"a".repeat(60)}-one`;
    const long2 = `${"a".repeat(60)}-two`;
    assert.ok(objectName(long1).length <= 63);
    assert.notEqual(objectName(long1), objectName(long2));
    assert.match(objectName(long1), /^gatehouse-a+-[0-9a-f]{10}$/);
    // Dots are not allowed in Service names; "a.b" and "a-b" must not collide.
    assert.notEqual(objectName("a.b"), objectName("a-b"));
    assert.match(objectName("a.b"), /^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    assert.equal(boundedName("x-", "UPPER"), boundedName("x-", "UPPER"));
    assert.notEqual(boundedName("x-", "UPPER"), boundedName("x-", "upper"));
  });
  test("the gateway-name label is the name, or bounded with a hash when it is no label value", () => {
    assert.equal(gatewayLabelValue("web.example"), "web.example");
    const long = "b".repeat(100);
    assert.ok(gatewayLabelValue(long).length <= 63);
    assert.notEqual(gatewayLabelValue(long), gatewayLabelValue(`${long}c`));
  });
});

describe("desiredObjects", () => {
  test("ServiceAccount, Secret, Deployment, Service; labels, annotations and owner on every object", () => {
    const gw = gateway("web", {
      infrastructure: { labels: { team: "edge" }, annotations: { "example.com/owner": "me" } },
    });
    const { objects } = build({ gateway: gw });
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["ServiceAccount", "Secret", "Deployment", "Service"],
    );
    for (const o of objects) {
      assert.equal(o.metadata.name, "gatehouse-web");
      assert.equal(o.metadata.namespace, "edge");
      assert.equal(o.metadata.labels["gateway.networking.k8s.io/gateway-name"], "web");
      assert.equal(o.metadata.labels["app.kubernetes.io/managed-by"], "gatehouse");
      assert.equal(o.metadata.labels["team"], "edge");
      assert.equal(o.metadata.annotations?.["example.com/owner"], "me");
      assert.deepEqual(o.metadata.ownerReferences, [
        {
          apiVersion: "gateway.networking.k8s.io/v1",
          kind: "Gateway",
          name: "web",
          uid: "uid-edge-web",
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
    const template = spec(byKind(objects, "Deployment")).template;
    assert.equal(template.metadata.labels["team"], "edge");
    assert.equal(template.metadata.labels["gateway.networking.k8s.io/gateway-name"], "web");
    assert.equal(template.metadata.labels["app.kubernetes.io/managed-by"], "gatehouse");
    assert.equal(template.metadata.annotations["example.com/owner"], "me");
    // Our labels win over the Gateway's.
    const clash = build({
      gateway: gateway("web", { infrastructure: { labels: { "app.kubernetes.io/managed-by": "me" } } }),
    });
    for (const o of clash.objects)
      assert.equal(o.metadata.labels["app.kubernetes.io/managed-by"], "gatehouse");
  });

  test("the Secret holds the client certificate; the pod mounts it and an emptyDir state", () => {
    const { objects } = build();
    const secret = byKind(objects, "Secret");
    assert.equal(secret?.["type"], "kubernetes.io/tls");
    assert.deepEqual(secret?.["data"], {
      "tls.crt": Buffer.from("CERT").toString("base64"),
      "tls.key": Buffer.from("KEY").toString("base64"),
      "ca.crt": Buffer.from("CA").toString("base64"),
    });
    const pod = spec(byKind(objects, "Deployment")).template.spec;
    assert.deepEqual(pod.volumes[0], {
      name: "tls",
      secret: { secretName: "gatehouse-web", defaultMode: 0o440 },
    });
    assert.deepEqual(pod.volumes[1], { name: "state", emptyDir: {} });
    assert.deepEqual(pod.containers[0].volumeMounts.slice(0, 2), [
      { name: "tls", mountPath: "/etc/gatehouse/tls", readOnly: true },
      { name: "state", mountPath: "/var/run/gatehouse" },
    ]);
    assert.equal(pod.serviceAccountName, "gatehouse-web");
    assert.equal(pod.automountServiceAccountToken, false);
    assert.deepEqual(pod.securityContext.sysctls, [
      { name: "net.ipv4.ip_unprivileged_port_start", value: "0" },
    ]);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.containers[0].readinessProbe.httpGet.path, "/ready");
    assert.equal(pod.containers[0].livenessProbe.httpGet.path, "/healthz");
    // 5 s drain + the default 10m hard stop + margin.
    assert.ok(pod.terminationGracePeriodSeconds >= 605);
  });

  test("args: the fixed ones, then the HAProxy parameters", () => {
    const plain = spec(byKind(build().objects, "Deployment")).template.spec.containers[0];
    assert.deepEqual(plain.args, [
      "dataplane",
      "--controller",
      "gatehouse.gatehouse-system.svc:9443",
      "--gateway",
      "edge/web",
      "--tls-dir",
      "/etc/gatehouse/tls",
      "--admin",
      "0.0.0.0:9901",
      "--state-dir",
      "/var/run/gatehouse/state",
    ]);
    const tuned = build(
      {},
      {
        haproxy: {
          threads: 4,
          maxconn: 1000,
          timeouts: { connect: "5s", client: "1m", server: "2m" },
          hardStopAfter: "30s",
        },
      },
    );
    const pod = spec(byKind(tuned.objects, "Deployment")).template.spec;
    assert.deepEqual(pod.containers[0].args.slice(11), [
      "--threads",
      "4",
      "--maxconn",
      "1000",
      "--timeout-connect",
      "5s",
      "--timeout-client",
      "1m",
      "--timeout-server",
      "2m",
      "--hard-stop-after",
      "30s",
    ]);
    assert.equal(pod.terminationGracePeriodSeconds, 5 + 30 + 5);
  });

  test("args: spec.accessLog as --access-log-* flags the dataplane parses back", () => {
    const argsOf = (accessLog: GatehouseProxySpec["accessLog"]): string[] =>
      spec(byKind(build({}, accessLog === undefined ? {} : { accessLog }).objects, "Deployment")).template
        .spec.containers[0].args;
    assert.equal(argsOf(undefined).length, 11, "no flags: the dataplane's defaults (JSON on stdout)");
    const cases: Array<[GatehouseProxySpec["accessLog"], string[], unknown, unknown]> = [
      [{ format: "none" }, ["--access-log-format", "off"], { kind: "off" }, { kind: "stdout" }],
      [
        { format: "custom", template: "{status} {route} {duration_ms}" },
        ["--access-log-format", "custom:{status} {route} {duration_ms}"],
        { kind: "custom", template: "{status} {route} {duration_ms}" },
        { kind: "stdout" },
      ],
      [
        { format: "text", output: "syslog", syslog: { host: "fd00::5", port: 514 } },
        ["--access-log-format", "text", "--access-log-output", "syslog:[fd00::5]:514"],
        { kind: "text" },
        { kind: "syslog", host: "fd00::5", port: 514 },
      ],
      [
        { output: "file", path: "/var/log/gatehouse/access.log" },
        ["--access-log-output", "file:/var/log/gatehouse/access.log"],
        { kind: "json" },
        { kind: "file", path: "/var/log/gatehouse/access.log" },
      ],
    ];
    for (const [accessLog, flags, format, output] of cases) {
      const args = argsOf(accessLog);
      assert.deepEqual(args.slice(11), flags);
      const parsed = parseDataplaneArgs(args.slice(1));
      assert.deepEqual(parsed.accessLog, { format, output });
    }
  });

  test("Service and container ports: TCP and UDP listeners, deduplicated", () => {
    const { objects } = build({
      ports: [
        { port: 443, protocol: "TCP" },
        { port: 53, protocol: "UDP" },
        { port: 53, protocol: "TCP" },
        { port: 443, protocol: "TCP" },
      ],
    });
    assert.deepEqual(spec(byKind(objects, "Service")).ports, [
      { name: "tcp-53", protocol: "TCP", port: 53, targetPort: 53 },
      { name: "udp-53", protocol: "UDP", port: 53, targetPort: 53 },
      { name: "tcp-443", protocol: "TCP", port: 443, targetPort: 443 },
    ]);
    const container = spec(byKind(objects, "Deployment")).template.spec.containers[0];
    assert.deepEqual(
      container.ports.map(
        (p: { containerPort: number; protocol: string }) => `${p.protocol}/${p.containerPort}`,
      ),
      ["TCP/9901", "TCP/53", "UDP/53", "TCP/443"],
    );
    const service = spec(byKind(objects, "Service"));
    assert.equal(service.type, "LoadBalancer");
    assert.deepEqual(service.selector, spec(byKind(objects, "Deployment")).selector.matchLabels);
  });

  test("PDB and HPA only when asked; with an HPA the Deployment leaves replicas to it", () => {
    const plain = build({}, { replicas: 3 });
    assert.equal(byKind(plain.objects, "PodDisruptionBudget"), undefined);
    assert.equal(byKind(plain.objects, "HorizontalPodAutoscaler"), undefined);
    assert.equal(spec(byKind(plain.objects, "Deployment")).replicas, 3);
    const scaled = build(
      {},
      { autoscaling: { minReplicas: 2, maxReplicas: 6 }, podDisruptionBudget: { minAvailable: 1 } },
    );
    assert.deepEqual(spec(byKind(scaled.objects, "PodDisruptionBudget")).minAvailable, 1);
    const hpa = spec(byKind(scaled.objects, "HorizontalPodAutoscaler"));
    assert.deepEqual(hpa.scaleTargetRef, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "gatehouse-web",
    });
    assert.equal(hpa.minReplicas, 2);
    assert.equal(hpa.maxReplicas, 6);
    assert.equal(hpa.metrics[0].resource.target.averageUtilization, 80);
    assert.equal("replicas" in spec(byKind(scaled.objects, "Deployment")), false);
  });

  test("the pod-template hash changes with the parameters and the image, not with the certificate", () => {
    const hashOf = (d: ReturnType<typeof build>) =>
      spec(byKind(d.objects, "Deployment")).template.metadata.annotations[PARAMETERS_HASH_ANNOTATION];
    const base = hashOf(build());
    assert.equal(hashOf(build({ certificate: { ...certificate, certPem: "OTHER" } })), base);
    assert.notEqual(hashOf(build({}, { haproxy: { maxconn: 5 } })), base);
    assert.notEqual(hashOf(build({ options: { ...options, image: "other:1" } })), base);
  });

  test("images: the default, with repository and tag overrides", () => {
    assert.equal(imageOf("r/g:1", undefined), "r/g:1");
    assert.equal(imageOf("r/g:1", { tag: "2" }), "r/g:2");
    assert.equal(imageOf("r/g:1", { repository: "mirror:5000/g" }), "mirror:5000/g:1");
    assert.equal(imageOf("r:5000/g", { tag: "2" }), "r:5000/g:2");
    assert.equal(imageOf("r/g@sha256:abc", { tag: "2" }), "r/g:2");
    assert.equal(
      spec(byKind(build({}, { image: { tag: "9", pullPolicy: "Always" } }).objects, "Deployment")).template
        .spec.containers[0].imagePullPolicy,
      "Always",
    );
  });

  test("spec.addresses: one IPv4 value becomes loadBalancerIP; what a Service cannot take is AddressNotUsable", () => {
    const one = build({
      gateway: gateway("web", { addresses: [{ type: "IPAddress", value: "203.0.113.7" }] }),
    });
    assert.equal(spec(byKind(one.objects, "Service")).loadBalancerIP, "203.0.113.7");
    assert.equal(one.requestedAddress, "203.0.113.7");
    const empty = build({ gateway: gateway("web", { addresses: [{ type: "IPAddress" }] }) });
    assert.equal(empty.addressProblem, undefined);
    assert.equal("loadBalancerIP" in spec(byKind(empty.objects, "Service")), false);
    const two = build({
      gateway: gateway("web", {
        addresses: [
          { type: "IPAddress", value: "203.0.113.7" },
          { type: "IPAddress", value: "203.0.113.8" },
        ],
      }),
    });
    assert.equal(two.addressProblem?.reason, "AddressNotUsable");
    assert.equal(byKind(two.objects, "Service"), undefined);
    const v6 = build({
      gateway: gateway("web", { addresses: [{ type: "IPAddress", value: "2001:db8::1" }] }),
    });
    assert.equal(v6.addressProblem?.reason, "AddressNotUsable");
    const clusterIP = build(
      { gateway: gateway("web", { addresses: [{ type: "IPAddress", value: "203.0.113.7" }] }) },
      { service: { type: "ClusterIP" } },
    );
    assert.match(clusterIP.addressProblem?.message ?? "", /ClusterIP Service/);
  });

  test("a Gateway without a uid (not from an API server) is refused", () => {
    const gw = gateway("web");
    delete gw.metadata.uid;
    assert.throws(() => build({ gateway: gw }), /no metadata.uid/);
  });
});
