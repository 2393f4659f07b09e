import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseDocuments } from "../../resources/load.ts";
import { buildSnapshot, type Snapshot } from "../../resources/snapshot.ts";
import type { Condition, StatusEntry } from "../../status/types.ts";
import { translate } from "../../translate/index.ts";
import { FakeBinder } from "./binder.ts";
import { HostInfrastructure } from "./host.ts";
import { AddressPool } from "./pool.ts";
import { haproxyValidators } from "../../dataplane/haproxy/capabilities.ts";

const NOW = "2025-01-01T00:00:00Z";
const CONTROLLER = "gatehouse.dev/gateway-controller";

function gatewayYaml(name: string, addresses?: string[], status?: string[]): string {
  return `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: default }
spec:
  gatewayClassName: gh
  listeners: [{ name: http, port: 80, protocol: HTTP }]
${addresses === undefined ? "" : `  addresses: [${addresses.map((a) => `{ type: IPAddress, value: "${a}" }`).join(", ")}]`}
${status === undefined ? "" : `status:\n  addresses: [${status.map((a) => `{ type: IPAddress, value: "${a}" }`).join(", ")}]`}
---`;
}

function snapshotOf(...gateways: string[]): Snapshot {
  const text = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: gh }
spec: { controllerName: ${CONTROLLER} }
---${gateways.join("\n")}`;
  const parsed = parseDocuments(text, "test.yaml");
  assert.deepEqual(parsed.errors.map(String), []);
  // Status is not part of the schema the loader validates: put it back as the API server would.
  const objects = parsed.objects.map((o) => {
    const doc = text
      .split("\n---")
      .find((d) => d.includes(`name: ${o.object.metadata.name},`) && d.includes("status:"));
    const match = doc === undefined ? null : /status:\n {2}addresses: \[(.*)\]/.exec(doc);
    if (match === null) return o;
    const values = [...(match[1] ?? "").matchAll(/value: "([^"]+)"/g)].map((m) => ({
      type: "IPAddress",
      value: m[1],
    }));
    return { ...o, object: { ...o.object, status: { addresses: values } } };
  });
  return buildSnapshot(objects).snapshot;
}

async function prepare(infra: HostInfrastructure, snapshot: Snapshot) {
  const { ir, statuses } = translate(snapshot, {
    controllerName: CONTROLLER,
    now: NOW,
    validators: haproxyValidators,
  });
  return infra.prepare({ ir, statuses, snapshot, now: NOW });
}

const gatewayEntry = (statuses: StatusEntry[], name: string) => {
  const e = statuses.find((s) => s.kind === "Gateway" && s.metadata.name === name);
  assert.ok(e !== undefined);
  return e.status as {
    addresses?: Array<{ type: string; value: string }>;
    conditions: Condition[];
    listeners: Array<{ conditions: Condition[] }>;
  };
};

describe("HostInfrastructure", () => {
  test("Gateways without spec.addresses get pool addresses, bound and reported", async () => {
    const binder = new FakeBinder();
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.10.0.0/24") });
    const out = await prepare(infra, snapshotOf(gatewayYaml("b"), gatewayYaml("a")));
    assert.deepEqual(
      out.ir.gateways.map((g) => [g.id, g.addresses]),
      [
        ["default/a", ["10.10.0.1"]],
        ["default/b", ["10.10.0.2"]],
      ],
    );
    assert.deepEqual(binder.calls, ["link add gatehouse0", "add 10.10.0.1", "add 10.10.0.2"]);
    assert.deepEqual(gatewayEntry(out.statuses, "a").addresses, [{ type: "IPAddress", value: "10.10.0.1" }]);
  });

  test("addresses follow Gateways: removed when a Gateway goes, kept for the others", async () => {
    const binder = new FakeBinder();
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.10.0.0/24") });
    await prepare(infra, snapshotOf(gatewayYaml("a"), gatewayYaml("b")));
    binder.calls.length = 0;
    const out = await prepare(infra, snapshotOf(gatewayYaml("b")));
    assert.deepEqual(
      out.ir.gateways.map((g) => g.addresses),
      [["10.10.0.2"]],
    );
    assert.deepEqual(binder.calls, ["del 10.10.0.1"]);
  });

  test("after a restart the address in status.addresses is taken back", async () => {
    const binder = new FakeBinder();
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.10.0.0/24") });
    const out = await prepare(
      infra,
      snapshotOf(gatewayYaml("a"), gatewayYaml("b", undefined, ["10.10.0.1"])),
    );
    assert.deepEqual(
      out.ir.gateways.map((g) => [g.name, g.addresses[0]]),
      [
        ["a", "10.10.0.2"],
        ["b", "10.10.0.1"],
      ],
    );
  });

  test("spec.addresses are used as given; bound only when not already local", async () => {
    const binder = new FakeBinder("gatehouse0", ["127.0.0.1", "192.0.2.2"]);
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.10.0.0/24") });
    const out = await prepare(infra, snapshotOf(gatewayYaml("s", ["192.0.2.2", "10.20.0.5"])));
    assert.deepEqual(out.ir.gateways[0]?.addresses, ["192.0.2.2", "10.20.0.5"]);
    assert.deepEqual(binder.calls, ["link add gatehouse0", "add 10.20.0.5"]);
    // Second round: 10.20.0.5 is now on our interface; it stays (not treated as "local elsewhere").
    binder.calls.length = 0;
    await prepare(infra, snapshotOf(gatewayYaml("s", ["192.0.2.2", "10.20.0.5"])));
    assert.deepEqual(binder.calls, []);
  });

  test("without a pool, Gateways without addresses listen on all interfaces (IR unchanged)", async () => {
    const binder = new FakeBinder();
    const infra = new HostInfrastructure({ binder });
    const out = await prepare(infra, snapshotOf(gatewayYaml("a")));
    assert.deepEqual(out.ir.gateways[0]?.addresses, []);
    assert.equal(gatewayEntry(out.statuses, "a").addresses, undefined);
    assert.deepEqual(binder.calls, [], "no interface when nothing needs binding");
  });

  test("spec.addresses that are all local already: no interface is created", async () => {
    const binder = new FakeBinder("gatehouse0", ["127.0.0.1", "192.0.2.2"]);
    const infra = new HostInfrastructure({ binder });
    const out = await prepare(infra, snapshotOf(gatewayYaml("s", ["192.0.2.2"])));
    assert.deepEqual(out.ir.gateways[0]?.addresses, ["192.0.2.2"]);
    assert.deepEqual(binder.calls, []);
    await infra.close();
    assert.deepEqual(binder.calls, []);
  });

  test("pool exhausted: the Gateway is left out and says Programmed False AddressNotAssigned", async () => {
    const binder = new FakeBinder();
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.10.0.1/32") });
    const out = await prepare(infra, snapshotOf(gatewayYaml("a"), gatewayYaml("b")));
    assert.deepEqual(
      out.ir.gateways.map((g) => g.name),
      ["a"],
    );
    const b = gatewayEntry(out.statuses, "b");
    const programmed = b.conditions.find((c) => c.type === "Programmed");
    assert.equal(programmed?.status, "False");
    assert.equal(programmed?.reason, "AddressNotAssigned");
    assert.equal(programmed?.observedGeneration, 1);
    assert.equal(b.listeners[0]?.conditions.find((c) => c.type === "Programmed")?.status, "False");
    assert.equal(b.addresses, undefined);
  });

  test("an address that cannot be bound: that Gateway only is left out, AddressNotUsable", async () => {
    const binder = new FakeBinder();
    binder.failAdd = (a) => a === "10.10.0.1";
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.10.0.0/24") });
    const out = await prepare(infra, snapshotOf(gatewayYaml("a"), gatewayYaml("b")));
    assert.deepEqual(
      out.ir.gateways.map((g) => g.name),
      ["b"],
    );
    assert.equal(
      gatewayEntry(out.statuses, "a").conditions.find((c) => c.type === "Programmed")?.reason,
      "AddressNotUsable",
    );
  });

  test("close() deletes the interface it created", async () => {
    const binder = new FakeBinder();
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.10.0.0/24") });
    await prepare(infra, snapshotOf(gatewayYaml("a")));
    await infra.close();
    assert.equal(binder.calls.at(-1), "link del gatehouse0");
    assert.equal(binder.exists, false);
  });

  test("close() leaves an interface it did not create, removing only the addresses", async () => {
    const binder = new FakeBinder();
    binder.exists = true;
    binder.bound.add("10.10.0.200"); // left over from an earlier run: removed at the first prepare
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.10.0.0/24") });
    await prepare(infra, snapshotOf(gatewayYaml("a")));
    assert.ok(!binder.bound.has("10.10.0.200"));
    await infra.close();
    assert.ok(binder.exists);
    assert.deepEqual([...binder.bound], []);
  });
});
