import assert from "node:assert/strict";
import { test } from "node:test";
import type { Condition, StatusEntry } from "./types.ts";
import { withFeedback, type UnavailableListener } from "./feedback.ts";

const markUnavailableListeners = (
  statuses: StatusEntry[],
  unavailableListeners: UnavailableListener[],
  now: string,
): StatusEntry[] => withFeedback(statuses, { unavailableListeners }, now);

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
  assert.deepEqual(
    dns?.conditions.find((c) => c.type === "Accepted"),
    {
      type: "Accepted",
      status: "False",
      reason: "PortUnavailable",
      message: "cannot listen on UDP 10.0.0.1:53: the address is in use by another process",
      observedGeneration: 3,
      lastTransitionTime: now,
    },
  );
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

test("not applied: every Gateway reports Programmed False and keeps its other conditions", () => {
  const [gw] = withFeedback([gateway("gw", ["web"])], { notApplied: "haproxy -c failed" }, "later");
  const programmed = conditionsOf(gw).find((c) => c.type === "Programmed");
  assert.equal(programmed?.status, "False");
  assert.equal(programmed?.reason, "Invalid");
  assert.equal(programmed?.observedGeneration, 3);
  assert.match(programmed?.message ?? "", /previous one keeps serving\): haproxy -c failed$/);
  assert.equal(conditionsOf(gw).find((c) => c.type === "Accepted")?.status, "True");
});

test("host addresses: only on programmed Gateways that have none of their own", () => {
  const own = gateway("own", ["web"]);
  own.status["addresses"] = [{ type: "IPAddress", value: "10.0.0.9" }];
  const pending = gateway("pending", ["web"]);
  pending.status["conditions"] = [cond("Programmed", "False", "Pending")];
  const [plain, withOwn, notProgrammed] = withFeedback(
    [gateway("plain", ["web"]), own, pending],
    { hostAddresses: ["192.0.2.1", "127.0.0.1"] },
    "now",
  );
  assert.deepEqual(plain?.status["addresses"], [
    { type: "IPAddress", value: "192.0.2.1" },
    { type: "IPAddress", value: "127.0.0.1" },
  ]);
  assert.deepEqual(withOwn?.status["addresses"], [{ type: "IPAddress", value: "10.0.0.9" }]);
  assert.equal(notProgrammed?.status["addresses"], undefined);
});

test("left out by the renderer: PartiallyInvalid on the route's parents, Programmed False on a listener", () => {
  const route: StatusEntry = {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name: "web", namespace: "default" },
    status: {
      parents: [
        {
          parentRef: { name: "gw" },
          controllerName: "x",
          conditions: [cond("Accepted", "True", "Accepted")],
        },
      ],
    },
  };
  const [gw, r] = withFeedback(
    [gateway("gw", ["web", "dns"]), route],
    {
      leftOut: [
        {
          message: "RequestMirror is not supported",
          route: { kind: "HTTPRoute", namespace: "default", name: "web" },
        },
        { message: "bad port", listenerId: "ns/gw/dns" },
      ],
    },
    "now",
  );
  const parents = r?.status["parents"] as Array<{ conditions: Condition[] }>;
  const partially = parents[0]?.conditions.find((c) => c.type === "PartiallyInvalid");
  assert.equal(partially?.reason, "UnsupportedValue");
  assert.equal(partially?.observedGeneration, 3);
  assert.match(partially?.message ?? "", /RequestMirror is not supported/);
  const dns = listenersOf(gw)
    .find((l) => l.name === "dns")
    ?.conditions.find((c) => c.type === "Programmed");
  assert.equal(dns?.reason, "Invalid");
  assert.equal(dns?.message, "The data plane cannot express this listener: bad port");
  assert.equal(conditionsOf(gw).find((c) => c.type === "Programmed")?.status, "True");
});

test("a ListenerSet's listener not served: its own status says so, the Gateway's listeners do not", () => {
  const set: StatusEntry = {
    ...gateway("team", ["app"]),
    kind: "ListenerSet",
    metadata: { name: "team", namespace: "apps" },
  };
  const [gw, ls] = withFeedback(
    [gateway("gw", ["app"]), set],
    {
      unavailableListeners: [
        { listenerId: "ns/gw/apps/team/app", reason: "Pending", message: "port 80 in use" },
      ],
    },
    "now",
  );
  assert.equal(listenersOf(gw)[0]?.conditions.find((c) => c.type === "Programmed")?.status, "True");
  const app = listenersOf(ls)[0]?.conditions.find((c) => c.type === "Programmed");
  assert.equal(app?.status, "False");
  assert.equal(app?.message, "Not served: port 80 in use");
  assert.equal(conditionsOf(ls).find((c) => c.type === "Programmed")?.status, "False");
  assert.equal(ls?.status["addresses"], undefined);
});
