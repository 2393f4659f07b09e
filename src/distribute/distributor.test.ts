import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CertificateAuthority } from "./ca.ts";
import { FileCAStore } from "./castore.ts";
import { configHash, irForGateway } from "./contract.ts";
import { ConfigDistributor } from "./distributor.ts";
import type { ConfigMessage, ReportMessage } from "./protocol.ts";
import { gatewayObjects, irOf, type TestGateway } from "./testing.ts";

let dir = "";
let gws: TestGateway[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gh-dist-"));
  const ca = await CertificateAuthority.open(new FileCAStore(dir));
  const certA = await ca.issueServer({ dnsNames: ["a.test"], ipAddresses: [] });
  const certB = await ca.issueServer({ dnsNames: ["b.test"], ipAddresses: [] });
  gws = [
    { name: "gw-a", port: 8443, tls: certA, host: "a.test", endpoint: "10.0.0.1:80" },
    { name: "gw-b", port: 9443, tls: certB, host: "b.test", endpoint: "10.0.0.2:80" },
  ];
});
after(async () => rm(dir, { recursive: true, force: true }));

function sink(): { messages: ConfigMessage[]; send(m: ConfigMessage): void } {
  const messages: ConfigMessage[] = [];
  return { messages, send: (m) => void messages.push(m) };
}
/** The last 40 base64 characters of a PEM (the start of every P-256 key looks alike). */
const body = (pem: string | undefined): string => (pem ?? "").replace(/-----[^-]+-----|\s/g, "").slice(-40);

const report = (hash: string, extra: Partial<ReportMessage> = {}): ReportMessage => ({
  type: "report",
  pod: "default/gw-a-pod-1",
  hash,
  applied: true,
  unavailableListeners: [],
  ...extra,
});

test("irForGateway: each Gateway gets its own certificate and backend only", () => {
  const ir = irOf(gatewayObjects(gws));
  const a = irForGateway(ir, "default/gw-a");
  const b = irForGateway(ir, "default/gw-b");
  assert.deepEqual(
    a.gateways.map((g) => g.id),
    ["default/gw-a"],
  );
  assert.deepEqual(
    a.backends.map((x) => x.id),
    ["service/default/gw-a-svc/80"],
  );
  const textA = JSON.stringify(a).replace(/\\n/g, "");
  const textB = JSON.stringify(b).replace(/\\n/g, "");
  assert.ok(textA.includes(body(gws[0]?.tls?.keyPem)));
  assert.ok(textA.includes(body(gws[0]?.tls?.certPem)));
  assert.ok(!textA.includes(body(gws[1]?.tls?.keyPem)), "B's key is not in A's cut");
  assert.ok(!textA.includes(body(gws[1]?.tls?.certPem)), "B's certificate is not in A's cut");
  assert.ok(!textB.includes(body(gws[0]?.tls?.keyPem)), "A's key is not in B's cut");
});

test("irForGateway: backends shared between Gateways, in the IR's order, from the IR cut", () => {
  const three: TestGateway[] = [
    ...gws,
    { name: "gw-c", port: 7080, host: "c.test", endpoint: "10.0.0.3:80" },
  ];
  const shared = {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name: "shared", namespace: "default" },
    spec: {
      parentRefs: [{ name: "gw-a" }, { name: "gw-b" }],
      hostnames: ["shared.test"],
      rules: [{ backendRefs: [{ name: "gw-c-svc", port: 80 }] }],
    },
  };
  const ir = irOf([...gatewayObjects(three), shared]);
  assert.equal(ir.backends.length, 3);
  const ids = (cut: ReturnType<typeof irForGateway>): string[] => cut.backends.map((b) => b.id);
  for (const [gateway, expected] of [
    ["default/gw-a", ["service/default/gw-a-svc/80", "service/default/gw-c-svc/80"]],
    ["default/gw-b", ["service/default/gw-b-svc/80", "service/default/gw-c-svc/80"]],
    ["default/gw-c", ["service/default/gw-c-svc/80"]],
  ] as const) {
    const cut = irForGateway(ir, gateway);
    assert.deepEqual(ids(cut), expected, gateway);
    // Exactly the IR's backends the Gateway uses, in the IR's order, the same objects.
    const wanted = new Set<string>(expected);
    assert.deepEqual(
      cut.backends,
      ir.backends.filter((b) => wanted.has(b.id)),
    );
    assert.deepEqual(irForGateway(ir, gateway), cut, "cutting again gives the same");
  }
  // Another IR (the shared Service's endpoint changed): its own backends, not the first IR's.
  const ir2 = irOf([
    ...gatewayObjects([
      gws[0] as TestGateway,
      gws[1] as TestGateway,
      { ...(three[2] as TestGateway), endpoint: "10.0.0.9:80" },
    ]),
    shared,
  ]);
  const c2 = irForGateway(ir2, "default/gw-a").backends.find((b) => b.id === "service/default/gw-c-svc/80");
  assert.deepEqual(
    c2?.endpoints.map((e) => e.address),
    ["10.0.0.9"],
  );
  assert.deepEqual(irForGateway(ir2, "default/nope"), { gateways: [], backends: [] });
});

test("distributor: current config on connect, only changed Gateways pushed", () => {
  const d = new ConfigDistributor();
  const changes: string[] = [];
  d.onChange((id) => changes.push(id));
  const ir1 = irOf(gatewayObjects(gws));
  assert.deepEqual(d.publish(ir1), ["default/gw-a", "default/gw-b"]);
  const a = sink();
  const b = sink();
  d.connect("default/gw-a", a);
  d.connect("default/gw-b", b);
  assert.equal(a.messages.length, 1);
  assert.equal(a.messages[0]?.hash, configHash(irForGateway(ir1, "default/gw-a")));
  assert.deepEqual(a.messages[0]?.ir, irForGateway(ir1, "default/gw-a"));
  assert.deepEqual(d.publish(ir1), [], "same IR: nothing changed, nothing sent");
  assert.equal(a.messages.length + b.messages.length, 2);
  // Only B's endpoint changes.
  const ir2 = irOf(
    gatewayObjects([gws[0] as TestGateway, { ...(gws[1] as TestGateway), endpoint: "10.0.0.3:80" }]),
  );
  assert.deepEqual(d.publish(ir2), ["default/gw-b"]);
  assert.equal(a.messages.length, 1, "A's pods are not disturbed");
  assert.equal(b.messages.length, 2);
  assert.ok(changes.includes("default/gw-b"));
  // B leaves the IR: its pods keep their last config (nothing sent), its state keeps its hash.
  const ir3 = irOf(gatewayObjects([gws[0] as TestGateway]));
  assert.deepEqual(d.publish(ir3), []);
  assert.equal(b.messages.length, 2);
  assert.equal(d.gateway("default/gw-b").hash, b.messages[1]?.hash);
  d.forget("default/gw-b");
  assert.equal(d.gateway("default/gw-b").hash, undefined);
});

test("distributor: pod state from reports; stale or unknown hashes are ignored", () => {
  const d = new ConfigDistributor({ now: () => new Date("2030-01-02T03:04:05.678Z") });
  const ir1 = irOf(gatewayObjects(gws));
  d.publish(ir1);
  const a = sink();
  const session = d.connect("default/gw-a", a);
  const h1 = a.messages[0]?.hash ?? "";
  assert.deepEqual(d.gateway("default/gw-a").pods, [
    {
      pod: "default/connection-1",
      connectedAt: "2030-01-02T03:04:05Z",
      hash: "",
      applied: false,
      unavailableListeners: [],
    },
  ]);
  assert.equal(session.report(report("f".repeat(64))), false, "unknown hash");
  assert.equal(d.gateway("default/gw-a").pods[0]?.pod, "default/gw-a-pod-1", "the pod name is taken anyway");
  assert.equal(d.gateway("default/gw-a").pods[0]?.hash, "");
  assert.equal(session.report(report(h1)), true);
  assert.deepEqual(d.gateway("default/gw-a"), {
    hash: h1,
    pods: [
      {
        pod: "default/gw-a-pod-1",
        connectedAt: "2030-01-02T03:04:05Z",
        hash: h1,
        applied: true,
        unavailableListeners: [],
      },
    ],
  });
  // A new config is sent; a late report about the old one is stale.
  d.publish(
    irOf(gatewayObjects([{ ...(gws[0] as TestGateway), endpoint: "10.0.0.9:80" }, gws[1] as TestGateway])),
  );
  const h2 = a.messages[1]?.hash ?? "";
  assert.notEqual(h2, h1);
  assert.equal(session.report(report(h1, { applied: false, error: "late" })), false);
  assert.equal(d.gateway("default/gw-a").pods[0]?.applied, true, "still the last accepted report");
  assert.equal(session.report(report(h2, { applied: false, error: "haproxy said no" })), true);
  assert.deepEqual(d.gateway("default/gw-a").pods[0]?.error, "haproxy said no");
  const seen: string[] = [];
  d.onChange((id) => seen.push(id));
  session.close();
  session.close();
  assert.deepEqual(seen, ["default/gw-a"]);
  assert.deepEqual(d.gateway("default/gw-a").pods, []);
  assert.equal(session.report(report(h2)), false, "a closed session reports nothing");
});
