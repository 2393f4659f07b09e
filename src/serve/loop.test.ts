import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { AdminStateStore } from "../admin/state.ts";
import { ApplyError, type ApplyOutcome } from "../dataplane/haproxy/apply/applier.ts";
import { silentLogger } from "../observability/logger.ts";
import { createMetrics } from "../observability/metrics.ts";
import { parseDocuments } from "../resources/load.ts";
import { buildSnapshot } from "../resources/snapshot.ts";
import { ServeLoop } from "./loop.ts";

const example = ["gateway.yaml", "routes.yaml"]
  .map((f) => readFileSync(new URL(`../../examples/basic/${f}`, import.meta.url), "utf8"))
  .join("\n---\n");

function update(generation: number) {
  const { snapshot } = buildSnapshot(parseDocuments(example, "example.yaml").objects);
  return { snapshot, errors: [], warnings: [], generation };
}

const ok: ApplyOutcome = {
  method: "reload",
  detail: "test",
  runtimeUpdates: { map: 0, server: 0, certificate: 0 },
};

function harness(results: Array<"ok" | "fail" | "reject">) {
  const timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  const applied: number[] = [];
  const store = new AdminStateStore(() => new Date("2026-01-01T00:00:00Z"));
  const metrics = createMetrics({ defaultMetrics: false });
  const loop = new ServeLoop({
    controllerName: "gatehouse.dev/gateway-controller",
    renderOptions: {
      stateDir: "/tmp/gh-loop-test",
      runtimeSocket: "/tmp/gh-loop-test/s.sock",
      serverSlots: 4,
      hardStopAfter: "1s",
    },
    dataplane: {
      apply: () => {
        const r = results.shift() ?? "ok";
        applied.push(applied.length);
        if (r === "fail") return Promise.reject(new ApplyError("cannot listen on 127.0.0.1:8080: in use"));
        if (r === "reject")
          return Promise.reject(
            new ApplyError("HAProxy rejected the new configuration", { validationOutput: "[ALERT] bad" }),
          );
        return Promise.resolve(ok);
      },
    },
    store,
    metrics,
    logger: silentLogger(),
    hostAddresses: [],
    now: () => new Date("2026-01-01T00:00:00Z"),
    retry: { initialMs: 100, maxMs: 400 },
    setTimer: (fn, ms) => {
      const t = { fn, ms, cancelled: false };
      timers.push(t);
      return () => (t.cancelled = true);
    },
  });
  return { loop, timers, applied, store, metrics };
}

test("a failed apply is retried with growing delays until it succeeds", async () => {
  const { loop, timers, applied, store } = harness(["fail", "fail", "ok"]);
  loop.submit(update(1));
  await loop.idle();
  assert.equal(store.ready().ready, false);
  assert.deepEqual(
    timers.map((t) => t.ms),
    [100],
  );
  timers[0]?.fn();
  await loop.idle();
  assert.deepEqual(
    timers.map((t) => t.ms),
    [100, 200],
  );
  timers[1]?.fn();
  await loop.idle();
  assert.equal(applied.length, 3);
  assert.equal(timers.length, 2, "no retry after success");
  assert.equal(store.ready().ready, true);
});

test("a newer update cancels the pending retry; a rejected configuration is not retried", async () => {
  const { loop, timers, applied } = harness(["fail", "reject"]);
  loop.submit(update(1));
  await loop.idle();
  assert.equal(timers.length, 1);
  loop.submit(update(2));
  await loop.idle();
  assert.equal(timers[0]?.cancelled, true);
  assert.equal(applied.length, 2);
  assert.equal(timers.length, 1, "HAProxy rejecting the config is final for that input");
});

test("refresh processes the latest update again, without counting it as a propagation", async () => {
  const { loop, applied, metrics } = harness([]);
  loop.refresh(); // nothing submitted yet: nothing to do
  await loop.idle();
  assert.equal(applied.length, 0);
  loop.submit(update(7));
  await loop.idle();
  loop.refresh();
  await loop.idle();
  assert.equal(applied.length, 2, "the same update applied again");
  const count = (await metrics.routePropagation.get()).values.find((v) => v.metricName?.endsWith("_count"));
  assert.equal(count?.value, 1, "only the submitted update counts as a propagation");
});
