// File provider latency in isolation: with N route files in a directory (one HTTPRoute and its own
// Service per file, as bench/propagation.ts writes them), the time from renaming one more file into
// place (written to a temp name first, as writeAtomic does) to the FileProvider's listener receiving
// the update that contains it. No serve loop, no HAProxy: this is the part before the serve loop.
//
//   node bench/file-provider.ts [--routes 1000,5000] [--samples 30] [--debounce <ms>]
//
// Prints one line per size (median, p90, max in ms, and the provider's loads) plus JSON on stdout.
// It is a measurement, not a test: numbers depend on the machine and its load.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { FileProvider } from "../src/provider/file/provider.ts";
import type { ProviderUpdate } from "../src/provider/types.ts";
import { gatewayYaml, numberedRoute, routeWithServiceYaml, writeAtomic } from "./lib/gatehouse.ts";
import { max, median, percentile, round } from "./lib/stats.ts";

interface SizeResult {
  routes: number;
  samples: number;
  startMs: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
  loads: number;
}

async function measure(routes: number, samples: number, debounceMs: number | undefined): Promise<SizeResult> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-file-provider-"));
  try {
    writeFileSync(join(dir, "gateway.yaml"), gatewayYaml(8080));
    for (let i = 0; i < routes; i++) {
      const route = numberedRoute("r", i);
      writeFileSync(join(dir, `${route.name}.yaml`), routeWithServiceYaml(route, "127.0.0.1:9"));
    }
    let waiting: { key: string; resolve: (at: number) => void } | undefined;
    const listener = (update: ProviderUpdate): void => {
      const at = performance.now();
      if (waiting !== undefined && update.snapshot.httpRoutes.has(waiting.key)) waiting.resolve(at);
    };
    const provider = new FileProvider({ path: dir, ...(debounceMs === undefined ? {} : { debounceMs }) });
    const started = performance.now();
    await provider.start(listener);
    const startMs = performance.now() - started;
    // Let the tree watch finish walking and the first load settle.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const times: number[] = [];
    try {
      for (let n = 0; n < samples; n++) {
        const route = numberedRoute("new", n);
        const seen = new Promise<number>((resolve) => {
          waiting = { key: `default/${route.name}`, resolve };
        });
        const timeout = setTimeout(() => waiting?.resolve(Number.NaN), 30_000);
        writeAtomic(join(dir, `${route.name}.yaml`), routeWithServiceYaml(route, "127.0.0.1:9"));
        const renamed = performance.now();
        const at = await seen;
        clearTimeout(timeout);
        times.push(at - renamed);
        // Changes 100 ms apart (a change right after a load counts as part of a burst and waits longer).
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await provider.stop();
    }
    return {
      routes,
      samples,
      startMs: round(startMs, 1),
      medianMs: round(median(times), 2),
      p90Ms: round(percentile(times, 90), 2),
      maxMs: round(max(times), 2),
      loads: provider.loadCount,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({
  options: {
    routes: { type: "string", default: "1000,5000" },
    samples: { type: "string", default: "30" },
    debounce: { type: "string" },
  },
  strict: true,
});
const sizes = values.routes.split(",").map((s) => Number(s.trim()));
const samples = Number(values.samples);
const debounceMs = values.debounce === undefined ? undefined : Number(values.debounce);
const results: SizeResult[] = [];
for (const routes of sizes) {
  const result = await measure(routes, samples, debounceMs);
  results.push(result);
  process.stderr.write(
    `${routes} routes: rename → listener median ${result.medianMs} ms, p90 ${result.p90Ms} ms, ` +
      `max ${result.maxMs} ms (${samples} samples, ${result.loads} loads; first load ${result.startMs} ms)\n`,
  );
}
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
