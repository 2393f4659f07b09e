// 1,000 ListenerSets: what translating and rendering a Gateway with N ListenerSets (one HTTP
// listener each, all on the Gateway's port with their own hostname, one HTTPRoute naming each set)
// costs, against the reference measured in the same run: the same N hostnames served as N HTTPRoutes
// on the Gateway's one listener (no ListenerSets). Also checks the rendered configuration with
// `haproxy -c` and times that. In-process, no files (the input is built as objects).
//
//   node bench/listenersets.ts [--sets 1000] [--samples 5]
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { haproxyValidators } from "../src/dataplane/haproxy/capabilities.ts";
import { render } from "../src/dataplane/haproxy/render/index.ts";
import type { IR } from "../src/ir/types.ts";
import type { KubeObject } from "../src/resources/meta.ts";
import { buildSnapshot } from "../src/resources/snapshot.ts";
import { translate } from "../src/translate/index.ts";
import { CONTROLLER } from "./lib/gatehouse.ts";

const { values } = parseArgs({
  options: { sets: { type: "string", default: "1000" }, samples: { type: "string", default: "5" } },
});
const SETS = Number(values.sets);
const SAMPLES = Number(values.samples);
const GROUP = "gateway.networking.k8s.io/v1";
const meta = (name: string, i: number) => ({
  name,
  namespace: "bench",
  generation: 1,
  creationTimestamp: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
});

function objects(withSets: boolean): KubeObject[] {
  const out: unknown[] = [
    {
      apiVersion: GROUP,
      kind: "GatewayClass",
      metadata: { name: "gatehouse" },
      spec: { controllerName: CONTROLLER },
    },
    {
      apiVersion: GROUP,
      kind: "Gateway",
      metadata: meta("gw", 0),
      spec: {
        gatewayClassName: "gatehouse",
        allowedListeners: { namespaces: { from: "Same" } },
        listeners: [{ name: "http", port: 8080, protocol: "HTTP" }],
      },
    },
  ];
  for (let i = 0; i < SETS; i++) {
    const host = `ls${i}.bench.test`;
    out.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: `svc${i}`,
        namespace: "bench",
        annotations: { "gatehouse.dev/endpoints": "127.0.0.1:9" },
      },
      spec: { ports: [{ port: 80 }] },
    });
    if (withSets) {
      out.push({
        apiVersion: GROUP,
        kind: "ListenerSet",
        metadata: meta(`ls${i}`, i),
        spec: {
          parentRef: { name: "gw" },
          listeners: [{ name: "http", port: 8080, protocol: "HTTP", hostname: host }],
        },
      });
    }
    out.push({
      apiVersion: GROUP,
      kind: "HTTPRoute",
      metadata: meta(`r${i}`, i),
      spec: {
        parentRefs: [withSets ? { kind: "ListenerSet", name: `ls${i}` } : { name: "gw" }],
        ...(withSets ? {} : { hostnames: [host] }),
        rules: [{ backendRefs: [{ name: `svc${i}`, port: 80 }] }],
      },
    });
  }
  return out as KubeObject[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const RENDER = {
  stateDir: "/tmp/gh-bench-ls",
  runtimeSocket: "/tmp/gh-bench-ls/a.sock",
  serverSlots: 4,
  hardStopAfter: "10s",
};

function measure(withSets: boolean): { translateMs: number; renderMs: number; ir: IR } {
  const { snapshot } = buildSnapshot(
    objects(withSets).map((object, index) => ({ object, source: { index } })),
  );
  const t: number[] = [];
  const r: number[] = [];
  let ir: IR | undefined;
  for (let i = 0; i < SAMPLES; i++) {
    let start = performance.now();
    ir = translate(snapshot, {
      controllerName: CONTROLLER,
      now: "2026-01-01T00:00:00Z",
      validators: haproxyValidators,
    }).ir;
    t.push(performance.now() - start);
    start = performance.now();
    render(ir, RENDER);
    r.push(performance.now() - start);
  }
  if (ir === undefined) throw new Error("no samples");
  return { translateMs: median(t), renderMs: median(r), ir };
}

function haproxyCheck(ir: IR): { ok: boolean; ms: number } {
  const dir = mkdtempSync(join(tmpdir(), "gh-bench-ls-"));
  try {
    const rendered = render(ir, { ...RENDER, stateDir: dir, runtimeSocket: join(dir, "a.sock") });
    for (const [rel, content] of Object.entries(rendered.files)) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), content);
    }
    mkdirSync(join(dir, "sock"), { recursive: true });
    writeFileSync(join(dir, "haproxy.cfg"), rendered.config);
    const start = performance.now();
    const result = spawnSync("haproxy", ["-c", "-f", join(dir, "haproxy.cfg")], { encoding: "utf8" });
    return { ok: result.status === 0, ms: performance.now() - start };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sets = measure(true);
const routes = measure(false);
const listeners = sets.ir.gateways[0]?.listeners.length ?? 0;
const check = haproxyCheck(sets.ir);
const ratio = (a: number, b: number) => (b === 0 ? "—" : `${(a / b).toFixed(2)}×`);
process.stdout.write(
  [
    `${SETS} ListenerSets (one HTTP listener each, one route each) vs the same ${SETS} hostnames as routes on one listener; median of ${SAMPLES}:`,
    "",
    "| Measure | ListenerSets | Routes only (reference) | Ratio |",
    "| --- | --- | --- | --- |",
    `| translate | ${sets.translateMs.toFixed(1)} ms | ${routes.translateMs.toFixed(1)} ms | ${ratio(sets.translateMs, routes.translateMs)} |`,
    `| render | ${sets.renderMs.toFixed(1)} ms | ${routes.renderMs.toFixed(1)} ms | ${ratio(sets.renderMs, routes.renderMs)} |`,
    `| listeners in the IR | ${listeners} | ${routes.ir.gateways[0]?.listeners.length ?? 0} | |`,
    `| haproxy -c of the ListenerSet configuration | ${check.ok ? "valid" : "INVALID"}, ${check.ms.toFixed(0)} ms | | |`,
    "",
  ].join("\n"),
);
if (!check.ok) process.exitCode = 1;
