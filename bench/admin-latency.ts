// Admin responsiveness during big applies: `gatehouse serve` applies 20,000 routes (each with its
// own Service) written at once, then their deletion, while /healthz, /ready, /status and /metrics
// are polled continuously, each on a fresh connection as a probe or a scraper would. Reports, per
// path and phase, how many answers, their statuses, and the median, p99 and max latency. The target
// (issue #8, part 7): every answer within 100 ms during any apply.
//
//   node bench/admin-latency.ts [--quick] [--routes N]
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { log } from "./lib/cli.ts";
import {
  gatewayYaml,
  metricSum,
  numberedRoute,
  routeWithServiceYaml,
  startGatehouse,
  writeAtomic,
  removeFile,
} from "./lib/gatehouse.ts";
import { freePort, httpGet, waitFor } from "./lib/net.ts";
import { cleanupAll, installCleanup, sleep, tempDir } from "./lib/proc.ts";

const PATHS = ["/healthz", "/ready", "/status", "/metrics"] as const;

interface Sample {
  ms: number;
  status: number;
}

interface PathStats {
  path: string;
  answers: number;
  statuses: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

function stats(path: string, samples: readonly Sample[]): PathStats {
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[String(s.status)] = (statuses[String(s.status)] ?? 0) + 1;
  return {
    path,
    answers: samples.length,
    statuses,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted.at(-1) ?? NaN,
  };
}

/** Polls every path (one loop per path) until `stop()`; returns the samples per path. */
function poll(adminPort: number): { stop(): Promise<Map<string, Sample[]>> } {
  let running = true;
  const samples = new Map<string, Sample[]>(PATHS.map((p) => [p, []]));
  const loops = PATHS.map(async (path) => {
    while (running) {
      const started = performance.now();
      let status = 0;
      try {
        status = (await httpGet(adminPort, path, { timeoutMs: 60_000 })).status;
      } catch {
        status = 0;
      }
      samples.get(path)?.push({ ms: performance.now() - started, status });
      await sleep(5);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

async function phase(
  label: string,
  adminPort: number,
  change: () => void,
  settled: () => Promise<void>,
): Promise<{ label: string; applyS: number; paths: PathStats[] }> {
  const poller = poll(adminPort);
  await sleep(500);
  const started = performance.now();
  change();
  await settled();
  const applyS = (performance.now() - started) / 1000;
  await sleep(500);
  const samples = await poller.stop();
  const paths = PATHS.map((p) => stats(p, samples.get(p) ?? []));
  log(`${label}: applied in ${applyS.toFixed(1)} s`);
  return { label, applyS, paths };
}

async function main(): Promise<void> {
  installCleanup();
  const { values } = parseArgs({
    options: { quick: { type: "boolean" }, routes: { type: "string" } },
    strict: true,
  });
  const routes = Number(values.routes ?? (values.quick === true ? 2000 : 20_000));
  const dir = tempDir("ghadm");
  const configDir = join(dir, "config");
  mkdirSync(configDir);
  writeAtomic(join(configDir, "gateway.yaml"), gatewayYaml(await freePort()));
  const gatehouse = await startGatehouse({ configDir, readyTimeoutMs: 120_000, label: "gatehouse" });
  try {
    await gatehouse.settled();
    log(`writing ${routes} routes (each with its own Service) in one file`);
    const text = Array.from({ length: routes }, (_, i) =>
      routeWithServiceYaml(numberedRoute("r", i), "127.0.0.1:9"),
    ).join("---\n");
    const file = join(configDir, "routes.yaml");
    // Applied: one more propagation observed (the change was seen and applied), and nothing pending.
    const propagations = async (): Promise<number> =>
      metricSum(await gatehouse.metrics(), "gatehouse_route_propagation_seconds_count");
    let before = await propagations();
    const settled = async (): Promise<void> => {
      await waitFor(
        "the change to be applied",
        async () => ((await propagations()) > before ? true : undefined),
        {
          timeoutMs: 900_000,
          intervalMs: 100,
        },
      );
      await gatehouse.settled(900_000);
      before = await propagations();
    };
    const add = await phase(
      `add ${routes} routes`,
      gatehouse.adminPort,
      () => writeAtomic(file, text),
      settled,
    );
    const remove = await phase(
      `delete ${routes} routes`,
      gatehouse.adminPort,
      () => removeFile(file),
      settled,
    );
    const result = { routes, phases: [add, remove] };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    const lines = [
      `| Phase | Apply | Path | Answers | Statuses | p50 | p99 | max |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- |`,
      ...result.phases.flatMap((p) =>
        p.paths.map(
          (s) =>
            `| ${p.label} | ${p.applyS.toFixed(1)} s | ${s.path} | ${s.answers} | ${Object.entries(s.statuses)
              .map(([k, v]) => `${k}×${v}`)
              .join(" ")} | ${s.p50Ms.toFixed(1)} ms | ${s.p99Ms.toFixed(1)} ms | ${s.maxMs.toFixed(1)} ms |`,
        ),
      ),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await gatehouse.stop();
    await cleanupAll();
  }
}

await main();
