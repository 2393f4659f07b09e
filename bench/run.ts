// `npm run bench [-- --quick] [-- --only throughput,propagation,churn,memory,translate-10k,memory-scale,distribution,epp]`
// Runs the benchmark modules one after the other (each also runnable alone: node bench/<module>.ts)
// and writes bench/results/latest.{json,md} (--quick: quick.{json,md}); with --only, the file names
// carry the modules run (latest-translate-10k.md), so a partial run does not replace a full one. Every number that can be is a
// ratio against a reference measured in the same run. Not part of `npm test`.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release } from "node:os";
import { join } from "node:path";
import { churnMarkdown, runChurn } from "./churn.ts";
import type { ChurnResult } from "./churn.ts";
import { log, parseCommon } from "./lib/cli.ts";
import { ROOT } from "./lib/gatehouse.ts";
import { cleanupAll, installCleanup, runSync } from "./lib/proc.ts";
import { ensureTools } from "./lib/tools.ts";
import { memoryMarkdown, runMemory } from "./memory.ts";
import type { MemoryResult } from "./memory.ts";
import { propagationMarkdown, runPropagation } from "./propagation.ts";
import type { PropagationResult } from "./propagation.ts";
import { runThroughput, throughputMarkdown } from "./throughput.ts";
import type { ThroughputResult } from "./throughput.ts";
import { runTranslate10k, translate10kMarkdown } from "./translate-10k.ts";
import type { Translate10kResult } from "./translate-10k.ts";
import { memoryScaleMarkdown, runMemoryScale } from "./memory-scale.ts";
import type { MemoryScaleResult } from "./memory-scale.ts";
import { distributionMarkdown, runDistribution } from "./distribution.ts";
import type { DistributionResult } from "./distribution.ts";
import { eppMarkdown, runEpp } from "./epp.ts";
import type { EppResult } from "./epp.ts";

const MODULES = [
  "throughput",
  "propagation",
  "churn",
  "memory",
  "translate-10k",
  "memory-scale",
  "distribution",
  "epp",
] as const;
type Module = (typeof MODULES)[number];

export interface BenchResults {
  quick: boolean;
  /** The modules run when not all (--only). */
  only?: string[];
  startedAt: string;
  finishedAt: string;
  durationS: number;
  environment: Record<string, unknown>;
  throughput?: ThroughputResult;
  propagation?: PropagationResult;
  churn?: ChurnResult;
  memory?: MemoryResult;
  "translate-10k"?: Translate10kResult;
  "memory-scale"?: MemoryScaleResult;
  distribution?: DistributionResult;
  epp?: EppResult;
  errors: Partial<Record<Module, string>>;
}

const fmt = (n: number | undefined, digits = 0) =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : "—";
const yes = (met: boolean | undefined) => (met === undefined ? "—" : met ? "yes" : "**no**");

export function summaryMarkdown(r: BenchResults): string {
  const t = r.throughput;
  const gh = t?.targets.find((x) => x.name === "gatehouse");
  const hw = t?.targets.find((x) => x.name === "haproxy");
  const ng = t?.targets.find((x) => x.name === "nginx");
  const gh_hw = t?.ratios["gatehouse/haproxy"];
  const gh_ng = t?.ratios["gatehouse/nginx"];
  const p = r.propagation;
  const small = p?.sizes[0];
  const c = r.churn;
  const m = r.memory;
  const rows: string[] = [
    `| Measure | Gatehouse | Reference (same run) | Ratio | Target | Met |`,
    `| --- | ---: | ---: | ---: | --- | --- |`,
  ];
  if (t !== undefined) {
    rows.push(
      `| Throughput, req/s (median of ${t.setup.rounds} × ${t.setup.durationS} s) | ${fmt(gh?.median.rps)} | HAProxy hand-written ${fmt(hw?.median.rps)} / nginx ${fmt(ng?.median.rps)} | ${fmt(gh_hw?.rps, 3)}× / ${fmt(gh_ng?.rps, 3)}× | ≥ 0.95× HAProxy | ${yes(t.check.met)} |`,
      `| p99 latency, ms (median) | ${fmt(gh?.median.p99Ms, 2)} | HAProxy ${fmt(hw?.median.p99Ms, 2)} / nginx ${fmt(ng?.median.p99Ms, 2)} | ${fmt(gh_hw?.p99, 2)}× / ${fmt(gh_ng?.p99, 2)}× | — | — |`,
      `| Proxy CPU per request, µs (median) | ${fmt(gh?.median.proxyCpuUs, 1)} | HAProxy ${fmt(hw?.median.proxyCpuUs, 1)} / nginx ${fmt(ng?.median.proxyCpuUs, 1)} | ${fmt(gh_hw?.proxyCpuUs, 2)}× / ${fmt(gh_ng?.proxyCpuUs, 2)}× | — | — |`,
    );
  }
  if (p !== undefined) {
    for (const s of p.sizes) {
      for (const k of s.kinds) {
        const ref = small?.kinds.find((x) => x.kind === k.kind);
        rows.push(
          `| Propagation at ${s.routes} routes, ${k.kind} (median / p99 ms; ${Object.keys(k.methods).join(", ")}) | ${fmt(k.medianMs)} / ${fmt(k.p99Ms)} | ${small?.routes ?? "?"} routes: ${fmt(ref?.medianMs)} | ${fmt(k.medianMs / (ref?.medianMs ?? Number.NaN), 1)}× | ${s.routes === p.check.routes && k.kind === "route+service" ? `median ≤ ${p.check.thresholdMs} ms` : "—"} | ${s.routes === p.check.routes && k.kind === "route+service" ? yes(p.check.met) : "—"} |`,
        );
      }
    }
  }
  if (c !== undefined) {
    rows.push(
      `| Failed requests on an unchanged route during ${c.setup.changes} changes (${c.applied.reloads} reloads, ${c.applied.runtime} runtime updates) | ${c.failures} of ${c.load.requests} | — | ${fmt((c.failures / Math.max(1, c.load.requests)) * 100, 3)}% | 0 | ${yes(c.check.met)} |`,
    );
  }
  if (m !== undefined) {
    const at = m.points[1];
    const del = m.points[2];
    rows.push(
      `| Control-plane RSS at ${m.setup.routes} routes, MiB (after GC) | ${fmt(at?.rssMiB, 1)} | baseline (1 route) ${fmt(m.summary.baselineMiB, 1)} | ${fmt((at?.rssMiB ?? Number.NaN) / m.summary.baselineMiB, 2)}× | — | — |`,
      `| Control-plane RSS after deleting them, MiB (after GC) | ${fmt(del?.rssMiB, 1)} | baseline ${fmt(m.summary.baselineMiB, 1)} | ${fmt((del?.rssMiB ?? Number.NaN) / m.summary.baselineMiB, 2)}× | — | — |`,
    );
  }
  const tr = r["translate-10k"];
  if (tr !== undefined) {
    const gh = tr.targets.find((x) => x.name === "gatehouse");
    rows.push(
      `| \`gatehouse translate\` of ${tr.setup.routes} routes + ${tr.setup.services} Services, wall ms (peak RSS ${fmt(gh?.median.peakRssMiB)} MiB) | ${fmt(gh?.median.wallMs)} | js-yaml loadAll ${fmt(tr.reference.medianMs)} | ${fmt(tr.check.ratio, 2)}× | ≤ ${tr.check.target}× | ${yes(tr.check.met)} |`,
    );
  }
  const ms = r["memory-scale"];
  if (ms !== undefined) {
    for (const p of ms.points) {
      const limit = ms.limits[p.label];
      rows.push(
        `| Control-plane RSS, ${p.label}, MiB (no forced GC) | ${fmt(p.rssMiB, 1)} | idle ${fmt(ms.points[0]?.rssMiB, 1)} | ${fmt(p.rssMiB / (ms.points[0]?.rssMiB ?? Number.NaN), 2)}× | ${limit === undefined ? "—" : `≤ ${limit} MiB`} | ${limit === undefined ? "—" : yes(p.rssMiB <= limit)} |`,
      );
    }
  }
  const d = r.distribution;
  if (d !== undefined) {
    const [ref, big] = d.scales;
    for (const [name, key] of [
      ["every Gateway", "all"],
      ["one Gateway", "one"],
    ] as const)
      rows.push(
        `| Config push to the pods of ${big?.label ?? "?"}, change of ${name}: median / p95 ms to the last ack (controller CPU ${fmt(big?.[key].cpuMs)} ms) | ${fmt(big?.[key].medianMs)} / ${fmt(big?.[key].p95Ms)} | ${ref?.label ?? "?"}: ${fmt(ref?.[key].medianMs)} | ${fmt(d.ratios[key], 2)}× | ${key === "all" ? `p95 ≤ ${d.check.targetMs} ms` : "—"} | ${key === "all" ? yes(d.check.met) : "—"} |`,
      );
    rows.push(
      `| Controller RSS with ${big?.label ?? "?"}, idle / peak MiB (no forced GC) | ${fmt(big?.controller.memory.idleRssMiB, 1)} / ${fmt(big?.controller.memory.peakRssMiB, 1)} | ${ref?.label ?? "?"}: ${fmt(ref?.controller.memory.idleRssMiB, 1)} / ${fmt(ref?.controller.memory.peakRssMiB, 1)} | ${fmt((big?.controller.memory.idleRssMiB ?? Number.NaN) / (ref?.controller.memory.idleRssMiB ?? Number.NaN), 2)}× | — | — |`,
    );
  }
  const e = r.epp;
  if (e !== undefined)
    rows.push(
      `| InferencePool with the endpoint picker (lwepp): p50 / p99 ms added over the pool without picker; req/s | ${fmt(e.added.p50Ms, 3)} / ${fmt(e.added.p99Ms, 3)}; ${fmt(e.targets.epp.rps)} | pool without picker: p50 ${fmt(e.targets.pool.p50Ms, 3)} ms; ${fmt(e.targets.pool.rps)} req/s | ${fmt(e.added.rpsRatio, 3)}× req/s | p50 added ≤ ${e.check.targetP50Ms} ms | ${yes(e.check.met)} |`,
    );
  return rows.join("\n");
}

export function resultsMarkdown(r: BenchResults): string {
  const env = r.environment;
  const parts = [
    `# Gatehouse benchmark results${r.quick ? " (quick smoke run: not representative)" : ""}`,
    ``,
    `Run ${r.startedAt} (${Math.round(r.durationS)} s) by \`npm run bench${r.quick ? " -- --quick" : ""}${r.only === undefined ? "" : ` -- --only ${r.only.join(",")}`}\` on ${String(env["cpuModel"])} × ${String(env["cpus"])}; ${String(env["haproxy"])}; ${String(env["nginx"])}; ${String(env["wrk"])}; Node ${String(env["node"])}; Gatehouse ${String(env["gatehouseCommit"])}. Load average at start / end: ${String(env["loadStart"])} / ${String(env["loadEnd"])} (other work was running on the machine; see bench/README.md on noise).`,
    ``,
    `## Summary`,
    ``,
    summaryMarkdown(r),
  ];
  if (r.throughput !== undefined) parts.push(``, throughputMarkdown(r.throughput));
  if (r.propagation !== undefined) parts.push(``, propagationMarkdown(r.propagation));
  if (r.churn !== undefined) parts.push(``, churnMarkdown(r.churn));
  if (r.memory !== undefined) parts.push(``, memoryMarkdown(r.memory));
  if (r["translate-10k"] !== undefined) parts.push(``, translate10kMarkdown(r["translate-10k"]));
  if (r["memory-scale"] !== undefined) parts.push(``, memoryScaleMarkdown(r["memory-scale"]));
  if (r.distribution !== undefined) parts.push(``, distributionMarkdown(r.distribution));
  if (r.epp !== undefined) parts.push(``, eppMarkdown(r.epp));
  const errors = Object.entries(r.errors);
  if (errors.length > 0)
    parts.push(``, `## Errors`, ``, ...errors.map(([k, v]) => `- ${k}: ${v.split("\n")[0] ?? ""}`));
  return parts.join("\n") + "\n";
}

function environment(versions: Record<string, string>): Record<string, unknown> {
  const commit = runSync("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"], 10_000).stdout.trim();
  return {
    cpuModel: cpus()[0]?.model ?? "unknown CPU",
    cpus: cpus().length,
    kernel: release(),
    node: process.versions.node,
    ...versions,
    gatehouseCommit:
      commit === "" ? "unknown" : `${commit} (with uncommitted changes of the working tree, if any)`,
    loadStart: loadavg()
      .map((x) => x.toFixed(2))
      .join(" "),
  };
}

async function main(): Promise<number> {
  installCleanup();
  const args = parseCommon(process.argv.slice(2));
  const only = args.only ?? [...MODULES];
  for (const m of only)
    if (!(MODULES as readonly string[]).includes(m)) throw new Error(`unknown module ${m}`);
  const startedAt = new Date();
  const t0 = performance.now();
  const versions = ensureTools(log);
  const results: BenchResults = {
    quick: args.quick,
    ...(args.only === undefined ? {} : { only }),
    startedAt: startedAt.toISOString(),
    finishedAt: "",
    durationS: 0,
    environment: environment(versions),
    errors: {},
  };
  const options = { quick: args.quick, log };
  const runners: Record<Module, () => Promise<void>> = {
    throughput: async () => void (results.throughput = await runThroughput(options)),
    propagation: async () => void (results.propagation = await runPropagation(options)),
    churn: async () => void (results.churn = await runChurn(options)),
    memory: async () => void (results.memory = await runMemory(options)),
    "translate-10k": async () => void (results["translate-10k"] = await runTranslate10k(options)),
    "memory-scale": async () => void (results["memory-scale"] = await runMemoryScale(options)),
    distribution: async () => void (results.distribution = await runDistribution(options)),
    epp: async () => void (results.epp = await runEpp(options)),
  };
  for (const m of MODULES) {
    if (!only.includes(m)) continue;
    log(`=== ${m}`);
    try {
      await runners[m]();
    } catch (err) {
      results.errors[m] = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`${m} failed: ${results.errors[m] ?? ""}`);
    } finally {
      await cleanupAll();
    }
  }
  results.finishedAt = new Date().toISOString();
  results.durationS = Math.round((performance.now() - t0) / 1000);
  results.environment["loadEnd"] = loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

  const outDir = args.out ?? join(ROOT, "bench", "results");
  mkdirSync(outDir, { recursive: true });
  const base = `${args.quick ? "quick" : "latest"}${args.only === undefined ? "" : `-${only.join("+")}`}`;
  const jsonFile = join(outDir, `${base}.json`);
  const mdFile = join(outDir, `${base}.md`);
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(mdFile, resultsMarkdown(results));
  const prettier = join(ROOT, "node_modules", ".bin", "prettier");
  if (existsSync(prettier))
    spawnSync(prettier, ["--write", "--log-level", "warn", jsonFile, mdFile], {
      stdio: "inherit",
      timeout: 60_000,
    });
  log(`wrote ${jsonFile} and ${mdFile}`);
  process.stdout.write(`\n${summaryMarkdown(results)}\n`);
  return Object.keys(results.errors).length === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await cleanupAll();
}
process.exit(code);
