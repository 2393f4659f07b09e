// Unit tests of the mini-cluster and conformance-run helpers: CIDR arithmetic, report summaries.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  cidrContains,
  cidrsOverlap,
  intToIpv4,
  ipv4ToInt,
  parseCidr,
} from "../../conformance/minicluster/net.ts";
import { failedTests, summarizeReport, timedOutTests } from "../../conformance/report.ts";

describe("CIDRs", () => {
  test("parse, contain, overlap", () => {
    assert.deepEqual(parseCidr("10.244.0.1/16"), { network: "10.244.0.0", prefix: 16 });
    assert.equal(intToIpv4(ipv4ToInt("10.244.1.255") + 1), "10.244.2.0");
    assert.ok(cidrContains(parseCidr("10.244.0.0/16"), "10.244.1.7"));
    assert.ok(!cidrContains(parseCidr("10.244.0.0/16"), "10.245.0.1"));
    assert.ok(cidrsOverlap(parseCidr("10.244.0.0/16"), parseCidr("10.244.1.0/24")));
    assert.ok(!cidrsOverlap(parseCidr("10.244.0.0/16"), parseCidr("10.245.0.0/24")));
    assert.ok(cidrsOverlap(parseCidr("0.0.0.0/0"), parseCidr("192.0.2.0/24")));
    assert.throws(() => parseCidr("10.0.0.0/33"));
    assert.throws(() => ipv4ToInt("10.0.0"));
  });
});

const REPORT = `apiVersion: gateway.networking.k8s.io/v1
kind: ConformanceReport
date: "2026-11-22T12:30:00Z"
gatewayAPIChannel: experimental
gatewayAPIVersion: v1.6.1
implementation:
  contact: ["@x"]
  organization: gatehouse
  project: gatehouse
  url: https://example.invalid
  version: v0.1.0
mode: default
profiles:
- core:
    result: success
    statistics: {Failed: 0, Passed: 37, Skipped: 0}
  extended:
    result: failure
    failedTests: [HTTPRouteRewritePath]
    statistics: {Failed: 1, Passed: 24, Skipped: 0}
    supportedFeatures: [HTTPRouteRewritePath]
    unsupportedFeatures: [HTTPRouteCORS]
  name: GATEWAY-HTTP
  summary: ""
succeededProvisionalTests: [HTTPRouteNamedRule]
`;

describe("report", () => {
  test("failed tests from go test -v output", () => {
    const out = [
      "--- FAIL: TestConformance (26.29s)",
      "    --- PASS: TestConformance/A (0.1s)",
      "    --- FAIL: TestConformance/GatewayStaticAddresses (0.22s)",
      "        --- FAIL: TestConformance/GatewayStaticAddresses/sub (0.01s)",
      "    --- FAIL: TestConformance/HTTPRouteRewritePath (1.00s)",
    ].join("\n");
    assert.deepEqual(failedTests(out), ["GatewayStaticAddresses", "HTTPRouteRewritePath"]);
  });

  test("tests running when go test timed out", () => {
    const out = [
      "--- PASS: TestConformance/A (0.1s)",
      "panic: test timed out after 30m0s",
      "\trunning tests:",
      "\t\tTestConformance/ListenerSetAllowedNamespaceNone (2m1s)",
      "\t\tTestConformance/ListenerSetAllowedNamespaceSame/sub (3m1s)",
      "",
      "goroutine 44837 [running]:",
    ].join("\n");
    assert.deepEqual(timedOutTests(out), [
      "ListenerSetAllowedNamespaceNone",
      "ListenerSetAllowedNamespaceSame",
    ]);
    assert.deepEqual(timedOutTests("ok"), []);
    assert.match(summarizeReport(REPORT, [], ["X"]), /TIMED OUT .*: X;/);
  });

  test("per-profile summary, with failures the report hides", () => {
    const text = summarizeReport(REPORT, ["GatewayStaticAddresses", "HTTPRouteRewritePath"]);
    assert.match(text, /gatehouse\/gatehouse v0\.1\.0, Gateway API v1\.6\.1 \(experimental\)/);
    assert.match(text, /GATEWAY-HTTP\n {4}core: success \(37 passed, 0 failed, 0 skipped\)/);
    assert.match(
      text,
      /extended: failure \(24 passed, 1 failed, 0 skipped\)\n {6}failed: HTTPRouteRewritePath/,
    );
    assert.match(text, /unsupported features: HTTPRouteCORS/);
    assert.match(text, /provisional tests passed: HTTPRouteNamedRule/);
    assert.match(text, /not in the report .*: GatewayStaticAddresses$/m);
    assert.doesNotMatch(text, /not in the report .*HTTPRouteRewritePath/);
  });
});
