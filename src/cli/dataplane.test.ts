import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../errors.ts";
import { parseDataplaneArgs } from "./dataplane.ts";

const REQUIRED = [
  "--controller",
  "gatehouse.gatehouse-system.svc:8443",
  "--gateway",
  "team-a/web",
  "--tls-dir",
  "/tls",
];

test("dataplane flags: defaults", () => {
  const a = parseDataplaneArgs(REQUIRED);
  assert.deepEqual(a.gateway, { namespace: "team-a", name: "web" });
  assert.equal(a.controller, "gatehouse.gatehouse-system.svc:8443");
  assert.deepEqual(a.admin, { host: "0.0.0.0", port: 9901 });
  assert.equal(a.stateDir, "/var/run/gatehouse");
  assert.equal(a.shutdownDrainMs, 5000);
  assert.equal(a.threads, undefined);
  assert.deepEqual(a.timeouts, {});
});

test("dataplane flags: tuning and drain", () => {
  const a = parseDataplaneArgs([
    ...REQUIRED,
    "--threads",
    "4",
    "--maxconn",
    "20000",
    "--timeout-connect",
    "2s",
    "--timeout-client",
    "500ms",
    "--timeout-server",
    "1m",
    "--shutdown-drain",
    "10s",
    "--state-dir",
    "/tmp/x",
    "--spare-backends",
    "0",
  ]);
  assert.equal(a.threads, 4);
  assert.equal(a.maxconn, 20000);
  assert.deepEqual(a.timeouts, { connectMs: 2000, clientMs: 500, serverMs: 60_000 });
  assert.equal(a.shutdownDrainMs, 10_000);
  assert.equal(a.stateDir, "/tmp/x");
  assert.equal(a.spareBackends, 0);
});

test("dataplane flags: required and bad values are usage errors", () => {
  assert.throws(() => parseDataplaneArgs(REQUIRED.slice(2)), UsageError);
  assert.throws(
    () => parseDataplaneArgs([...REQUIRED.slice(0, 2), "--gateway", "web", "--tls-dir", "/t"]),
    UsageError,
  );
  assert.throws(() => parseDataplaneArgs(REQUIRED.slice(0, 4)), UsageError);
  assert.throws(() => parseDataplaneArgs([...REQUIRED, "--threads", "0"]), UsageError);
  assert.throws(() => parseDataplaneArgs([...REQUIRED, "--timeout-client", "soon"]), UsageError);
  assert.throws(() => parseDataplaneArgs([...REQUIRED, "--controller-name", "x"]));
});

test("dataplane flags: access log and per-route metrics", () => {
  const a = parseDataplaneArgs(REQUIRED);
  assert.deepEqual(a.accessLog, { format: { kind: "json" }, output: { kind: "stdout" } });
  assert.equal(a.routeMetrics, true);
  const b = parseDataplaneArgs([
    ...REQUIRED,
    "--access-log-format",
    "custom:{status} {route}",
    "--access-log-output",
    "syslog:10.0.0.5:514",
    "--route-metrics",
    "off",
  ]);
  assert.deepEqual(b.accessLog, {
    format: { kind: "custom", template: "{status} {route}" },
    output: { kind: "syslog", host: "10.0.0.5", port: 514 },
  });
  assert.equal(b.routeMetrics, false);
  assert.throws(
    () => parseDataplaneArgs([...REQUIRED, "--access-log-format", "custom:{a}\n{b}"]),
    UsageError,
  );
  assert.throws(
    () => parseDataplaneArgs([...REQUIRED, "--access-log-format", "custom:{status}\n"]),
    UsageError,
  );
});
