// translate-10k: `gatehouse translate` of one file with 10,000 HTTPRoutes and 10,000 Services (plus a
// GatewayClass and a Gateway; ≈ 5 MB) against js-yaml's loadAll of the same file (the reference,
// timed inside its own process after reading the file). Rounds alternate reference and command; the
// command is timed as a whole process (wall, start to exit, its output written to a file) with its
// CPU time and peak RSS from a preload (lib/rusage-preload.ts). Target (issue #11): the command within
// 3× the reference. A second child runs the command's phases in one process (lib/translate-phases.ts)
// to show where the time goes. GATEHOUSE_BENCH_BASELINE=<checkout> adds another checkout's command
// (e.g. the commit before a change) to the rounds, for before/after figures from one run.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMain, runStandalone } from "./lib/cli.ts";
import type { CommonOptions } from "./lib/cli.ts";
import { gatewayYaml, numberedRoute, ROOT, routeWithServiceYaml } from "./lib/gatehouse.ts";
import { LOOPBACK } from "./lib/net.ts";
import { tempDir } from "./lib/proc.ts";
import { median } from "./lib/stats.ts";

export interface CommandSample {
  wallMs: number;
  cpuMs: number;
  peakRssMiB: number;
}

export interface TranslateTarget {
  name: string;
  samples: CommandSample[];
  median: CommandSample;
}

export interface Translate10kResult {
  setup: { routes: number; services: number; fileBytes: number; rounds: number; baseline?: string };
  reference: { samples: Array<{ ms: number; cpuMs: number }>; medianMs: number; medianCpuMs: number };
  targets: TranslateTarget[];
  /** Command wall time / reference time, and command CPU time / reference CPU time (medians). */
  ratios: Record<string, { wall: number; cpu: number }>;
  /** Median ms of each phase over the phase runs (lib/translate-phases.ts). */
  phases: Record<string, number>;
  check: { target: number; ratio: number; met: boolean };
}

const MiB = 1024 * 1024;
const r1 = (n: number) => Math.round(n * 10) / 10;

/** The input: a GatewayClass, a Gateway and `routes` routes, each with its own Service, in one file. */
export function translateInput(routes: number): string {
  const parts = [gatewayYaml(8080)];
  for (let i = 0; i < routes; i++) {
    parts.push(routeWithServiceYaml(numberedRoute("r", i), `${LOOPBACK}:9000`));
  }
  return parts.join("---\n");
}

function node(args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
    maxBuffer: 64 * MiB,
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`node ${args.join(" ")}: exit ${r.status}: ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

function runCommand(root: string, file: string, dir: string): CommandSample {
  const usage = join(dir, "rusage.json");
  const out = join(dir, "out.json");
  rmSync(usage, { force: true });
  const preload = join(import.meta.dirname, "lib", "rusage-preload.ts");
  const t0 = performance.now();
  const r = spawnSync(
    "sh",
    [
      "-c",
      `exec "$0" --import "$1" "$2" translate --config "$3" --now 2025-01-01T00:00:00Z > "$4"`,
      process.execPath,
      preload,
      join(root, "bin", "gatehouse.js"),
      file,
      out,
    ],
    { encoding: "utf8", env: { ...process.env, GATEHOUSE_BENCH_RUSAGE: usage }, timeout: 600_000 },
  );
  const wallMs = performance.now() - t0;
  if (r.status !== 0)
    throw new Error(`gatehouse translate (${root}): exit ${r.status}: ${r.stderr.slice(-2000)}`);
  const u = JSON.parse(readFileSync(usage, "utf8")) as {
    userUs: number;
    systemUs: number;
    maxRssKiB: number;
  };
  return { wallMs, cpuMs: (u.userUs + u.systemUs) / 1000, peakRssMiB: r1(u.maxRssKiB / 1024) };
}

function medianSample(samples: CommandSample[]): CommandSample {
  return {
    wallMs: Math.round(median(samples.map((s) => s.wallMs))),
    cpuMs: Math.round(median(samples.map((s) => s.cpuMs))),
    peakRssMiB: r1(median(samples.map((s) => s.peakRssMiB))),
  };
}

export function runTranslate10k(
  o: CommonOptions & { routes?: number; rounds?: number },
): Promise<Translate10kResult> {
  return Promise.resolve(measure(o));
}

function measure(o: CommonOptions & { routes?: number; rounds?: number }): Translate10kResult {
  const routes = o.routes ?? (o.quick ? 1000 : 10_000);
  const rounds = o.rounds ?? (o.quick ? 2 : 5);
  const dir = tempDir("translate-10k");
  const file = join(dir, "routes.yaml");
  writeFileSync(file, translateInput(routes));
  const baseline = process.env["GATEHOUSE_BENCH_BASELINE"];
  const checkouts: Array<[string, string]> = [["gatehouse", ROOT]];
  if (baseline !== undefined && baseline !== "") checkouts.push(["baseline", baseline]);
  o.log(`translate-10k: ${routes} routes, ${statSync(file).size} bytes; ${rounds} rounds`);
  // One warm-up of each (file cache, Node's own caches), not counted.
  node([join(import.meta.dirname, "lib", "jsyaml-load.ts"), file]);
  for (const [, root] of checkouts) runCommand(root, file, dir);

  const reference: Translate10kResult["reference"]["samples"] = [];
  const samples = new Map<string, CommandSample[]>(checkouts.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const ref = JSON.parse(node([join(import.meta.dirname, "lib", "jsyaml-load.ts"), file])) as {
      ms: number;
      cpuMs: number;
    };
    reference.push({ ms: Math.round(ref.ms), cpuMs: Math.round(ref.cpuMs) });
    for (const [name, root] of checkouts) {
      const s = runCommand(root, file, dir);
      samples
        .get(name)
        ?.push({ wallMs: Math.round(s.wallMs), cpuMs: Math.round(s.cpuMs), peakRssMiB: s.peakRssMiB });
    }
    o.log(
      `translate-10k: round ${round + 1}: js-yaml ${reference.at(-1)?.ms} ms; ` +
        checkouts.map(([name]) => `${name} ${samples.get(name)?.at(-1)?.wallMs} ms`).join("; "),
    );
  }
  const phaseRuns: Array<Record<string, number>> = [];
  for (let i = 0; i < Math.max(1, Math.min(3, rounds)); i++) {
    const p = JSON.parse(node([join(import.meta.dirname, "lib", "translate-phases.ts"), file])) as {
      phases: Record<string, number>;
    };
    phaseRuns.push(p.phases);
  }
  const phases: Record<string, number> = {};
  for (const key of Object.keys(phaseRuns[0] ?? {}))
    phases[key] = Math.round(median(phaseRuns.map((p) => p[key] ?? Number.NaN)));

  const refMs = median(reference.map((s) => s.ms));
  const refCpuMs = median(reference.map((s) => s.cpuMs));
  const targets = checkouts.map(([name]) => {
    const list = samples.get(name) ?? [];
    return { name, samples: list, median: medianSample(list) };
  });
  const ratios: Translate10kResult["ratios"] = {};
  for (const t of targets)
    ratios[`${t.name}/js-yaml`] = {
      wall: Math.round((t.median.wallMs / refMs) * 100) / 100,
      cpu: Math.round((t.median.cpuMs / refCpuMs) * 100) / 100,
    };
  const ratio = ratios["gatehouse/js-yaml"]?.wall ?? Number.NaN;
  rmSync(dir, { recursive: true, force: true });
  return {
    setup: {
      routes,
      services: routes,
      fileBytes: translateInput(routes).length,
      rounds,
      ...(baseline === undefined || baseline === "" ? {} : { baseline }),
    },
    reference: { samples: reference, medianMs: Math.round(refMs), medianCpuMs: Math.round(refCpuMs) },
    targets,
    ratios,
    phases,
    check: { target: 3, ratio, met: ratio <= 3 },
  };
}

export function translate10kMarkdown(r: Translate10kResult): string {
  const lines = [
    `### translate-10k: \`gatehouse translate\` of ${r.setup.routes.toLocaleString("en")} routes + ${r.setup.services.toLocaleString("en")} Services (${(r.setup.fileBytes / MiB).toFixed(1)} MiB, one file)`,
    ``,
    `Medians of ${r.setup.rounds} alternating rounds. Reference: js-yaml \`loadAll\` of the same file, timed in its own process after reading the file: ${r.reference.medianMs} ms (CPU ${r.reference.medianCpuMs} ms). The command is timed as a whole process (Node start, module loading, read, parse, validation, translation, JSON written to a file).`,
    ``,
    `| Command | wall ms | CPU ms | peak RSS MiB | wall / js-yaml | CPU / js-yaml |`,
    `| --- | ---: | ---: | ---: | ---: | ---: |`,
  ];
  for (const t of r.targets) {
    const ratio = r.ratios[`${t.name}/js-yaml`];
    lines.push(
      `| ${t.name === "baseline" ? `baseline (${r.setup.baseline ?? "?"})` : t.name} | ${t.median.wallMs} | ${t.median.cpuMs} | ${t.median.peakRssMiB} | ${ratio?.wall ?? "—"}× | ${ratio?.cpu ?? "—"}× |`,
    );
  }
  lines.push(
    ``,
    `Target: ≤ ${r.check.target}× js-yaml's load time; measured ${r.check.ratio}×: ${r.check.met ? "met" : "**not met**"}.`,
    ``,
    `Phases of the command in one process (median ms, lib/translate-phases.ts; parse+validate includes the one-time compilation of the schemas and CEL rules):`,
    ``,
    `| ${Object.keys(r.phases).join(" | ")} |`,
    `| ${Object.keys(r.phases)
      .map(() => "---:")
      .join(" | ")} |`,
    `| ${Object.values(r.phases).join(" | ")} |`,
  );
  return lines.join("\n");
}

if (isMain(import.meta.url)) await runStandalone(runTranslate10k, translate10kMarkdown);
