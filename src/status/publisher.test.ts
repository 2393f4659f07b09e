import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../provider/clock.ts";
import { emptySnapshot } from "../resources/snapshot.ts";
import { StatusPublisher, type StatusSink } from "./publisher.ts";
import type { StatusEntry } from "./types.ts";
import type { StatusWriteReport } from "./writer.ts";

const entry = (name: string): StatusEntry => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "GatewayClass",
  metadata: { name },
  status: {},
});
const ok = (): StatusWriteReport => ({
  written: [],
  unchanged: 0,
  conflicts: 0,
  missing: [],
  failed: [],
  fenced: [],
});

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

test("writes only while leading; a new leader writes the latest statuses at once", async () => {
  const passes: string[][] = [];
  const sink: StatusSink = {
    write: (s) => (passes.push(s.map((e) => e.metadata.name)), Promise.resolve(ok())),
  };
  let leader = false;
  const p = new StatusPublisher({ writer: sink, isLeader: () => leader, clock: new ManualClock() });
  p.publish([entry("a")], emptySnapshot());
  p.publish([entry("b")], emptySnapshot());
  await p.idle();
  assert.deepEqual(passes, []);
  leader = true;
  p.leadershipChanged(true);
  await p.idle();
  assert.deepEqual(passes, [["b"]]);
  await p.stop();
});

test("one pass at a time; statuses arriving meanwhile coalesce into one more pass", async () => {
  const passes: string[][] = [];
  let release: () => void = () => undefined;
  const sink: StatusSink = {
    write: async (s) => {
      passes.push(s.map((e) => e.metadata.name));
      await new Promise<void>((resolve) => (release = resolve));
      return ok();
    },
  };
  const p = new StatusPublisher({ writer: sink, clock: new ManualClock() });
  p.publish([entry("1")], emptySnapshot());
  await flush();
  for (const n of ["2", "3", "4"]) p.publish([entry(n)], emptySnapshot());
  release();
  await flush();
  release();
  await p.idle();
  assert.deepEqual(passes, [["1"], ["4"]]);
});

test("a pass with failures is retried with backoff", async () => {
  let fail = true;
  let calls = 0;
  const sink: StatusSink = {
    write: () => {
      calls++;
      return Promise.resolve(fail ? { ...ok(), failed: [{ object: "x", error: "down" }] } : ok());
    },
  };
  const clock = new ManualClock();
  const p = new StatusPublisher({ writer: sink, clock, retryMs: 100 });
  p.publish([entry("a")], emptySnapshot());
  await p.idle();
  assert.equal(calls, 1);
  clock.advance(100);
  await p.idle();
  assert.equal(calls, 2);
  clock.advance(150);
  await p.idle();
  assert.equal(calls, 2, "the second delay is doubled");
  fail = false;
  clock.advance(50);
  await p.idle();
  assert.equal(calls, 3);
  clock.advance(10_000);
  await p.idle();
  assert.equal(calls, 3, "no retry after success");
  await p.stop();
});
