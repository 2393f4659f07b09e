// memory-scale: control-plane RSS as a user would see it (no forced GC): a `gatehouse serve` process
// idle (one route), then at 5,000, 20,000 and 50,000 routes (each with its own Service), then after
// they are all removed, each read 30 s after the change was applied (the last route answering, every
// generation applied). Routes come in files of 1,000 routes (≈ 0.5 MB each; a file may not exceed
// 16 MiB), one directory per step renamed into the watched tree (5 files, then 15 more, then 30 more);
// removing is three directory removals. Targets (issue #11): ≤ 100 MiB idle, ≤ 150 MiB at 5,000,
// ≤ 250 MiB at 20,000, within 20% of idle after removal; 50,000 shows how it degrades.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
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

export interface MemoryScalePoint {
  label: string;
  routes: number;
  /** VmRSS of the Gatehouse process. */
  rssMiB: number;
  metricsRssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  rssAnonMiB: number;
  rssFileMiB: number;
  /** VmHWM so far. */
  peakRssMiB: number;
  haproxyRssMiB: number;
  /** Seconds from the rename (or removal) to the change applied. */
  applyS?: number;
  /** False when the change was not applied within the time allowed (the reading is taken anyway). */
  applied?: boolean;
}

export interface MemoryScaleResult {
  setup: { steps: number[]; routesPerFile: number; settleS: number; applyTimeoutS: number; gc: string };
  points: MemoryScalePoint[];
  /** The target per point label, MiB (the after-removal one: idle + 20%). */
  limits: Record<string, number>;
}

const MiB = 1024 * 1024;
const r1 = (n: number) => Math.round(n * 10) / 10;

async function reading(g: Gatehouse, label: string, routes: number): Promise<MemoryScalePoint> {
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
  };
}

export async function runMemoryScale(
  o: CommonOptions & { steps?: number[]; settleS?: number; applyTimeoutS?: number },
): Promise<MemoryScaleResult> {
  const steps = o.steps ?? (o.quick ? [300, 1000] : [5000, 20_000, 50_000]);
  const settleS = o.settleS ?? (o.quick ? 5 : 30);
  // At 50,000 routes HAProxy may not take the configuration at all (its reload fails and Gatehouse
  // retries): the reading is then taken anyway, marked not applied.
  const applyTimeoutS = o.applyTimeoutS ?? (o.quick ? 60 : 300);
  const perFile = 1000;
  const backendPort = await freePort();
  await startBackend(backendPort);
  const backend = `${LOOPBACK}:${backendPort}`;
  const dir = tempDir("memory-scale-input");
  const staging = tempDir("memory-scale-staging");
  const gatewayPort = await freePort();
  writeFileSync(join(dir, "gateway.yaml"), gatewayYaml(gatewayPort));
  writeFileSync(join(dir, "base.yaml"), routeWithServiceYaml(numberedRoute("base-", 0), backend));
  const g = await startGatehouse({
    configDir: dir,
    label: "gatehouse-memory-scale",
    readyTimeoutMs: 300_000,
  });
  /** Whether route i answers `status` and every generation is applied within applyTimeoutS. */
  const answers = async (i: number, status: number): Promise<boolean> => {
    const route = numberedRoute("s", i);
    const deadline = Date.now() + applyTimeoutS * 1000;
    try {
      await waitFor(
        `route ${route.name} to answer ${status}`,
        async () =>
          (await tryGet(gatewayPort, `${route.path}/`, { host: route.hostname })).status === status
            ? true
            : undefined,
        { timeoutMs: applyTimeoutS * 1000, intervalMs: 200 },
      );
      await g.settled(Math.max(1000, deadline - Date.now()));
      return true;
    } catch (error) {
      o.log(`memory-scale: ${error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error)}`);
      return false;
    }
  };
  const points: MemoryScalePoint[] = [];
  await g.settled(300_000);
  await sleep(settleS * 1000);
  points.push(await reading(g, "idle (1 route)", 1));
  o.log(`memory-scale: idle ${points.at(-1)?.rssMiB} MiB`);
  let have = 0;
  const moved: string[] = [];
  for (const target of steps) {
    const name = `step-${target}`;
    const src = join(staging, name);
    mkdirSync(src);
    for (let from = have; from < target; from += perFile) {
      const parts: string[] = [];
      for (let i = from; i < Math.min(target, from + perFile); i++)
        parts.push(routeWithServiceYaml(numberedRoute("s", i), backend));
      writeFileSync(join(src, `routes-${from}.yaml`), parts.join("---\n"));
    }
    const t = performance.now();
    renameSync(src, join(dir, name));
    moved.push(join(dir, name));
    const applied = await answers(target - 1, 200);
    const applyS = Math.round((performance.now() - t) / 100) / 10;
    await sleep(settleS * 1000);
    points.push({ ...(await reading(g, `${target.toLocaleString("en")} routes`, target)), applyS, applied });
    o.log(
      `memory-scale: ${target} routes: ${points.at(-1)?.rssMiB} MiB (${applied ? "applied" : "NOT applied"} after ${applyS} s)`,
    );
    have = target;
  }
  const t = performance.now();
  for (const path of moved) rmSync(path, { recursive: true, force: true });
  const applied = await answers(have - 1, 404);
  const applyS = Math.round((performance.now() - t) / 100) / 10;
  await sleep(settleS * 1000);
  points.push({ ...(await reading(g, "after removing them", 1)), applyS, applied });
  o.log(`memory-scale: after removal ${points.at(-1)?.rssMiB} MiB (${applied ? "applied" : "NOT applied"})`);
  // HAProxy runs in a process group of its own: if Gatehouse has to be killed, stop it by pid too.
  const haproxy = descendants(g.proc.pid).map((p) => p.pid);
  await g.stop();
  for (const pid of haproxy) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  const idle = points[0]?.rssMiB ?? Number.NaN;
  const limits: Record<string, number> = { "idle (1 route)": 100, "after removing them": r1(idle * 1.2) };
  if (steps.includes(5000)) limits["5,000 routes"] = 150;
  if (steps.includes(20_000)) limits["20,000 routes"] = 250;
  return {
    setup: {
      steps,
      routesPerFile: perFile,
      settleS,
      applyTimeoutS,
      gc: "none forced: read settleS seconds after each change",
    },
    points,
    limits,
  };
}

export function memoryScaleMarkdown(r: MemoryScaleResult): string {
  const lines = [
    `### Control-plane memory at scale (no forced GC)`,
    ``,
    `Gatehouse process RSS read ${r.setup.settleS} s after each change was applied (as a user would see it); routes in files of ${r.setup.routesPerFile.toLocaleString("en")} routes (each route with its own Service), one directory per step renamed into the watched tree; removal deletes the directories.`,
    ``,
    `| Point | RSS MiB | target | anon / file-backed MiB | V8 heap used / total MiB | external MiB | peak RSS MiB | HAProxy RSS MiB | applied after s |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ];
  for (const p of r.points) {
    const limit = r.limits[p.label];
    lines.push(
      `| ${p.label}${p.applied === false ? " (**not applied** within the time allowed)" : ""} | ${p.rssMiB} | ${limit === undefined ? "—" : `≤ ${limit}${p.rssMiB <= limit ? "" : " (**not met**)"}`} | ${p.rssAnonMiB} / ${p.rssFileMiB} | ${p.heapUsedMiB} / ${p.heapTotalMiB} | ${p.externalMiB} | ${p.peakRssMiB} | ${p.haproxyRssMiB} | ${p.applyS ?? "—"} |`,
    );
  }
  return lines.join("\n");
}

if (isMain(import.meta.url)) await runStandalone(runMemoryScale, memoryScaleMarkdown);
