import { test } from "node:test";
import assert from "node:assert/strict";
import {
  inferenceReadmeTable,
  isInferenceReport,
  readmeTable,
  regressions,
} from "../../conformance/baseline.ts";

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

const inference = (passed: number, failed: string[]) => ({
  GatewayAPIInferenceExtensionVersion: "v1.6.0",
  date: "2026-12-03T19:00:00Z",
  implementation: { version: "v0.1.0" },
  profiles: [
    {
      name: "Gateway",
      core: { statistics: { Passed: passed, Failed: failed.length, Skipped: 0 }, failedTests: failed },
    },
  ],
});

test("an inference report: recognised, checked like the others, its own README table", () => {
  assert.equal(isInferenceReport(inference(5, [])), true);
  assert.equal(isInferenceReport(report(37)), false);
  const baseline = inference(5, ["GatewayFollowingEPPRouting", "GatewayWeightedAcrossTwoInferencePools"]);
  // The same failures (in any order) are not a regression; one failing fewer is not either.
  assert.deepEqual(
    regressions(
      inference(5, ["GatewayWeightedAcrossTwoInferencePools", "GatewayFollowingEPPRouting"]),
      baseline,
    ),
    [],
  );
  assert.deepEqual(regressions(inference(6, ["GatewayFollowingEPPRouting"]), baseline), []);
  // A test the baseline passes that fails now is.
  assert.deepEqual(
    regressions(
      inference(4, [
        "GatewayFollowingEPPRouting",
        "GatewayWeightedAcrossTwoInferencePools",
        "InferencePoolAccepted",
      ]),
      baseline,
    ),
    ["Gateway core: 4 passed, baseline 5", "Gateway core: InferencePoolAccepted fails"],
  );
  const table = inferenceReadmeTable(baseline);
  assert.match(
    table,
    /^Inference Extension suite v1\.6\.0 \(`npm run conformance:inference`\), report of 2026-12-03T19:00:00Z \(Gatehouse v0\.1\.0\):/,
  );
  assert.match(
    table,
    /\| Gateway \| 5\/7 passed \| GatewayFollowingEPPRouting, GatewayWeightedAcrossTwoInferencePools \|/,
  );
  assert.match(inferenceReadmeTable(inference(14, [])), /\| Gateway \| 14\/14 passed \| — \|/);
});
