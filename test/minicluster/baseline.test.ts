import { test } from "node:test";
import assert from "node:assert/strict";
import { readmeTable, regressions } from "../../conformance/baseline.ts";

const report = (passed: number, failed: string[] = []) => ({
  profiles: [
    {
      name: "GATEWAY-HTTP",
      core: { statistics: { Passed: passed, Failed: failed.length }, failedTests: failed },
    },
  ],
});

test("a test that passed before and fails now is a regression; fewer passes too", () => {
  assert.deepEqual(regressions(report(37), report(37)), []);
  assert.deepEqual(regressions(report(36, ["HTTPRouteWeight"]), report(37)), [
    "GATEWAY-HTTP core: 36 passed, baseline 37",
    "GATEWAY-HTTP core: HTTPRouteWeight fails",
  ]);
  assert.deepEqual(regressions({ profiles: [] }, report(37)), [
    "GATEWAY-HTTP: profile missing from the report",
  ]);
});

test("the README table shows passed/total per profile", () => {
  assert.match(readmeTable(report(37)), /\| GATEWAY-HTTP \| 37\/37 passed \| — \|/);
});
