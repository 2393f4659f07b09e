import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { canonicalJSON, mergeConditions, mergeStatus, statusEqual, withoutOurEntries } from "./merge.ts";
import type { Condition } from "./types.ts";

const OURS = "gatehouse.dev/gateway-controller";
const THEIRS = "example.com/other";
const T0 = "2025-01-01T00:00:00Z";
const T1 = "2025-06-01T12:00:00Z";

const c = (
  type: string,
  status: Condition["status"],
  lastTransitionTime: string,
  extra: Partial<Condition> = {},
): Condition => ({
  type,
  status,
  reason: type,
  message: `${type} is ${status}`,
  observedGeneration: 1,
  lastTransitionTime,
  ...extra,
});

const gwRef = (name: string, sectionName?: string) => ({
  group: "gateway.networking.k8s.io",
  kind: "Gateway",
  name,
  ...(sectionName !== undefined ? { sectionName } : {}),
});

describe("mergeConditions", () => {
  test("a condition whose status did not change keeps its lastTransitionTime", () => {
    const merged = mergeConditions(
      [c("Accepted", "True", T0)],
      [c("Accepted", "True", T1, { message: "new text", observedGeneration: 2 })],
    );
    assert.deepEqual(merged, [c("Accepted", "True", T0, { message: "new text", observedGeneration: 2 })]);
  });

  test("a condition whose status changed takes the new time", () => {
    assert.equal(
      mergeConditions([c("Accepted", "True", T0)], [c("Accepted", "False", T1)])[0]?.lastTransitionTime,
      T1,
    );
  });

  test("new conditions take the new time; conditions no longer reported are dropped", () => {
    const merged = mergeConditions([c("Old", "True", T0)], [c("Programmed", "True", T1)]);
    assert.deepEqual(merged, [c("Programmed", "True", T1)]);
  });

  test("garbage in the current status is ignored", () => {
    assert.deepEqual(mergeConditions("nonsense", [c("A", "True", T1)]), [c("A", "True", T1)]);
    assert.deepEqual(mergeConditions([null, { type: "A" }], [c("A", "True", T1)]), [c("A", "True", T1)]);
  });
});

describe("mergeStatus: Gateway", () => {
  test("conditions and listener conditions (matched by name) keep their times; the rest is ours", () => {
    const current = {
      addresses: [{ type: "IPAddress", value: "10.0.0.9" }],
      conditions: [c("Accepted", "True", T0), c("Programmed", "False", T0)],
      listeners: [
        { name: "http", attachedRoutes: 1, supportedKinds: [], conditions: [c("Accepted", "True", T0)] },
        { name: "gone", attachedRoutes: 0, supportedKinds: [], conditions: [c("Accepted", "True", T0)] },
      ],
    };
    const desired = {
      conditions: [c("Accepted", "True", T1), c("Programmed", "True", T1)],
      listeners: [
        { name: "https", attachedRoutes: 0, supportedKinds: [], conditions: [c("Accepted", "True", T1)] },
        { name: "http", attachedRoutes: 2, supportedKinds: [], conditions: [c("Accepted", "True", T1)] },
      ],
    };
    assert.deepEqual(mergeStatus("Gateway", current, desired, OURS), {
      conditions: [c("Accepted", "True", T0), c("Programmed", "True", T1)],
      listeners: [
        { name: "https", attachedRoutes: 0, supportedKinds: [], conditions: [c("Accepted", "True", T1)] },
        { name: "http", attachedRoutes: 2, supportedKinds: [], conditions: [c("Accepted", "True", T0)] },
      ],
    });
  });

  test("a Gateway without status gets the desired one as is", () => {
    const desired = { conditions: [c("Accepted", "True", T1)] };
    assert.deepEqual(mergeStatus("Gateway", undefined, desired, OURS), desired);
  });
});

describe("mergeStatus: routes (shared parents)", () => {
  const theirs = {
    parentRef: gwRef("other-gw"),
    controllerName: THEIRS,
    conditions: [c("Accepted", "True", T0)],
  };

  test("other controllers' entries stay untouched and in place; ours are replaced in place", () => {
    const current = {
      parents: [
        {
          parentRef: gwRef("gw", "a"),
          controllerName: OURS,
          conditions: [c("Accepted", "True", T0), c("ResolvedRefs", "True", T0)],
        },
        theirs,
      ],
    };
    const desired = {
      parents: [
        {
          parentRef: gwRef("gw", "a"),
          controllerName: OURS,
          conditions: [c("Accepted", "True", T1), c("ResolvedRefs", "False", T1)],
        },
      ],
    };
    assert.deepEqual(mergeStatus("HTTPRoute", current, desired, OURS), {
      parents: [
        {
          parentRef: gwRef("gw", "a"),
          controllerName: OURS,
          conditions: [c("Accepted", "True", T0), c("ResolvedRefs", "False", T1)],
        },
        theirs,
      ],
    });
  });

  test("our stale entries are removed, new ones appended", () => {
    const current = {
      parents: [
        { parentRef: gwRef("gw", "old"), controllerName: OURS, conditions: [c("Accepted", "True", T0)] },
        theirs,
      ],
    };
    const desired = {
      parents: [
        { parentRef: gwRef("gw", "new"), controllerName: OURS, conditions: [c("Accepted", "True", T1)] },
      ],
    };
    assert.deepEqual(mergeStatus("TCPRoute", current, desired, OURS).parents, [
      theirs,
      { parentRef: gwRef("gw", "new"), controllerName: OURS, conditions: [c("Accepted", "True", T1)] },
    ]);
  });

  test("an entry for the same parentRef written by another controller is not ours to replace", () => {
    const sameRefTheirs = { ...theirs, parentRef: gwRef("gw") };
    const desired = {
      parents: [{ parentRef: gwRef("gw"), controllerName: OURS, conditions: [c("Accepted", "True", T1)] }],
    };
    const merged = mergeStatus("GRPCRoute", { parents: [sameRefTheirs] }, desired, OURS);
    assert.deepEqual(merged.parents, [sameRefTheirs, desired.parents[0]]);
  });

  test("parentRef defaults (group, kind) do not make a different parent", () => {
    const current = {
      parents: [{ parentRef: { name: "gw" }, controllerName: OURS, conditions: [c("Accepted", "True", T0)] }],
    };
    const desired = {
      parents: [{ parentRef: gwRef("gw"), controllerName: OURS, conditions: [c("Accepted", "True", T1)] }],
    };
    const merged = mergeStatus("HTTPRoute", current, desired, OURS);
    assert.deepEqual(merged.parents, [
      { parentRef: gwRef("gw"), controllerName: OURS, conditions: [c("Accepted", "True", T0)] },
    ]);
  });

  test("withoutOurEntries drops only ours, and says when there is nothing to drop", () => {
    const current = { parents: [{ parentRef: gwRef("gw"), controllerName: OURS, conditions: [] }, theirs] };
    assert.deepEqual(withoutOurEntries("HTTPRoute", current, OURS), { parents: [theirs] });
    assert.equal(withoutOurEntries("HTTPRoute", { parents: [theirs] }, OURS), undefined);
    assert.equal(withoutOurEntries("HTTPRoute", undefined, OURS), undefined);
    assert.equal(withoutOurEntries("Gateway", current, OURS), undefined);
  });

  test("policies share `ancestors` the same way", () => {
    const ancestor = (name: string, ctrl: string, t: string) => ({
      ancestorRef: gwRef(name),
      controllerName: ctrl,
      conditions: [c("Accepted", "True", t)],
    });
    const merged = mergeStatus(
      "BackendTLSPolicy",
      { ancestors: [ancestor("a", THEIRS, T0), ancestor("b", OURS, T0)] },
      { ancestors: [ancestor("b", OURS, T1)] },
      OURS,
    );
    assert.deepEqual(merged.ancestors, [ancestor("a", THEIRS, T0), ancestor("b", OURS, T0)]);
  });
});

describe("statusEqual", () => {
  test("ignores lastTransitionTime, key order and the order of conditions and parents", () => {
    const a = {
      conditions: [c("A", "True", T0), c("B", "False", T0)],
      parents: [
        { controllerName: OURS, parentRef: gwRef("x") },
        { controllerName: THEIRS, parentRef: gwRef("y") },
      ],
    };
    const b = {
      parents: [
        { parentRef: gwRef("y"), controllerName: THEIRS },
        { parentRef: gwRef("x"), controllerName: OURS },
      ],
      conditions: [c("B", "False", T1), c("A", "True", T1)],
    };
    assert.ok(statusEqual(a, b));
  });

  test("sees real differences", () => {
    assert.ok(!statusEqual({ conditions: [c("A", "True", T0)] }, { conditions: [c("A", "False", T0)] }));
    assert.ok(
      !statusEqual(
        { conditions: [c("A", "True", T0)] },
        { conditions: [c("A", "True", T0, { observedGeneration: 2 })] },
      ),
    );
    assert.ok(
      !statusEqual(
        { listeners: [{ name: "a" }, { name: "b" }] },
        { listeners: [{ name: "b" }, { name: "a" }] },
      ),
    );
    assert.ok(!statusEqual({ addresses: [] }, {}));
  });

  test("undefined members equal missing ones", () => {
    assert.ok(statusEqual({ a: undefined, b: 1 }, { b: 1 }));
    assert.equal(canonicalJSON({ b: 1, a: [1, { d: 2, c: undefined }] }), '{"a":[1,{"d":2}],"b":1}');
  });

  test("merging what the translator says twice in a row is stable (no write the second time)", () => {
    const current = {
      parents: [{ parentRef: gwRef("gw"), controllerName: OURS, conditions: [c("Accepted", "True", T0)] }],
    };
    const desired = {
      parents: [{ parentRef: gwRef("gw"), controllerName: OURS, conditions: [c("Accepted", "True", T1)] }],
    };
    assert.ok(statusEqual(current, mergeStatus("HTTPRoute", current, desired, OURS)));
  });
});
