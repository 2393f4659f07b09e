// distribution: `--infrastructure kubernetes`'s config distribution at 100 Gateways × 50 HTTPRoutes
// (issue #10): controller memory and CPU, and the time from one change to the acks of every
// affected Gateway's pod (target ≤ 1 s), against the same run at 10 Gateways × 50 routes.
//
// Two processes per scale, so each one's RSS and CPU time are its own: the controller
// (lib/distribution-controller.ts: the data-plane CA, a client certificate per Gateway, the real
// distribution server with mTLS and ConfigDistributor, translation in kubernetes mode) and the pods
// (lib/distribution-pods.ts: one ConfigStreamClient per Gateway with its own certificate, doing the
// agent's checks before HAProxy, then acking). The input is lib/fleet.ts: Gateway i in namespace
// team-<i>, 50 routes each with its own Service and EndpointSlice, the first route also to one
// shared Service. Changes: the shared Service's endpoints (every Gateway's configuration changes),
// then one Gateway's own Service's endpoints (one Gateway changes), ≥ 20 of each.
//
// Left out, and said so in the report: HAProxy (the pods ack after the checks; its apply costs are
// in the other benches), the API server (watch delivery, the provider's 30 ms debounce, status
// writes) and the infrastructure reconciler (it needs an API server). The 100 pods share one process
// on one machine, where in a cluster each runs on its own CPU: their checks run one after another
// here, so the time to the last ack is an upper bound.
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { isMain, runStandalone } from "./lib/cli.ts";
import type { CommonOptions } from "./lib/cli.ts";
import type { ChangeSample, ControllerInput, ControllerResult } from "./lib/distribution-controller.ts";
import { fixed } from "./lib/format.ts";
import { start, stop, tail, tempDir } from "./lib/proc.ts";
import { median, percentile, round } from "./lib/stats.ts";

export interface DistributionKindSummary {
  changes: number;
  gatewaysChanged: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
  /** Medians of the phases. */
  snapshotMs: number;
  translateMs: number;
  publishMs: number;
  acksMs: number;
  /** Controller CPU per change (median), ms. */
  cpuMs: number;
  /** Pods process CPU per change (all pods together; mean over the changes), ms. */
  podsCpuMs: number;
  /** The pods' checks per configuration received (hash, validateIR, checkRenderable): median, ms. */
  podCheckMs: number;
  /** Share of the machine's CPU other processes used during these changes. */
  foreignCpuShare: number;
}

export interface DistributionScale {
  label: string;
  controller: ControllerResult;
  all: DistributionKindSummary;
  one: DistributionKindSummary;
}

export interface DistributionResult {
  setup: {
    scales: Array<{ gateways: number; routesPerGateway: number }>;
    changesPerKind: number;
    settleMs: number;
    gapMs: number;
    load: { start: string; end: string };
    leftOut: string[];
  };
  /** The reference (small) scale first, then the measured one. */
  scales: DistributionScale[];
  /** Measured over reference, median time to the last ack. */
  ratios: { all: number; one: number };
  check: { targetMs: number; p95AllMs: number; medianAllMs: number; met: boolean };
}

export const LEFT_OUT = [
  "HAProxy: the pods ack after the agent's checks (configHash, validateIR, checkRenderable), without applying",
  "the API server: watch delivery, the kubernetes provider's 30 ms debounce, status writes",
  "the infrastructure reconciler (KubernetesInfrastructure: Deployments, Services, Secrets through an API server)",
  "one process holds every pod: their checks run one after another on this machine's 2 shared cores",
];

const loadNow = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

function summarise(
  samples: ChangeSample[],
  pods: ControllerResult["pods"]["all"],
  foreignCpuShare: number,
): DistributionKindSummary {
  const pick = (f: (s: ChangeSample) => number): number => round(median(samples.map(f)), 1);
  return {
    changes: samples.length,
    gatewaysChanged: samples[0]?.changed ?? 0,
    medianMs: pick((s) => s.totalMs),
    p95Ms: round(
      percentile(
        samples.map((s) => s.totalMs),
        95,
      ),
      1,
    ),
    maxMs: round(
      percentile(
        samples.map((s) => s.totalMs),
        100,
      ),
      1,
    ),
    snapshotMs: pick((s) => s.snapshotMs),
    translateMs: pick((s) => s.translateMs),
    publishMs: pick((s) => s.publishMs),
    acksMs: pick((s) => s.acksMs),
    cpuMs: pick((s) => s.cpuMs),
    podsCpuMs: round((pods.cpuS * 1000) / Math.max(1, samples.length), 1),
    podCheckMs: round(median(pods.checks.checkMs), 2),
    foreignCpuShare,
  };
}

async function runScale(
  o: CommonOptions,
  gateways: number,
  routesPerGateway: number,
  changes: number,
  settleMs: number,
  gapMs: number,
): Promise<DistributionScale> {
  const label = `${gateways} Gateways × ${routesPerGateway} routes`;
  const dir = tempDir(`distribution-${gateways}`);
  const input: ControllerInput = {
    gateways,
    routesPerGateway,
    changes,
    settleMs,
    gapMs,
    dir,
    out: join(dir, "result.json"),
  };
  o.log(`distribution: ${label}, ${changes} changes of each kind`);
  const proc = start(`distribution-controller-${gateways}`, process.execPath, [
    join(import.meta.dirname, "lib", "distribution-controller.ts"),
    JSON.stringify(input),
  ]);
  const limitMs = 600_000;
  const code = await Promise.race([
    proc.exited,
    new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), limitMs).unref()),
  ]);
  if (code !== 0) {
    await stop(proc);
    throw new Error(`distribution controller (${label}) ended with ${code}: ${tail(proc)}`);
  }
  const controller = JSON.parse(readFileSync(input.out, "utf8")) as ControllerResult;
  const byKind = (kind: "all" | "one"): ChangeSample[] => controller.changes.filter((c) => c.kind === kind);
  const scale = {
    label,
    controller,
    all: summarise(byKind("all"), controller.pods.all, controller.foreignCpuShare.all),
    one: summarise(byKind("one"), controller.pods.one, controller.foreignCpuShare.one),
  };
  o.log(
    `distribution: ${label}: all ${scale.all.medianMs} / ${scale.all.p95Ms} ms, one ${scale.one.medianMs} / ${scale.one.p95Ms} ms (median / p95); idle RSS ${controller.memory.idleRssMiB} MiB, peak ${controller.memory.peakRssMiB} MiB`,
  );
  return scale;
}

export async function runDistribution(
  o: CommonOptions & { gateways?: number; reference?: number; routesPerGateway?: number; changes?: number },
): Promise<DistributionResult> {
  const gateways = o.gateways ?? (o.quick ? 20 : 100);
  const reference = o.reference ?? (o.quick ? 5 : 10);
  const routesPerGateway = o.routesPerGateway ?? (o.quick ? 10 : 50);
  const changes = o.changes ?? (o.quick ? 5 : 20);
  const settleMs = o.quick ? 1000 : 10_000;
  const gapMs = 250;
  const loadStart = loadNow();
  const scales: DistributionScale[] = [];
  for (const n of [reference, gateways])
    scales.push(await runScale(o, n, routesPerGateway, changes, settleMs, gapMs));
  const [ref, big] = scales as [DistributionScale, DistributionScale];
  const targetMs = 1000;
  return {
    setup: {
      scales: [reference, gateways].map((n) => ({ gateways: n, routesPerGateway })),
      changesPerKind: changes,
      settleMs,
      gapMs,
      load: { start: loadStart, end: loadNow() },
      leftOut: LEFT_OUT,
    },
    scales,
    ratios: {
      all: round(big.all.medianMs / ref.all.medianMs, 2),
      one: round(big.one.medianMs / ref.one.medianMs, 2),
    },
    check: {
      targetMs,
      p95AllMs: big.all.p95Ms,
      medianAllMs: big.all.medianMs,
      met: big.all.p95Ms <= targetMs,
    },
  };
}

const fmt = fixed;

export function distributionMarkdown(r: DistributionResult): string {
  const [ref, big] = r.scales;
  const lines = [
    `### Config distribution (\`--infrastructure kubernetes\`)`,
    ``,
    `Controller process: translation in kubernetes mode of the fleet held in memory, the real ConfigDistributor and distribution server (HTTP/2, mTLS, client certificates from the data-plane CA); pods process: one ConfigStreamClient per Gateway doing the agent's checks (configHash, validateIR, checkRenderable), then acking. Time from the change (an EndpointSlice replaced in the controller's cache) to the last ack of every changed Gateway's pod; ${r.setup.changesPerKind} changes of each kind, ${r.setup.gapMs} ms apart; "other processes' CPU share": of the machine's CPU time during those changes, what processes other than the two measured used (other work on the machine). Load average at start / end: ${r.setup.load.start} / ${r.setup.load.end}. Left out: ${r.setup.leftOut.join("; ")}.`,
    ``,
    `| Scale | change | Gateways changed | median ms | p95 ms | max ms | snapshot / translate / publish / acks ms (medians) | controller CPU ms | pods CPU ms | check per pod ms | other processes' CPU share |`,
    `| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ];
  for (const s of r.scales)
    for (const [name, k] of [
      ["every Gateway (shared Service)", s.all],
      ["one Gateway", s.one],
    ] as const)
      lines.push(
        `| ${s.label} | ${name} | ${k.gatewaysChanged} | ${fmt(k.medianMs)} | ${fmt(k.p95Ms)} | ${fmt(k.maxMs)} | ${fmt(k.snapshotMs)} / ${fmt(k.translateMs)} / ${fmt(k.publishMs)} / ${fmt(k.acksMs)} | ${fmt(k.cpuMs)} | ${fmt(k.podsCpuMs)} | ${fmt(k.podCheckMs, 2)} | ${fmt(k.foreignCpuShare * 100)}% |`,
      );
  lines.push(
    ``,
    `Ratio ${big?.label ?? "?"} / ${ref?.label ?? "?"} (median time to the last ack): every Gateway ${fmt(r.ratios.all, 2)}×, one Gateway ${fmt(r.ratios.one, 2)}×. Target (issue #10): ≤ ${r.check.targetMs} ms to all acks at 100 Gateways (here: ${big?.label ?? "?"}; p95 of the every-Gateway change): ${fmt(r.check.p95AllMs)} ms, ${r.check.met ? "met" : "**not met**"}.`,
    ``,
    `| Scale | objects | config message per Gateway, KiB | client certificates: wall / CPU ms | pods connect: wall / controller CPU ms | initial sync: snapshot / translate / publish / acks ms | initial sync: total / controller CPU ms | controller RSS idle / peak MiB | heap used idle MiB | pods process RSS MiB |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  );
  for (const s of r.scales) {
    const c = s.controller;
    lines.push(
      `| ${s.label} | ${c.objects} | ${fmt(c.messageBytes.max / 1024, 1)} | ${fmt(c.certificates.wallMs)} / ${fmt(c.certificates.cpuMs)} | ${fmt(c.connect.wallMs)} / ${fmt(c.connect.cpuMs)} | ${fmt(c.initialSync.snapshotMs)} / ${fmt(c.initialSync.translateMs)} / ${fmt(c.initialSync.publishMs)} / ${fmt(c.initialSync.acksMs)} | ${fmt(c.initialSync.totalMs)} / ${fmt(c.initialSync.cpuMs)} | ${fmt(c.memory.idleRssMiB, 1)} / ${fmt(c.memory.peakRssMiB, 1)} | ${fmt(c.memory.idleHeapUsedMiB, 1)} | ${fmt(c.podsRssMiB, 1)} |`,
    );
  }
  return lines.join("\n");
}

if (isMain(import.meta.url)) await runStandalone(runDistribution, distributionMarkdown);
