import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { stampConditions, type ConditionSpec } from "./conditions.ts";

const NOW = "2026-01-01T00:00:00Z";
const spec = (type: string, status: ConditionSpec["status"], reason: string): ConditionSpec => ({
  type,
  status,
  reason,
  message: `${type} ${reason}`,
});

void describe("stampConditions", () => {
  void it("keeps the first condition of each type (callers record the most important one first)", () => {
    const out = stampConditions(
      [
        spec("Accepted", "False", "HostnameConflict"),
        spec("ResolvedRefs", "False", "BackendNotFound"),
        spec("Accepted", "True", "Accepted"),
        spec("ResolvedRefs", "True", "ResolvedRefs"),
      ],
      3,
      NOW,
    );
    assert.deepEqual(
      out.map((c) => [c.type, c.status, c.reason]),
      [
        ["Accepted", "False", "HostnameConflict"],
        ["ResolvedRefs", "False", "BackendNotFound"],
      ],
    );
  });

  void it("sorts by type, whatever the input order", () => {
    const specs = [
      spec("ResolvedRefs", "True", "ResolvedRefs"),
      spec("Programmed", "True", "Programmed"),
      spec("Accepted", "True", "Accepted"),
      spec("PartiallyInvalid", "True", "UnsupportedValue"),
    ];
    const expected = ["Accepted", "PartiallyInvalid", "Programmed", "ResolvedRefs"];
    assert.deepEqual(
      stampConditions(specs, 1, NOW).map((c) => c.type),
      expected,
    );
    assert.deepEqual(
      stampConditions(specs.toReversed(), 1, NOW).map((c) => c.type),
      expected,
    );
  });

  void it("stamps observedGeneration and lastTransitionTime, and copies the rest", () => {
    const [c] = stampConditions([spec("Accepted", "True", "Accepted")], 7, NOW);
    assert.deepEqual(c, {
      type: "Accepted",
      status: "True",
      reason: "Accepted",
      message: "Accepted Accepted",
      observedGeneration: 7,
      lastTransitionTime: NOW,
    });
  });

  void it("leaves observedGeneration out when the object has no generation", () => {
    const [c] = stampConditions([spec("Accepted", "True", "Accepted")], undefined, NOW);
    assert.ok(c !== undefined);
    assert.equal("observedGeneration" in c, false);
    assert.equal(c.lastTransitionTime, NOW);
  });

  void it("stamps generation 0 (a valid generation, not a missing one)", () => {
    const [c] = stampConditions([spec("Accepted", "True", "Accepted")], 0, NOW);
    assert.equal(c?.observedGeneration, 0);
  });

  void it("returns an empty list for no conditions, and does not modify its input", () => {
    assert.deepEqual(stampConditions([], 1, NOW), []);
    const specs = [spec("B", "True", "B"), spec("A", "True", "A")];
    const copy = structuredClone(specs);
    stampConditions(specs, 1, NOW);
    assert.deepEqual(specs, copy);
  });
});
