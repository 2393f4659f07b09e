import assert from "node:assert/strict";
import { test } from "node:test";
import type { Condition, StatusEntry } from "../../status/types.ts";
import { markUnavailableListeners } from "./status.ts";

const cond = (type: string, status: "True" | "False", reason: string): Condition => ({
  type,
  status,
  reason,
  message: "",
  observedGeneration: 3,
  lastTransitionTime: "2020-01-01T00:00:00Z",
});

function gateway(name: string, listeners: string[]): StatusEntry {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace: "ns" },
    status: {
      conditions: [cond("Accepted", "True", "Accepted"), cond("Programmed", "True", "Programmed")],
      listeners: listeners.map((l) => ({
        name: l,
        attachedRoutes: 1,
        conditions: [cond("Accepted", "True", "Accepted"), cond("Programmed", "True", "Programmed")],
      })),
    },
  };
}

type Listener = { name: string; conditions: Condition[] };
const listenersOf = (e: StatusEntry | undefined): Listener[] =>
  (e?.status["listeners"] as Listener[] | undefined) ?? [];
const conditionsOf = (e: StatusEntry | undefined): Condition[] =>
  (e?.status["conditions"] as Condition[] | undefined) ?? [];

test("a listener not served reports Programmed False; the Gateway stays Programmed while others are served", () => {
  const now = "2024-05-01T00:00:00Z";
  const [gw, other] = markUnavailableListeners(
    [gateway("gw", ["dns", "web"]), gateway("other", ["dns"])],
    [
      {
        listenerId: "ns/gw/dns",
        reason: "Pending",
        message: "cannot listen on UDP 10.0.0.1:53: the address is in use by another process",
      },
    ],
    now,
  );
  const dns = listenersOf(gw).find((l) => l.name === "dns");
  assert.deepEqual(
    dns?.conditions.find((c) => c.type === "Programmed"),
    {
      type: "Programmed",
      status: "False",
      reason: "Pending",
      message: "Not served: cannot listen on UDP 10.0.0.1:53: the address is in use by another process",
      observedGeneration: 3,
      lastTransitionTime: now,
    },
  );
  assert.equal(dns?.conditions.find((c) => c.type === "Accepted")?.status, "True");
  assert.equal(
    listenersOf(gw)
      .find((l) => l.name === "web")
      ?.conditions.find((c) => c.type === "Programmed")?.status,
    "True",
  );
  assert.equal(conditionsOf(gw).find((c) => c.type === "Programmed")?.status, "True");
  assert.deepEqual(other, gateway("other", ["dns"]));
});

test("a Gateway none of whose listeners is served is not Programmed; Invalid wins over Pending", () => {
  const [gw] = markUnavailableListeners(
    [gateway("gw", ["dns"])],
    [
      { listenerId: "ns/gw/dns", reason: "Pending", message: "in use" },
      { listenerId: "ns/gw/dns", reason: "Invalid", message: "clash" },
    ],
    "2024-05-01T00:00:00Z",
  );
  const programmed = listenersOf(gw)[0]?.conditions.find((c) => c.type === "Programmed");
  assert.equal(programmed?.reason, "Invalid");
  assert.equal(programmed?.message, "Not served: in use; clash");
  const gwProgrammed = conditionsOf(gw).find((c) => c.type === "Programmed");
  assert.equal(gwProgrammed?.status, "False");
  assert.equal(gwProgrammed?.reason, "Pending");
});

test("nothing unavailable: statuses unchanged", () => {
  const entries = [gateway("gw", ["dns"])];
  assert.deepEqual(markUnavailableListeners(entries, [], "now"), entries);
});
