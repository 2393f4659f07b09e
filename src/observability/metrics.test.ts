import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InputError } from "../errors.ts";
import { createMetrics, recordConfigErrors } from "./metrics.ts";

describe("createMetrics", () => {
  test("exposes every Gatehouse metric and the process metrics on its own registry", async () => {
    const metrics = createMetrics();
    metrics.translations.inc();
    metrics.translationDuration.observe(0.004);
    metrics.reloads.inc({ result: "success" });
    metrics.runtimeUpdates.inc({ type: "server" }, 3);
    metrics.lastAppliedTimestamp.set(1_700_000_000);
    metrics.routePropagation.observe(0.2);
    const text = await metrics.registry.metrics();
    for (const name of [
      "gatehouse_translations_total 1",
      'gatehouse_translation_duration_seconds_bucket{le="0.005"} 1',
      "gatehouse_translation_duration_seconds_count 1",
      "gatehouse_config_errors_total",
      'gatehouse_reloads_total{result="success"} 1',
      'gatehouse_runtime_updates_total{type="server"} 3',
      "gatehouse_last_applied_timestamp_seconds 1700000000",
      "gatehouse_route_propagation_seconds_count 1",
      "process_resident_memory_bytes",
    ]) {
      assert.ok(text.includes(name), `missing ${name}`);
    }
  });

  test("two instances do not share state", async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.translations.inc();
    assert.match(await b.registry.metrics(), /gatehouse_translations_total 0/);
    assert.doesNotMatch(await b.registry.metrics(), /process_resident_memory_bytes/);
  });

  test("recordConfigErrors counts by kind and tracks the current set", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const route = new InputError("bad", { file: "a.yaml", kind: "HTTPRoute", name: "web" });
    const syntax = new InputError("bad YAML", { file: "b.yaml", line: 1 });
    recordConfigErrors(metrics, [route, route, syntax]);
    recordConfigErrors(metrics, [syntax]);
    const text = await metrics.registry.metrics();
    assert.match(text, /gatehouse_config_errors_total\{kind="HTTPRoute"\} 2/);
    assert.match(text, /gatehouse_config_errors_total\{kind="none"\} 2/);
    assert.match(text, /gatehouse_config_errors\{kind="HTTPRoute"\} 0/);
    assert.match(text, /gatehouse_config_errors\{kind="none"\} 1/);
  });
});
