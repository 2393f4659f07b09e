// KubernetesInfrastructure.prepare: status.addresses from the Service, Programmed from the pods'
// reports, per-Gateway failures, certificate renewal, no API writes when nothing changed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { haproxyValidators } from "../../dataplane/haproxy/capabilities.ts";
import { configHash, irForGateway } from "../../distribute/contract.ts";
import { FakeKubeApi } from "../../provider/kubernetes/testing/fake.ts";
import type { KubeObject } from "../../resources/meta.ts";
import { buildSnapshot } from "../../resources/snapshot.ts";
import type { Condition, StatusEntry } from "../../status/types.ts";
import { translate } from "../../translate/index.ts";
import { KubernetesInfrastructure, needsRenewal, oneLine } from "./index.ts";
import { CountingIssuer, gateway, StaticDataplane } from "./testing.ts";

const CLASS: KubeObject = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "GatewayClass",
  metadata: { name: "gatehouse" },
  spec: { controllerName: "gatehouse.dev/gateway-controller" },
};
const service = (name: string, status: unknown, type = "LoadBalancer"): KubeObject => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: `gatehouse-${name}`, namespace: "edge" },
  spec: { type, clusterIP: "10.96.0.10" },
  status,
});
const lb = (ip: string) => ({ loadBalancer: { ingress: [{ ip }] } });

function setup(objects: KubeObject[]) {
  const api = new FakeKubeApi();
  const writes: string[] = [];
  api.intercept = (method, path) => {
    if (method === "GET") return { items: [] };
    writes.push(`${method} ${path}`);
    return {};
  };
  const dataplane = new StaticDataplane();
  const issuer = new CountingIssuer();
  let reconciled = 0;
  const infra = new KubernetesInfrastructure({
    api,
    issuer,
    dataplane,
    image: "gatehouse:1",
    controllerAddress: "controller:9443",
    onReconciled: () => reconciled++,
  });
  const run = async (extra: KubeObject[] = []) => {
    const { snapshot } = buildSnapshot([...objects, ...extra].map((object) => ({ object, source: {} })));
    const result = translate(snapshot, {
      controllerName: "gatehouse.dev/gateway-controller",
      now: "2026-01-01T00:00:00Z",
      validators: haproxyValidators,
      infrastructure: "kubernetes",
    });
    const input = { ...result, snapshot, now: "2026-01-01T00:00:01Z" };
    await infra.prepare(input);
    // Objects are applied in the background: once they are, prepare again for the statuses.
    await infra.reconciler.idle();
    const out = await infra.prepare(input);
    return { ...out, translated: result.ir };
  };
  return { api, writes, dataplane, issuer, infra, run, reconciled: () => reconciled };
}

function gatewayStatus(statuses: readonly StatusEntry[], name: string) {
  const entry = statuses.find((s) => s.kind === "Gateway" && s.metadata.name === name);
  const conditions = (entry?.status["conditions"] as Condition[] | undefined) ?? [];
  const programmed = conditions.find((c) => c.type === "Programmed");
  const listeners = (entry?.status["listeners"] as Array<{ conditions: Condition[] }> | undefined) ?? [];
  return {
    programmed,
    addresses: entry?.status["addresses"],
    listener: listeners[0]?.conditions.find((c) => c.type === "Programmed"),
  };
}

describe("KubernetesInfrastructure", () => {
  test("Programmed: AddressNotAssigned, then Pending, Invalid, then True once a pod applied the current hash", async () => {
    const { run, dataplane, writes } = setup([CLASS, gateway("web") as unknown as KubeObject]);
    let out = await run();
    assert.equal(gatewayStatus(out.statuses, "web").programmed?.reason, "AddressNotAssigned");
    assert.equal(gatewayStatus(out.statuses, "web").listener?.status, "False");
    assert.equal(gatewayStatus(out.statuses, "web").addresses, undefined);
    assert.ok(writes.length >= 4, writes.join("\n"));
    assert.deepEqual(
      out.ir.gateways.map((g) => g.addresses),
      [[]],
    );

    out = await run([service("web", lb("198.51.100.4"))]);
    let s = gatewayStatus(out.statuses, "web");
    assert.equal(s.programmed?.reason, "Pending");
    assert.match(s.programmed?.message ?? "", /No data-plane pod is connected/);
    assert.deepEqual(s.addresses, [{ type: "IPAddress", value: "198.51.100.4" }]);

    // The hash of what the pods are sent (out.ir), which is what they report.
    const hash = configHash(irForGateway(out.ir, "edge/web"));
    const pod = { pod: "edge/p1", hash, unavailableListeners: [], connectedAt: "2026-01-01T00:00:00Z" };
    dataplane.states.set("edge/web", {
      hash,
      pods: [{ ...pod, applied: false, error: "haproxy:\n  bad\tline" }],
    });
    s = gatewayStatus((await run([service("web", lb("198.51.100.4"))])).statuses, "web");
    assert.equal(s.programmed?.reason, "Invalid");
    assert.equal(
      s.programmed?.message,
      "Data-plane pod edge/p1 did not apply the configuration: haproxy: bad line",
    );

    // A report about an older configuration does not count.
    dataplane.states.set("edge/web", { hash, pods: [{ ...pod, hash: "old", applied: true }] });
    s = gatewayStatus((await run([service("web", lb("198.51.100.4"))])).statuses, "web");
    assert.equal(s.programmed?.reason, "Pending");

    dataplane.states.set("edge/web", { hash, pods: [{ ...pod, applied: true }] });
    s = gatewayStatus((await run([service("web", lb("198.51.100.4"))])).statuses, "web");
    assert.equal(s.programmed?.status, "True");
    assert.equal(s.listener?.status, "True");
  });

  test("a Gateway with spec.addresses: Programmed once a pod applied what it was sent (no addresses: the Service has it)", async () => {
    const { run, dataplane } = setup([
      CLASS,
      gateway("web", { addresses: [{ type: "IPAddress", value: "10.245.1.10" }] }) as unknown as KubeObject,
    ]);
    const out = await run([service("web", lb("10.245.1.10"))]);
    assert.deepEqual(out.translated.gateways[0]?.addresses, ["10.245.1.10"], "the translator keeps them");
    assert.deepEqual(out.ir.gateways[0]?.addresses, [], "the pods bind all their interfaces");
    const hash = configHash(irForGateway(out.ir, "edge/web"));
    assert.notEqual(hash, configHash(irForGateway(out.translated, "edge/web")));
    dataplane.states.set("edge/web", {
      hash,
      pods: [
        {
          pod: "edge/p1",
          hash,
          applied: true,
          unavailableListeners: [],
          connectedAt: "2026-01-01T00:00:00Z",
        },
      ],
    });
    const s = gatewayStatus((await run([service("web", lb("10.245.1.10"))])).statuses, "web");
    assert.equal(s.programmed?.status, "True", s.programmed?.message);
    assert.deepEqual(s.addresses, [{ type: "IPAddress", value: "10.245.1.10" }]);
  });

  test("an accepted Gateway without a valid listener: its pods get an empty configuration; its status stays the translator's", async () => {
    const broken = gateway("broken", {
      listeners: [
        {
          name: "https",
          port: 443,
          protocol: "HTTPS",
          tls: { mode: "Terminate", certificateRefs: [{ name: "missing" }] },
        },
      ],
    });
    const { run } = setup([CLASS, broken as unknown as KubeObject, service("broken", lb("10.245.0.9"))]);
    const out = await run();
    assert.deepEqual(out.translated.gateways, [], "the translator leaves it out");
    assert.deepEqual(
      out.ir.gateways.map((g) => ({ id: g.id, listeners: g.listeners })),
      [{ id: "edge/broken", listeners: [] }],
      "its pods are sent an empty configuration",
    );
    const { programmed } = gatewayStatus(out.statuses, "broken");
    assert.equal(programmed?.status, "False");
    assert.notEqual(programmed?.reason, "Pending", "not waiting for pods: the translator's reason stands");
  });

  test("listeners the pods cannot serve go through the feedback path", async () => {
    const { run, dataplane } = setup([CLASS, gateway("web") as unknown as KubeObject]);
    const first = await run([service("web", lb("198.51.100.4"))]);
    const hash = configHash(irForGateway(first.translated, "edge/web"));
    dataplane.states.set("edge/web", {
      hash,
      pods: [
        {
          pod: "edge/p1",
          hash,
          applied: true,
          unavailableListeners: [
            { listenerId: "edge/web/http", message: "port 80 in use", reason: "Pending" },
          ],
          connectedAt: "2026-01-01T00:00:00Z",
        },
      ],
    });
    const s = gatewayStatus((await run([service("web", lb("198.51.100.4"))])).statuses, "web");
    assert.equal(s.listener?.status, "False");
    assert.match(s.listener?.message ?? "", /port 80 in use/);
  });

  test("unchanged Gateways cost no API writes; a changed one only its changed objects", async () => {
    const { run, writes } = setup([CLASS, gateway("web") as unknown as KubeObject]);
    await run();
    const first = writes.length;
    await run();
    assert.equal(writes.length, first);
    // A route change changes no object.
    const route: KubeObject = {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: "r", namespace: "edge" },
      spec: { parentRefs: [{ name: "web" }], rules: [{}] },
    };
    await run([route]);
    assert.equal(writes.length, first);
  });

  test("spec.addresses the Service cannot take: AddressNotUsable, no Service", async () => {
    const gw = gateway("web", {
      addresses: [
        { type: "IPAddress", value: "203.0.113.1" },
        { type: "IPAddress", value: "203.0.113.2" },
      ],
    });
    const { run, writes } = setup([CLASS, gw as unknown as KubeObject]);
    const s = gatewayStatus((await run()).statuses, "web");
    assert.equal(s.programmed?.reason, "AddressNotUsable");
    assert.ok(!writes.some((w) => w.includes("/services/")));
  });

  test("a requested address the load balancer did not give: AddressNotUsable", async () => {
    const gw = gateway("web", { addresses: [{ type: "IPAddress", value: "203.0.113.1" }] });
    const { run } = setup([CLASS, gw as unknown as KubeObject]);
    const s = gatewayStatus((await run([service("web", lb("198.51.100.9"))])).statuses, "web");
    assert.equal(s.programmed?.reason, "AddressNotUsable");
    assert.match(s.programmed?.message ?? "", /203\.0\.113\.1 was requested/);
  });

  test("a failed apply is that Gateway's Programmed False with the API's message; others go on", async () => {
    const { run, api } = setup([
      CLASS,
      gateway("bad") as unknown as KubeObject,
      gateway("good") as unknown as KubeObject,
    ]);
    api.intercept = (method, path) => {
      if (method === "GET") return { items: [] };
      if (path.includes("gatehouse-bad") && path.includes("/deployments/"))
        throw Object.assign(new Error("422 Deployment.apps is invalid: spec.template: forbidden"), {
          statusCode: 422,
        });
      return {};
    };
    const out = await run([service("good", lb("198.51.100.4")), service("bad", lb("198.51.100.5"))]);
    const bad = gatewayStatus(out.statuses, "bad");
    assert.equal(bad.programmed?.reason, "Invalid");
    assert.match(
      bad.programmed?.message ?? "",
      /Deployment edge\/gatehouse-bad: 422 Deployment.apps is invalid/,
    );
    assert.equal(gatewayStatus(out.statuses, "good").programmed?.reason, "Pending");
  });

  test("statuses never wait for the API server: objects are applied in the background, failures reported when the round ends", async () => {
    const { infra, api, reconciled } = setup([CLASS]);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let patches = 0;
    api.intercept = async (method, path) => {
      if (method === "GET") return { items: [] };
      patches++;
      await gate;
      if (path.includes("/deployments/"))
        throw Object.assign(new Error("500 etcd unavailable"), { statusCode: 500 });
      return {};
    };
    const { snapshot } = buildSnapshot(
      [CLASS, gateway("slow") as unknown as KubeObject].map((object) => ({ object, source: {} })),
    );
    const result = translate(snapshot, {
      controllerName: "gatehouse.dev/gateway-controller",
      now: "2026-01-01T00:00:00Z",
      validators: haproxyValidators,
      infrastructure: "kubernetes",
    });
    const input = { ...result, snapshot, now: "2026-01-01T00:00:01Z" };
    // The API holds every write: prepare() answers anyway, the Gateway Accepted and not yet Programmed.
    const first = await infra.prepare(input);
    assert.equal(gatewayStatus(first.statuses, "slow").programmed?.reason, "AddressNotAssigned");
    while (patches === 0) await new Promise((resolve) => setImmediate(resolve));
    const again = await infra.prepare(input);
    assert.equal(patches, 1, "one write in flight, held by the API; prepare() does not wait for it");
    assert.equal(gatewayStatus(again.statuses, "slow").programmed?.reason, "AddressNotAssigned");
    assert.equal(reconciled(), 0);
    release();
    await infra.reconciler.idle();
    assert.equal(reconciled(), 1, "the failure is announced");
    const second = await infra.prepare(input);
    assert.equal(gatewayStatus(second.statuses, "slow").programmed?.reason, "Pending");
    assert.match(gatewayStatus(second.statuses, "slow").programmed?.message ?? "", /500 etcd unavailable/);
  });

  test("client certificates: issued once, renewed in the last third of their lifetime", async () => {
    assert.equal(needsRenewal({ notBefore: new Date(0), notAfter: new Date(300) }, 199), false);
    assert.equal(needsRenewal({ notBefore: new Date(0), notAfter: new Date(300) }, 200), true);
    const { run, issuer } = setup([CLASS, gateway("web") as unknown as KubeObject]);
    await run();
    await run();
    assert.equal(issuer.issued, 1);
    assert.equal(oneLine("a\r\nb\u0000c   d"), "a b c d");
  });
});
