import assert from "node:assert/strict";
import { test } from "node:test";
import { FlowTable } from "./flows.ts";

test("flows expire after the idle timeout; activity keeps them", () => {
  const t = new FlowTable<string>({ maxFlows: 10, idleTimeoutMs: 100 });
  t.add("a", "A", 0);
  t.add("b", "B", 10);
  assert.equal(t.touch("a", 50), true);
  assert.deepEqual(t.expire(109), []);
  assert.deepEqual(t.expire(110), ["B"]);
  assert.equal(t.get("b"), undefined);
  assert.deepEqual(t.expire(149), []);
  assert.deepEqual(t.expire(150), ["A"]);
  assert.equal(t.size, 0);
  assert.equal(t.touch("a", 200), false);
});

test("beyond maxFlows the least recently active flows are evicted", () => {
  const t = new FlowTable<string>({ maxFlows: 2, idleTimeoutMs: 1000 });
  assert.deepEqual(t.add("a", "A", 0), []);
  assert.deepEqual(t.add("b", "B", 1), []);
  t.touch("a", 2);
  assert.deepEqual(t.add("c", "C", 3), ["B"]);
  assert.deepEqual([...t.flows()], ["A", "C"]);
  assert.equal(t.size, 2);
});

test("adding an existing key replaces (and returns) the old flow", () => {
  const t = new FlowTable<string>({ maxFlows: 2, idleTimeoutMs: 1000 });
  t.add("a", "A1", 0);
  t.add("b", "B", 0);
  assert.deepEqual(t.add("a", "A2", 1), ["A1"]);
  assert.deepEqual([...t.flows()], ["B", "A2"]);
});

test("removeWhere and delete", () => {
  const t = new FlowTable<number>({ maxFlows: 10, idleTimeoutMs: 1000 });
  for (let i = 0; i < 6; i++) t.add(String(i), i, i);
  assert.deepEqual(
    t.removeWhere((f) => f % 2 === 0),
    [0, 2, 4],
  );
  assert.equal(t.delete("1"), 1);
  assert.equal(t.delete("1"), undefined);
  assert.deepEqual([...t.flows()], [3, 5]);
});
