import assert from "node:assert/strict";
import { test } from "node:test";
import type { IREndpoint } from "../../../ir/types.ts";
import { arrangeSlots } from "./slots.ts";

const ep = (n: number): IREndpoint => ({ address: `10.0.0.${n}`, port: 8080 });
const eps = (...ns: number[]): IREndpoint[] => ns.map(ep);
const names = (a: ReadonlyArray<IREndpoint | undefined>): Array<number | null> =>
  a.map((e) => (e === undefined ? null : Number(e.address.split(".")[3])));

test("a section new to its IRBackend fills its slots in the IR's order", () => {
  const next = eps(1, 2, 3);
  assert.equal(arrangeSlots(undefined, next, 4), next);
  assert.equal(arrangeSlots([], next, 4), next);
});

test("an endpoint that stays keeps its slot when others go (a hole is left)", () => {
  assert.deepEqual(names(arrangeSlots(eps(1, 2, 3), eps(2, 3), 4)), [null, 2, 3]);
  assert.deepEqual(names(arrangeSlots(eps(1, 2, 3), eps(1, 3), 4)), [1, null, 3]);
  // Trailing holes are dropped.
  assert.deepEqual(names(arrangeSlots(eps(1, 2, 3), eps(1, 2), 4)), [1, 2]);
});

test("endpoints that stay keep their slots when the IR reorders them", () => {
  const previous = eps(1, 2, 3);
  assert.equal(
    arrangeSlots(previous, eps(3, 1, 2), 4),
    previous,
    "nothing moved: the previous arrangement itself",
  );
});

test("a new endpoint takes a slot empty before, then only a slot freed by this change", () => {
  // Slot 1 is freed by 1 leaving; 4 and 5 arrive: 4 takes the never-used slot 4, 5 the freed slot 1.
  assert.deepEqual(names(arrangeSlots(eps(1, 2, 3), eps(2, 3, 4, 5), 4)), [5, 2, 3, 4]);
  // A hole left earlier is refilled before the freed slot.
  assert.deepEqual(names(arrangeSlots([undefined, ep(2), ep(3), ep(4)], eps(3, 4, 6), 4)), [6, null, 3, 4]);
});

test("more endpoints than the previous slots: they fill the new slots", () => {
  assert.deepEqual(names(arrangeSlots(eps(1, 2), eps(1, 2, 3, 4, 5), 8)), [1, 2, 3, 4, 5]);
});

test("the same endpoint listed twice keeps as many slots", () => {
  assert.deepEqual(names(arrangeSlots(eps(1, 2, 1), eps(1, 1), 4)), [1, null, 1]);
});

test("the arrangement is the IR list when it is in order without holes", () => {
  const next = eps(1, 2, 3);
  assert.equal(arrangeSlots(eps(1, 2), next, 4), next);
});

test("throws when the endpoints cannot fit", () => {
  assert.throws(() => arrangeSlots(eps(1, 2), eps(3, 4, 5), 2), /do not fit/);
});
