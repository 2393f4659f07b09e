// 2. Route propagation: with N HTTPRoutes present (one file each: an HTTPRoute with its own hostname
// and path, and its own static-endpoint Service), the time from writing a file that adds one more
// route to the first successful response on that route (polled every 2 ms on fresh connections).
// Two kinds of change are measured:
//   - "route+service": the new route comes with its own new Service (as every generated route does),
//     so HAProxy gets a new backend;
//   - "route-only": the new route points at an existing Service (only map entries change).
// How each change was applied comes from /metrics (gatehouse_reloads_total,
// gatehouse_runtime_updates_total) read before and after.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMain, runStandalone } from "./lib/cli.ts";
import type { CommonOptions } from "./lib/cli.ts";
import {
  applyCounters,
  counterDelta,
  gatewayYaml,
  metricSum,
  numberedRoute,
  routeWithServiceYaml,
  routeYaml,
  startGatehouse,
  writeAtomic,
} from "./lib/gatehouse.ts";
import type { Gatehouse } from "./lib/gatehouse.ts";
import { freePort, LOOPBACK, tryGet } from "./lib/net.ts";
import { removeTempDir, sleep, tempDir } from "./lib/proc.ts";
import { BACKEND_BODY, startBackend } from "./lib/servers.ts";
import { max, median, percentile, round } from "./lib/stats.ts";

export const TARGET_MEDIAN_MS = 100;
const POLL_MS = 2;
const SAMPLE_TIMEOUT_MS = 60_000;

type ChangeKind = "route+service" | "route-only";

export interface PropagationSample {
  kind: ChangeKind;
  ms: number;
  /** reload | runtime | reload+runtime | none (how the change reached HAProxy, from /metrics). */
  method: string;
  /** Gatehouse's own measure for this change (gatehouse_route_propagation_seconds: from the first change the file provider saw to applied), ms. */
  internalMs: number;
  polls: number;
}

export interface PropagationSize {
  routes: number;
  startupS: number;
  kinds: Array<{
    kind: ChangeKind;
    samples: number;
    medianMs: number;
    p99Ms: number;
    maxMs: number;
    medianInternalMs: number;
    /** Median of (total − internal): the file-system notification, HAProxy taking the change, the client's polling. */
    medianOutsideMs: number;
    methods: Record<string, number>;
    timeouts: number;
  }>;
  samples: PropagationSample[];
}

export interface PropagationResult {
  setup: { pollMs: number; sizes: number[]; samplesPerKind: Record<string, number>; note: string };
  sizes: PropagationSize[];
  check: { target: string; medianMs: number; thresholdMs: number; met: boolean; routes: number };
}

/** Polls until the route answers 200 with the backend's body; returns elapsed ms and poll count. */
async function firstSuccess(
  port: number,
  host: string,
  path: string,
  t0: number,
): Promise<{ ms: number; polls: number }> {
  let polls = 0;
  for (;;) {
    const started = performance.now();
    polls++;
    const r = await tryGet(port, path, { host, timeoutMs: 2000 });
    if (r.status === 200 && r.body === BACKEND_BODY) return { ms: performance.now() - t0, polls };
    if (performance.now() - t0 > SAMPLE_TIMEOUT_MS) return { ms: Number.NaN, polls };
    const wait = POLL_MS - (performance.now() - started);
    if (wait > 0) await sleep(wait);
  }
}

function histogram(m: Map<string, number>): { sum: number; count: number } {
  return {
    sum: metricSum(m, "gatehouse_route_propagation_seconds_sum"),
    count: metricSum(m, "gatehouse_route_propagation_seconds_count"),
  };
}

async function measureOne(
  g: Gatehouse,
  gatewayPort: number,
  dir: string,
  kind: ChangeKind,
  index: number,
  backend: string,
): Promise<PropagationSample> {
  await g.settled();
  const before = await g.metrics();
  const r = numberedRoute(kind === "route-only" ? "new-ro-" : "new-rs-", index);
  const content =
    kind === "route-only" ? routeYaml({ ...r, service: "svc-shared" }) : routeWithServiceYaml(r, backend);
  const t0 = performance.now();
  writeAtomic(join(dir, `${r.name}.yaml`), content);
  const { ms, polls } = await firstSuccess(gatewayPort, r.hostname, `${r.path}/x`, t0);
  await g.settled();
  let after = await g.metrics();
  // The counters are updated right after the apply; give them a moment if they have not moved yet.
  for (let i = 0; i < 50 && histogram(after).count === histogram(before).count; i++) {
    await sleep(20);
    after = await g.metrics();
  }
  const d = counterDelta(applyCounters(before), applyCounters(after));
  const method =
    [d.reloads > 0 ? "reload" : "", d.runtime > 0 ? "runtime" : ""].filter((s) => s !== "").join("+") ||
    "none";
  const hb = histogram(before);
  const ha = histogram(after);
  const internalMs = ha.count > hb.count ? ((ha.sum - hb.sum) / (ha.count - hb.count)) * 1000 : Number.NaN;
  return { kind, ms: round(ms, 1), method, internalMs: round(internalMs, 1), polls };
}

export async function runPropagation(
  o: CommonOptions & { sizes?: number[]; samples?: number },
): Promise<PropagationResult> {
  const sizes = o.sizes ?? (o.quick ? [10, 200] : [10, 1000, 5000]);
  const samplesFor = (n: number) => o.samples ?? (o.quick ? 4 : n >= 5000 ? 10 : 20);
  const backendPort = await freePort();
  await startBackend(backendPort);
  const backend = `${LOOPBACK}:${backendPort}`;
  const results: PropagationSize[] = [];
  const samplesPerKind: Record<string, number> = {};
  for (const n of sizes) {
    const dir = tempDir(`routes-${n}`);
    const gatewayPort = await freePort();
    writeFileSync(join(dir, "gateway.yaml"), gatewayYaml(gatewayPort));
    writeFileSync(
      join(dir, "shared.yaml"),
      routeWithServiceYaml({ ...numberedRoute("shared-", 0), service: "svc-shared" }, backend),
    );
    for (let i = 0; i < n - 1; i++)
      writeFileSync(join(dir, `route-${i}.yaml`), routeWithServiceYaml(numberedRoute("r", i), backend));
    o.log(`propagation: ${n} routes, starting gatehouse`);
    const t0 = performance.now();
    const g = await startGatehouse({ configDir: dir, label: `gatehouse-${n}`, readyTimeoutMs: 600_000 });
    const startupS = round((performance.now() - t0) / 1000, 2);
    o.log(`propagation: ${n} routes ready after ${startupS} s`);
    const probe = numberedRoute("r", Math.max(0, n - 2));
    const check = await tryGet(gatewayPort, `${probe.path}/`, { host: probe.hostname });
    if (n > 1 && check.status !== 200)
      throw new Error(`route ${probe.name} answers ${check.status}: ${check.body.slice(0, 200)}`);

    const samples: PropagationSample[] = [];
    const count = samplesFor(n);
    samplesPerKind[String(n)] = count;
    for (let i = 0; i < count; i++) {
      for (const kind of ["route+service", "route-only"] as const) {
        const s = await measureOne(g, gatewayPort, dir, kind, i, backend);
        samples.push(s);
        o.log(
          `propagation: ${n} routes, ${kind} #${i + 1}: ${s.ms} ms (${s.method}, internal ${s.internalMs} ms, ${s.polls} polls)`,
        );
        await sleep(100);
      }
    }
    await g.stop();
    removeTempDir(dir);
    const kinds = (["route+service", "route-only"] as const).map((kind) => {
      const list = samples.filter((s) => s.kind === kind);
      const ok = list.filter((s) => Number.isFinite(s.ms)).map((s) => s.ms);
      const methods: Record<string, number> = {};
      for (const s of list) methods[s.method] = (methods[s.method] ?? 0) + 1;
      return {
        kind,
        samples: list.length,
        medianMs: round(median(ok), 1),
        p99Ms: round(percentile(ok, 99), 1),
        maxMs: round(max(ok), 1),
        medianInternalMs: round(median(list.map((s) => s.internalMs).filter(Number.isFinite)), 1),
        medianOutsideMs: round(median(list.map((s) => s.ms - s.internalMs).filter(Number.isFinite)), 1),
        methods,
        timeouts: list.length - ok.length,
      };
    });
    results.push({ routes: n, startupS, kinds, samples });
  }
  const at = results.find((r) => r.routes === 1000) ?? results.at(-1);
  const spec = at?.kinds.find((k) => k.kind === "route+service");
  const medianMs = spec?.medianMs ?? Number.NaN;
  return {
    setup: {
      pollMs: POLL_MS,
      sizes,
      samplesPerKind,
      note: "One file per route (HTTPRoute + its Service). Time = atomic rename of the new file → first 200 with the backend's body, polled every 2 ms on fresh connections; includes the file provider's quiet window (5 ms).",
    },
    sizes: results,
    check: {
      target: `median propagation (route+service) at ${at?.routes ?? "?"} routes`,
      medianMs,
      thresholdMs: TARGET_MEDIAN_MS,
      met: medianMs <= TARGET_MEDIAN_MS,
      routes: at?.routes ?? 0,
    },
  };
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "—");

export function propagationMarkdown(r: PropagationResult): string {
  const lines = [
    `### Route propagation`,
    ``,
    `${r.setup.note} Samples per kind and size: ${Object.entries(r.setup.samplesPerKind)
      .map(([n, c]) => `${c} at ${n}`)
      .join(", ")}.`,
    ``,
    `| Routes | Change | median ms | p99 ms | max ms | of which Gatehouse (change seen → applied), median ms | rest (notification, HAProxy, polling), median ms | applied via | startup s |`,
    `| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |`,
  ];
  for (const s of r.sizes) {
    for (const k of s.kinds) {
      const methods = Object.entries(k.methods)
        .map(([m, c]) => `${m} ×${c}`)
        .join(", ");
      lines.push(
        `| ${s.routes} | ${k.kind} | ${fmt(k.medianMs, 0)} | ${fmt(k.p99Ms, 0)} | ${fmt(k.maxMs, 0)} | ${fmt(k.medianInternalMs, 0)} | ${fmt(k.medianOutsideMs, 0)} | ${methods}${k.timeouts > 0 ? `, ${k.timeouts} timed out` : ""} | ${fmt(s.startupS, 1)} |`,
      );
    }
  }
  lines.push(
    ``,
    `Target median ≤ ${r.check.thresholdMs} ms at ${r.check.routes} routes (route+service): ${fmt(r.check.medianMs, 0)} ms — ${r.check.met ? "met" : "**not met**"}.`,
  );
  return lines.join("\n");
}

if (isMain(import.meta.url)) await runStandalone(runPropagation, propagationMarkdown);
