import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../provider/clock.ts";
import { OutageLog } from "./outage.ts";

function setup() {
  const clock = new ManualClock();
  const lines: string[] = [];
  const log = new OutageLog({
    what: "leader election",
    clock,
    log: { info: (m) => lines.push(`INFO ${m}`), warn: (m) => lines.push(`WARN ${m}`) },
  });
  return { clock, lines, log };
}

test("an outage logs its first failure, one reminder a minute, and its end", () => {
  const { clock, lines, log } = setup();
  log.succeeded();
  assert.deepEqual(lines, [], "no outage, nothing to say");
  // A failure every 2 s for 130 s: 66 failures.
  for (let t = 0; t <= 130_000; t += 2_000) {
    clock.advance(t === 0 ? 0 : 2_000);
    log.failed("connect ECONNREFUSED");
  }
  assert.ok(log.failing);
  clock.advance(1_000);
  log.succeeded();
  assert.deepEqual(lines, [
    "WARN leader election: connect ECONNREFUSED",
    "WARN leader election: still failing after 60 s (31 failures; last: connect ECONNREFUSED)",
    "WARN leader election: still failing after 120 s (61 failures; last: connect ECONNREFUSED)",
    "INFO leader election: working again after 131 s (66 failures)",
  ]);
  assert.ok(!log.failing);
  log.succeeded();
  assert.equal(lines.length, 4, "recovery is logged once");
  log.failed("503");
  assert.equal(lines.at(-1), "WARN leader election: 503", "a new outage starts afresh");
});
