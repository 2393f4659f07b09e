// gatehouse_route_propagation_seconds: timed from the provider's first change, not from the serve
// loop receiving the update.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { AdminStateStore } from "../admin/state.ts";
import type { ApplyOutcome } from "../dataplane/haproxy/apply/applier.ts";
import { silentLogger } from "../observability/logger.ts";
import { createMetrics } from "../observability/metrics.ts";
import type { ProviderUpdate } from "../provider/types.ts";
import { parseDocuments } from "../resources/load.ts";
import { buildSnapshot } from "../resources/snapshot.ts";
import { ServeLoop } from "./loop.ts";

const example = ["gateway.yaml", "routes.yaml"]
  .map((f) => readFileSync(new URL(`../../examples/basic/${f}`, import.meta.url), "utf8"))
  .join("\n---\n");
const { snapshot } = buildSnapshot(parseDocuments(example, "example.yaml").objects);

const ok: ApplyOutcome = {
  method: "reload",
  detail: "test",
  runtimeUpdates: { map: 0, server: 0, certificate: 0 },
};

function harness() {
  const metrics = createMetrics({ defaultMetrics: false });
  let hold: Promise<void> | undefined;
  const loop = new ServeLoop({
    controllerName: "gatehouse.dev/gateway-controller",
    renderOptions: {
      stateDir: "/tmp/gh-loop-test",
      runtimeSocket: "/tmp/gh-loop-test/s.sock",
      serverSlots: 4,
      hardStopAfter: "1s",
    },
    dataplane: { apply: async () => (await hold, ok) },
    store: new AdminStateStore(() => new Date("2026-01-01T00:00:00Z")),
    metrics,
    logger: silentLogger(),
    hostAddresses: [],
    now: () => new Date("2026-01-01T00:00:00Z"),
  });
  /** Observations so far: count and sum in seconds. */
  const observed = async () => {
    const { values } = await metrics.routePropagation.get();
    const value = (suffix: string) =>
      values.find((v) => v.metricName === `gatehouse_route_propagation_seconds_${suffix}`)?.value ?? 0;
    return { count: value("count"), sum: value("sum") };
  };
  const holdApplies = () => {
    let release!: () => void;
    hold = new Promise((resolve) => (release = resolve));
    return () => {
      hold = undefined;
      release();
    };
  };
  return { loop, observed, holdApplies };
}

const update = (generation: number, changedAt?: number): ProviderUpdate => ({
  snapshot,
  errors: [],
  warnings: [],
  generation,
  ...(changedAt === undefined ? {} : { changedAt }),
});

test("propagation is timed from the provider's first change when it gives one", async () => {
  const { loop, observed } = harness();
  loop.submit(update(1, performance.now() - 400));
  await loop.idle();
  const first = await observed();
  assert.equal(first.count, 1);
  assert.ok(first.sum >= 0.4, `${first.sum} s includes the 400 ms before the loop got the update`);

  // Without it (the Kubernetes provider), from when the loop received the update.
  loop.submit(update(2));
  await loop.idle();
  const second = await observed();
  assert.equal(second.count, 2);
  assert.ok(second.sum - first.sum < 0.4, `${second.sum - first.sum} s`);
});

test("an update replacing one not yet processed is timed from the earlier change", async () => {
  const { loop, observed, holdApplies } = harness();
  const release = holdApplies();
  loop.submit(update(1));
  // While the first is applied, two more arrive; the second replaces the first of them.
  loop.submit(update(2, performance.now() - 600));
  loop.submit(update(3, performance.now() - 100));
  release();
  await loop.idle();
  const { count, sum } = await observed();
  assert.equal(count, 2, "generations 1 and 3");
  assert.ok(sum >= 0.6, `${sum} s: generation 3 also applied generation 2's change`);
});
