// The Grafana dashboard (observability/grafana/gatehouse.json) queries only metrics Gatehouse
// exports, with labels they have: a renamed metric or label fails here, not on an operator's screen.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { GOLDEN_OPTIONS } from "../dataplane/haproxy/render/testutil.ts";
import { createMetrics } from "./metrics.ts";
import { createRouteMetrics } from "./route-metrics.ts";

const FILE = fileURLToPath(new URL("../../observability/grafana/gatehouse.json", import.meta.url));

interface Panel {
  title?: string;
  targets?: Array<{ expr: string }>;
  panels?: Panel[];
}

function expressions(): Array<{ panel: string; expr: string }> {
  const dashboard = JSON.parse(readFileSync(FILE, "utf8")) as {
    panels: Panel[];
    templating: { list: Array<{ definition?: string }> };
  };
  const out: Array<{ panel: string; expr: string }> = [];
  const walk = (ps: Panel[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) out.push({ panel: p.title ?? "", expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating.list)
    if (v.definition !== undefined) out.push({ panel: "variables", expr: v.definition });
  return out;
}

/** Exported metric name → its label names (histogram series included). */
async function exported(): Promise<Map<string, Set<string>>> {
  const metrics = createMetrics({ defaultMetrics: false });
  createRouteMetrics(metrics.registry, { read: () => Promise.reject(new Error("none")) }, GOLDEN_OPTIONS);
  const out = new Map<string, Set<string>>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const labels = new Set((m as unknown as { labelNames?: string[] }).labelNames ?? []);
    const h = metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] };
    for (const l of h.labelNames ?? []) labels.add(l);
    if (m.type.toString() === "histogram") {
      for (const s of ["_bucket", "_sum", "_count"]) out.set(`${m.name}${s}`, new Set([...labels, "le"]));
    } else out.set(m.name, labels);
  }
  return out;
}

test("the dashboard has panels on per-route traffic and durations", () => {
  const text = expressions()
    .map((e) => e.expr)
    .join("\n");
  for (const m of [
    "gatehouse_route_requests_total",
    "gatehouse_route_responses_total",
    "gatehouse_route_request_duration_seconds_bucket",
    "gatehouse_route_response_bytes_total",
  ])
    assert.ok(text.includes(m), m);
});

test("every metric and label the dashboard queries is exported", async () => {
  const known = await exported();
  assert.ok(known.has("gatehouse_route_requests_total") && known.has("gatehouse_reloads_total"));
  for (const { panel, expr } of expressions()) {
    const names = [...expr.matchAll(/\b(gatehouse_[a-z_]+)(\{[^}]*\})?/g)];
    assert.ok(names.length > 0, `${panel}: queries no Gatehouse metric: ${expr}`);
    const labelsOf = new Set<string>();
    for (const [, name = "", selector] of names) {
      const labels = known.get(name);
      assert.ok(labels !== undefined, `${panel}: ${name} is not exported`);
      for (const l of labels) labelsOf.add(l);
      for (const [, label = ""] of (selector ?? "").matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g))
        assert.ok(labels.has(label), `${panel}: ${name} has no label ${label}`);
    }
    for (const [, list = ""] of expr.matchAll(/\bby \(([^)]*)\)/g))
      for (const label of list.split(",").map((s) => s.trim()))
        assert.ok(labelsOf.has(label), `${panel}: no metric of "${expr}" has the label ${label}`);
  }
});
