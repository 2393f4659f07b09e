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
import { pino } from "pino";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";
import { translate } from "../translate/index.ts";

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

test("successive updates are translated incrementally into what a full translation gives", async () => {
  const irs: string[] = [];
  const store = new AdminStateStore(() => new Date("2026-01-01T00:00:00Z"));
  const options = {
    controllerName: "gatehouse.dev/gateway-controller",
    now: "2026-01-01T00:00:00Z",
    validators: haproxyValidators,
  };
  const lines: Array<Record<string, unknown>> = [];
  const loop = new ServeLoop({
    controllerName: options.controllerName,
    renderOptions: {
      stateDir: "/tmp/gh-loop-test",
      runtimeSocket: "/tmp/s.sock",
      serverSlots: 4,
      hardStopAfter: "1s",
    },
    dataplane: {
      apply: (ir) => {
        irs.push(JSON.stringify(ir));
        return Promise.resolve(ok);
      },
    },
    store,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: pino(
      { level: "debug" },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    ),
    hostAddresses: [],
    now: () => new Date("2026-01-01T00:00:00Z"),
  });
  const base = parseDocuments(example, "example.yaml").objects;
  const route = (name: string) => ({
    object: {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name, namespace: "default" },
      spec: {
        parentRefs: [{ name: base.find((o) => o.object.kind === "Gateway")?.object.metadata.name ?? "" }],
        hostnames: [`${name}.example.test`],
        rules: [{ backendRefs: [{ name: "missing", port: 80 }] }],
      },
    },
    source: {},
  });
  const inputs = [base, [...base, route("extra")], [...base, route("extra"), route("more")], base.slice(1)];
  for (const [i, objects] of inputs.entries()) {
    const { snapshot } = buildSnapshot(objects);
    loop.submit({ snapshot, errors: [], warnings: [], generation: i + 1 });
    await loop.idle();
    assert.equal(irs.at(-1), JSON.stringify(translate(snapshot, options).ir), `update ${i + 1}`);
  }
  const modes = lines.filter((l) => l["mode"] !== undefined).map((l) => l["mode"]);
  assert.deepEqual(modes.slice(0, 3), ["full", "incremental", "incremental"]);
});
