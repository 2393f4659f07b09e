import assert from "node:assert/strict";
import { test } from "node:test";
import type { EventInput } from "../observability/events.ts";
import { emptySnapshot } from "../resources/snapshot.ts";
import { StatusEvents } from "./events.ts";
import type { Condition, StatusEntry } from "./types.ts";

const cond = (type: string, status: Condition["status"], reason: string, message = ""): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: "2026-01-01T00:00:00Z",
});

const gateway = (programmed: Condition, listener: Condition[] = []): StatusEntry => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "gw", namespace: "app" },
  status: {
    conditions: [cond("Accepted", "True", "Accepted"), programmed],
    listeners: [{ name: "http", conditions: listener }],
  },
});

const route = (conditions: Condition[]): StatusEntry => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "HTTPRoute",
  metadata: { name: "web", namespace: "app" },
  status: { parents: [{ parentRef: { name: "gw", sectionName: "http" }, controllerName: "x", conditions }] },
});

function run(passes: StatusEntry[][], leading: boolean[] = passes.map(() => true)): EventInput[][] {
  const events = new StatusEvents();
  return passes.map((statuses, i) => {
    const out: EventInput[] = [];
    events.observe(
      statuses,
      emptySnapshot(),
      leading[i] === true ? { record: (e) => out.push(e) } : undefined,
    );
    return out;
  });
}

test("a config that does not apply: one Warning, nothing while it stays, Normal when it is programmed again", () => {
  const bad = gateway(cond("Programmed", "False", "Invalid", "haproxy -c: parsing error"));
  const good = gateway(cond("Programmed", "True", "Programmed"));
  const [first, same, recovered, again] = run([[bad], [bad], [good], [good]]);
  assert.deepEqual(first, [
    {
      regarding: {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "Gateway",
        namespace: "app",
        name: "gw",
        uid: undefined,
      },
      related: undefined,
      type: "Warning",
      reason: "Invalid",
      action: "Program",
      note: "Programmed False: haproxy -c: parsing error",
    },
  ]);
  assert.deepEqual(same, []);
  assert.deepEqual(
    recovered?.map((e) => [e.type, e.reason, e.note]),
    [["Normal", "Programmed", "Programmed True: "]],
  );
  assert.deepEqual(again, []);
});

test("a listener that cannot bind, a rejected route: Warnings naming the listener and the parent", () => {
  const [events] = run([
    [
      gateway(cond("Programmed", "True", "Programmed"), [
        cond("Programmed", "False", "PortUnavailable", "port 80 is in use"),
      ]),
      route([
        cond("Accepted", "False", "NotAllowedByListeners", "no listener allows it"),
        cond("ResolvedRefs", "True", "ResolvedRefs"),
        cond("PartiallyInvalid", "True", "UnsupportedValue", "rule 0"),
      ]),
    ],
  ]);
  assert.deepEqual(
    events?.map((e) => [e.regarding.kind, e.type, e.action, e.reason, e.note, e.related?.name]),
    [
      [
        "Gateway",
        "Warning",
        "Program",
        "PortUnavailable",
        "listener http: Programmed False: port 80 is in use",
        undefined,
      ],
      [
        "HTTPRoute",
        "Warning",
        "Accept",
        "NotAllowedByListeners",
        "parent Gateway app/gw (http): Accepted False: no listener allows it",
        "gw",
      ],
      [
        "HTTPRoute",
        "Warning",
        "PartiallyInvalid",
        "UnsupportedValue",
        "parent Gateway app/gw (http): PartiallyInvalid True: rule 0",
        "gw",
      ],
    ],
  );
});

test("a changed message while still bad is a new Event; a follower observes without recording", () => {
  const a = gateway(cond("Programmed", "False", "Invalid", "error A"));
  const b = gateway(cond("Programmed", "False", "Invalid", "error B"));
  const [, second, third] = run([[a], [b], [b]], [false, true, true]);
  assert.deepEqual(
    second?.map((e) => e.note),
    ["Programmed False: error B"],
  );
  assert.deepEqual(third, []);
  const [asFollower, asLeader] = run([[a], [a]], [false, true]);
  assert.deepEqual(asFollower, []);
  assert.deepEqual(asLeader, [], "what the follower saw before it led is not repeated");
});
