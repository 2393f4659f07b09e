// 4. Control-plane memory: RSS of the Gatehouse process (VmRSS, and /metrics
// process_resident_memory_bytes) with a small config, at 5,000 routes, and after deleting them, each
// read after a forced full GC (the process runs with --expose-gc and a preload that collects on
// SIGUSR2). Two add/delete cycles show whether memory keeps growing; HAProxy's RSS is recorded too.
// Cycle 1 writes (and later deletes) the route files one by one in the watched directory; cycle 2
// moves them in as one directory (renamed into the watched tree) and removes that directory. The time
// each took to be applied is recorded: with Node's recursive fs.watch on Linux the first is slow (see
// bench/README.md).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMain, runStandalone } from "./lib/cli.ts";
import type { CommonOptions } from "./lib/cli.ts";
import { descendants, statusBytes } from "./lib/cpu.ts";
import {
  gatewayYaml,
  metricSum,
  numberedRoute,
  routeWithServiceYaml,
  startGatehouse,
} from "./lib/gatehouse.ts";
import type { Gatehouse } from "./lib/gatehouse.ts";
import { freePort, LOOPBACK, tryGet, waitFor } from "./lib/net.ts";
import { sleep, tempDir } from "./lib/proc.ts";
import { startBackend } from "./lib/servers.ts";

export interface MemoryPoint {
  label: string;
  routes: number;
  rssMiB: number;
  /** process_resident_memory_bytes from /metrics. */
  metricsRssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  /** V8 external memory (buffers, WebAssembly memory of the CEL/RE2 engines). */
  externalMiB: number;
  /** Anonymous (private) and file-backed (binary, shared libraries) parts of RSS. */
  rssAnonMiB: number;
  rssFileMiB: number;
  /** Seconds from the first write of the change to the data plane answering accordingly. */
  applyS?: number;
  /** Peak RSS so far (VmHWM). */
  peakRssMiB: number;
  /** RSS of every HAProxy process (master, current and draining workers). */
  haproxyRssMiB: number;
  haproxyProcesses: number;
}

export interface MemoryResult {
  setup: { routes: number; cycles: number; gc: string };
  points: MemoryPoint[];
  summary: {
    baselineMiB: number;
    atRoutesMiB: number;
    afterDeleteMiB: number;
    perRouteKiB: number;
    /** After-delete RSS of the last cycle minus the first (growth across cycles). */
    cycleGrowthMiB: number;
  };
}

const MiB = 1024 * 1024;
const r1 = (n: number) => Math.round(n * 10) / 10;

async function measure(g: Gatehouse, label: string, routes: number): Promise<MemoryPoint> {
  const log = () => readFileSync(g.proc.logFile, "utf8").split("gatehouse-bench: gc done").length;
  const gcs = log();
  process.kill(g.proc.pid, "SIGUSR2");
  await waitFor("the forced GC", () => (log() > gcs ? true : undefined), {
    timeoutMs: 10_000,
    intervalMs: 20,
  });
  await sleep(500);
  const m = await g.metrics();
  const haproxy = descendants(g.proc.pid).filter((p) => p.comm === "haproxy");
  return {
    label,
    routes,
    rssMiB: r1(statusBytes(g.proc.pid) / MiB),
    metricsRssMiB: r1(metricSum(m, "process_resident_memory_bytes") / MiB),
    heapUsedMiB: r1(metricSum(m, "nodejs_heap_size_used_bytes") / MiB),
    heapTotalMiB: r1(metricSum(m, "nodejs_heap_size_total_bytes") / MiB),
    externalMiB: r1(metricSum(m, "nodejs_external_memory_bytes") / MiB),
    rssAnonMiB: r1(statusBytes(g.proc.pid, "RssAnon") / MiB),
    rssFileMiB: r1(statusBytes(g.proc.pid, "RssFile") / MiB),
    peakRssMiB: r1(statusBytes(g.proc.pid, "VmHWM") / MiB),
    haproxyRssMiB: r1(haproxy.reduce((a, p) => a + statusBytes(p.pid), 0) / MiB),
    haproxyProcesses: haproxy.length,
  };
}

export async function runMemory(
  o: CommonOptions & { routes?: number; cycles?: number },
): Promise<MemoryResult> {
  const routes = o.routes ?? (o.quick ? 300 : 5000);
  const cycles = o.cycles ?? 2;
  const backendPort = await freePort();
  await startBackend(backendPort);
  const backend = `${LOOPBACK}:${backendPort}`;
  const dir = tempDir("memory-input");
  const gatewayPort = await freePort();
  writeFileSync(join(dir, "gateway.yaml"), gatewayYaml(gatewayPort));
  writeFileSync(join(dir, "base.yaml"), routeWithServiceYaml(numberedRoute("base-", 0), backend));
  const preload = join(import.meta.dirname, "lib", "gc-preload.ts");
  const g = await startGatehouse({
    configDir: dir,
    label: "gatehouse-memory",
    env: { NODE_OPTIONS: `--expose-gc --import ${preload}` },
    readyTimeoutMs: 300_000,
  });
  const points: MemoryPoint[] = [];
  const last = numberedRoute("m", routes - 1);
  const answers = async (status: number) => {
    await waitFor(
      `route ${last.name} to answer ${status}`,
      async () =>
        (await tryGet(gatewayPort, `${last.path}/`, { host: last.hostname })).status === status
          ? true
          : undefined,
      { timeoutMs: 600_000, intervalMs: 100 },
    );
    await g.settled(600_000);
  };
  await sleep(1000);
  points.push(await measure(g, "baseline (1 route)", 1));
  o.log(`memory: baseline ${points.at(-1)?.rssMiB} MiB`);
  const staging = tempDir("memory-staging");
  for (let c = 1; c <= cycles; c++) {
    // Cycle 1: files written one by one into the watched directory; later cycles: one directory
    // moved in (one rename), as a deployment tool swapping in a bundle would.
    const oneByOne = c === 1;
    const bulk = join(dir, `bulk-${c}`);
    let t = performance.now();
    if (oneByOne) {
      for (let i = 0; i < routes; i++)
        writeFileSync(join(dir, `m-${i}.yaml`), routeWithServiceYaml(numberedRoute("m", i), backend));
    } else {
      const src = join(staging, `bulk-${c}`);
      mkdirSync(src);
      for (let i = 0; i < routes; i++)
        writeFileSync(join(src, `m-${i}.yaml`), routeWithServiceYaml(numberedRoute("m", i), backend));
      t = performance.now();
      renameSync(src, bulk);
    }
    await answers(200);
    const addS = r1((performance.now() - t) / 1000);
    const how = oneByOne ? "files written one by one" : "one directory moved in";
    o.log(`memory: cycle ${c}: ${routes} routes (${how}) applied after ${addS} s`);
    await sleep(2000);
    points.push({ ...(await measure(g, `cycle ${c}: ${routes} routes (${how})`, routes + 1)), applyS: addS });
    o.log(`memory: ${points.at(-1)?.rssMiB} MiB`);
    t = performance.now();
    if (oneByOne) for (let i = 0; i < routes; i++) rmSync(join(dir, `m-${i}.yaml`), { force: true });
    else rmSync(bulk, { recursive: true, force: true });
    await answers(404);
    const delS = r1((performance.now() - t) / 1000);
    await sleep(2000);
    points.push({ ...(await measure(g, `cycle ${c}: after deleting them`, 1)), applyS: delS });
    o.log(`memory: ${points.at(-1)?.rssMiB} MiB after delete (applied after ${delS} s)`);
  }
  await g.stop();
  const baseline = points[0]?.rssMiB ?? Number.NaN;
  const at = points[1]?.rssMiB ?? Number.NaN;
  const firstDelete = points[2]?.rssMiB ?? Number.NaN;
  const lastDelete = points.at(-1)?.rssMiB ?? Number.NaN;
  return {
    setup: {
      routes,
      cycles,
      gc: "--expose-gc; full GC (twice) on SIGUSR2 via bench/lib/gc-preload.ts before each reading",
    },
    points,
    summary: {
      baselineMiB: baseline,
      atRoutesMiB: at,
      afterDeleteMiB: firstDelete,
      perRouteKiB: Math.round(((at - baseline) * 1024) / routes),
      cycleGrowthMiB: r1(lastDelete - firstDelete),
    },
  };
}

export function memoryMarkdown(r: MemoryResult): string {
  const lines = [
    `### Control-plane memory`,
    ``,
    `Gatehouse process RSS after a forced full GC (${r.setup.cycles} cycles of adding then deleting ${r.setup.routes} routes, each with its own Service; cycle 1 writes/deletes the files one by one, cycle 2 moves one directory in and removes it).`,
    ``,
    `| Point | RSS MiB | ratio to baseline | anon / file-backed MiB | V8 heap used / total MiB | external MiB | peak RSS MiB | HAProxy RSS MiB (processes) | change applied after s |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ];
  const base = r.points[0]?.rssMiB ?? Number.NaN;
  for (const p of r.points)
    lines.push(
      `| ${p.label} | ${p.rssMiB} | ${(p.rssMiB / base).toFixed(2)}× | ${p.rssAnonMiB} / ${p.rssFileMiB} | ${p.heapUsedMiB} / ${p.heapTotalMiB} | ${p.externalMiB} | ${p.peakRssMiB} | ${p.haproxyRssMiB} (${p.haproxyProcesses}) | ${p.applyS ?? "—"} |`,
    );
  lines.push(
    ``,
    `About ${r.summary.perRouteKiB} KiB of control-plane RSS per route; after-delete RSS growth from the first to the last cycle: ${r.summary.cycleGrowthMiB} MiB.`,
  );
  return lines.join("\n");
}

if (isMain(import.meta.url)) await runStandalone(runMemory, memoryMarkdown);
