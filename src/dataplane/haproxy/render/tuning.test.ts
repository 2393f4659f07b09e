// Optional HAProxy tuning (RenderOptions threads, maxconn, timeouts): rendered into global and the
// defaults sections only when given, checked by the real `haproxy -c`, bad values refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkRenderable, render } from "./index.ts";
import { gatewayIR, GOLDEN_OPTIONS, haproxyAvailable, haproxyCheck } from "./testutil.ts";

const ir = gatewayIR([], []);
const TUNED = {
  threads: 2,
  maxconn: 5000,
  timeouts: { connectMs: 2500, clientMs: 30_000, serverMs: 120_000 },
};

function section(config: string, header: string): string[] {
  const lines = config.split("\n");
  const start = lines.indexOf(header);
  assert.ok(start >= 0, `no section ${header}`);
  const end = lines.findIndex((l, i) => i > start && l !== "" && !l.startsWith(" "));
  return lines.slice(start + 1, end < 0 ? undefined : end).map((l) => l.trim());
}

test("tuning: absent options render nothing new", () => {
  const { config } = render(ir, GOLDEN_OPTIONS);
  assert.ok(!/nbthread|maxconn/.test(config));
  assert.ok(section(config, "defaults http").includes("timeout connect 5s"));
  assert.ok(section(config, "defaults http").includes("timeout client 60s"));
  assert.ok(section(config, "defaults tcp").includes("timeout client 1h"));
});

test("tuning: threads and maxconn in global, timeouts in the defaults", () => {
  const { config } = render(ir, { ...GOLDEN_OPTIONS, ...TUNED });
  const global = section(config, "global");
  assert.ok(global.includes("nbthread 2"));
  assert.ok(global.includes("maxconn 5000"));
  const http = section(config, "defaults http");
  assert.ok(http.includes("timeout connect 2500ms"));
  assert.ok(http.includes("timeout client 30s"));
  assert.ok(http.includes("timeout server 120s"));
  const tcp = section(config, "defaults tcp");
  assert.ok(tcp.includes("timeout connect 2500ms"));
  assert.ok(tcp.includes("timeout client 1h"), "TCP keeps its long client timeout");
});

test("tuning: out-of-range values are render issues", () => {
  const issues = checkRenderable(ir, {
    ...GOLDEN_OPTIONS,
    threads: 0,
    maxconn: 1.5,
    timeouts: { connectMs: -1, clientMs: 2 ** 31 },
  });
  assert.deepEqual(issues.map((i) => i.path).sort(), [
    "options.maxconn",
    "options.threads",
    "options.timeouts.clientMs",
    "options.timeouts.connectMs",
  ]);
});

test("tuning: haproxy -c accepts it", { skip: !haproxyAvailable() && "haproxy is not installed" }, () => {
  const checked = haproxyCheck(ir, TUNED);
  assert.ok(checked.ok, checked.output);
});
