// The cost of an InferencePool's endpoint picker (Gateway API Inference Extension): one `gatehouse
// serve` routing three hosts to the same backend (nginx on loopback, the pool's one Pod):
//   service.bench → a Service (plain HAProxy routing),
//   pool.bench    → an InferencePool without endpointPickerRef (HAProxy balances),
//   epp.bench     → an InferencePool whose picker is the real `lwepp` (conformance/scripts/build.sh
//                   lwepp), which watches its pool and Pod on a real kube-apiserver
//                   (src/provider/kubernetes/testing): every request goes HAProxy → Lua → the picker
//                   bridge → ext_proc over TLS+h2 to lwepp and back, plus the response phase.
// wrk measures latency with one connection (p50/p99: what the picker adds to one request) and
// requests per second with 16 connections, alternating the hosts each round. Target: ≤ 1 ms p50 added.
//
//   npm run bench -- --only epp        (or: node bench/epp.ts [--quick])
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BUILD_SCRIPT,
  findControlPlaneBinaries,
  startTestApiServer,
} from "../src/provider/kubernetes/testing/apiserver.ts";
import { isMain, runStandalone, type CommonOptions } from "./lib/cli.ts";
import { descendants } from "./lib/cpu.ts";
import { gatewayYaml, startGatehouse } from "./lib/gatehouse.ts";
import { freePort, LOOPBACK, tryGet, waitFor } from "./lib/net.ts";
import { tempDir } from "./lib/proc.ts";
import { startBackend } from "./lib/servers.ts";
import { runWrk, type WrkResult } from "./lib/wrk.ts";

const TARGETS = ["service", "pool", "epp"] as const;
type Target = (typeof TARGETS)[number];

interface Figures {
  p50Ms: number;
  p99Ms: number;
  /** Requests per second with 16 connections. */
  rps: number;
  errors: number;
  /** CPU µs per request during the throughput runs, by process (node = Gatehouse and its bridges). */
  cpuUsPerRequest: Record<string, number>;
}

/** CPU seconds of every process this run started, by command name. */
function cpuByCommand(): Map<string, number> {
  const by = new Map<string, number>();
  for (const p of descendants(process.pid)) by.set(p.comm, (by.get(p.comm) ?? 0) + p.cpuS);
  return by;
}

export interface EppResult {
  setup: { rounds: number; latencyS: number; throughputS: number; connections: number };
  /** Median over rounds, per target. */
  targets: Record<Target, Figures>;
  /** epp minus pool (the same Pod, HAProxy's own choice). */
  added: { p50Ms: number; p99Ms: number; rpsRatio: number };
  check: { targetP50Ms: number; met: boolean };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};

function lweppBinary(): string {
  const bins = findControlPlaneBinaries();
  if ("skip" in bins) throw new Error(`${bins.skip}; also lwepp: bash ${BUILD_SCRIPT} lwepp`);
  const path = join(bins.dir, "lwepp");
  if (!existsSync(path)) throw new Error(`lwepp not found in ${bins.dir}: bash ${BUILD_SCRIPT} lwepp`);
  return path;
}

function configYaml(port: number, backendPort: number, grpcPort: number): string {
  const pool = (name: string, picker: boolean): string => `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: ${name}, namespace: default}
spec:
  selector: {matchLabels: {app: bench}}
  targetPorts: [{number: ${backendPort}}]
${picker ? "  endpointPickerRef: {name: epp, port: {number: 9002}, failureMode: FailClose}\n" : ""}`;
  const route = (name: string, ref: string): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: default}
spec:
  parentRefs: [{name: bench}]
  hostnames: [${name}.bench]
  rules: [{backendRefs: [${ref}]}]
`;
  return [
    gatewayYaml(port),
    `apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default, annotations: {gatehouse.dev/endpoints: "${LOOPBACK}:${backendPort}"}}
spec: {ports: [{port: 80}]}
`,
    `apiVersion: v1
kind: Service
metadata: {name: epp, namespace: default, annotations: {gatehouse.dev/endpoints: "${LOOPBACK}:${grpcPort}"}}
spec: {ports: [{port: 9002}]}
`,
    `apiVersion: v1
kind: Pod
metadata: {name: bench-0, namespace: default, labels: {app: bench}}
status: {phase: Running, podIP: ${LOOPBACK}, conditions: [{type: Ready, status: "True"}]}
`,
    pool("plain", false),
    pool("picked", true),
    route("service", "{name: backend, port: 80}"),
    route("pool", "{group: inference.networking.k8s.io, kind: InferencePool, name: plain}"),
    route("epp", "{group: inference.networking.k8s.io, kind: InferencePool, name: picked}"),
  ].join("---\n");
}

export async function runEpp(o: CommonOptions): Promise<EppResult> {
  const rounds = o.quick ? 1 : 3;
  const latencyS = o.quick ? 2 : 8;
  const throughputS = o.quick ? 2 : 5;
  const connections = 16;
  const binary = lweppBinary();
  const backendPort = await freePort();
  await startBackend(backendPort);

  const srv = await startTestApiServer();
  let lwepp: ChildProcess | undefined;
  try {
    await srv.apply([
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: "default" } },
      {
        apiVersion: "inference.networking.k8s.io/v1",
        kind: "InferencePool",
        metadata: { name: "picked", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "bench" } },
          targetPorts: [{ number: backendPort }],
          endpointPickerRef: { name: "epp", port: { number: 9002 } },
        },
      },
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "bench-0", namespace: "default", labels: { app: "bench" } },
        spec: { automountServiceAccountToken: false, containers: [{ name: "m", image: "bench" }] },
      },
    ]);
    const path = "/api/v1/namespaces/default/pods/bench-0";
    const stored = await srv.admin.request<Record<string, unknown>>("GET", path);
    await srv.admin.request("PUT", `${path}/status`, {
      ...stored,
      status: { phase: "Running", podIP: LOOPBACK, conditions: [{ type: "Ready", status: "True" }] },
    });
    const grpcPort = await freePort();
    lwepp = spawn(
      binary,
      [
        `--kubeconfig=${await srv.writeKubeconfig()}`,
        "--pool-name=picked",
        "--pool-namespace=default",
        `--grpc-port=${grpcPort}`,
        `--grpc-health-port=${await freePort()}`,
        `--metrics-port=${await freePort()}`,
        "--zap-log-level=error",
      ],
      { stdio: "ignore" },
    );

    const port = await freePort();
    const configDir = tempDir("epp-config");
    writeFileSync(join(configDir, "bench.yaml"), configYaml(port, backendPort, grpcPort));
    const gh = await startGatehouse({
      configDir,
      label: "gatehouse-epp",
      extraArgs: ["--access-log-format", "off"],
    });
    try {
      await gh.settled();
      for (const t of TARGETS)
        await waitFor(
          `${t}.bench answering 200`,
          async () => ((await tryGet(port, "/", { host: `${t}.bench` })).status === 200 ? true : undefined),
          { timeoutMs: 60_000, intervalMs: 200 },
        );
      const samples = new Map<Target, { lat: WrkResult[]; tput: WrkResult[]; cpu: Map<string, number> }>(
        TARGETS.map((t) => [t, { lat: [], tput: [], cpu: new Map() }]),
      );
      for (let r = 0; r < rounds; r++) {
        for (const t of TARGETS) {
          o.log(`epp: round ${r + 1}/${rounds}, ${t}.bench`);
          const s = samples.get(t);
          if (s === undefined) continue;
          s.lat.push(await runWrk({ port, host: `${t}.bench`, connections: 1, durationS: latencyS }));
          const before = cpuByCommand();
          s.tput.push(
            await runWrk({ port, host: `${t}.bench`, connections, threads: 2, durationS: throughputS }),
          );
          for (const [comm, cpuS] of cpuByCommand())
            s.cpu.set(comm, (s.cpu.get(comm) ?? 0) + cpuS - (before.get(comm) ?? 0));
        }
      }
      const figures = (t: Target): Figures => {
        const s = samples.get(t) ?? { lat: [], tput: [], cpu: new Map<string, number>() };
        const requests = s.tput.reduce((n, x) => n + x.requests, 0);
        const cpuUsPerRequest: Record<string, number> = {};
        for (const [comm, cpuS] of s.cpu)
          if (comm !== "wrk" && cpuS > 0.01) cpuUsPerRequest[comm] = (cpuS * 1e6) / Math.max(1, requests);
        return {
          cpuUsPerRequest,
          p50Ms: median(s.lat.map((x) => x.latencyMs.p50)),
          p99Ms: median(s.lat.map((x) => x.latencyMs.p99)),
          rps: median(s.tput.map((x) => x.rps)),
          errors: [...s.lat, ...s.tput].reduce((n, x) => n + x.errorTotal, 0),
        };
      };
      const targets = { service: figures("service"), pool: figures("pool"), epp: figures("epp") };
      const added = {
        p50Ms: targets.epp.p50Ms - targets.pool.p50Ms,
        p99Ms: targets.epp.p99Ms - targets.pool.p99Ms,
        rpsRatio: targets.epp.rps / targets.pool.rps,
      };
      return {
        setup: { rounds, latencyS, throughputS, connections },
        targets,
        added,
        check: { targetP50Ms: 1, met: added.p50Ms <= 1 },
      };
    } finally {
      await gh.stop();
    }
  } finally {
    lwepp?.kill("SIGTERM");
    await srv.stop();
  }
}

export function eppMarkdown(r: EppResult): string {
  const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : "—");
  const row = (name: string, t: Figures): string =>
    `| ${name} | ${f(t.p50Ms, 3)} | ${f(t.p99Ms, 3)} | ${f(t.rps, 0)} | ${t.errors} |`;
  return [
    `## Endpoint picker (InferencePool with lwepp)`,
    ``,
    `Median of ${r.setup.rounds} round(s): latency with 1 connection for ${r.setup.latencyS} s, throughput with ${r.setup.connections} connections for ${r.setup.throughputS} s (wrk, loopback, one nginx backend).`,
    ``,
    `| Route to the same Pod | p50 ms | p99 ms | req/s | errors |`,
    `| --- | ---: | ---: | ---: | ---: |`,
    row("Service", r.targets.service),
    row("InferencePool, no picker", r.targets.pool),
    row("InferencePool, picker lwepp (TLS)", r.targets.epp),
    ``,
    `CPU per request (µs, throughput runs): ${TARGETS.map(
      (t) =>
        `${t}: ${Object.entries(r.targets[t].cpuUsPerRequest)
          .map(([c, us]) => `${c} ${f(us, 0)}`)
          .join(", ")}`,
    ).join("; ")}.`,
    ``,
    `Added by the picker: p50 ${f(r.added.p50Ms, 3)} ms, p99 ${f(r.added.p99Ms, 3)} ms; throughput ${f(r.added.rpsRatio, 3)}× the pool without picker. Target p50 added ≤ ${r.check.targetP50Ms} ms: ${r.check.met ? "met" : "**not met**"}.`,
  ].join("\n");
}

if (isMain(import.meta.url)) await runStandalone(runEpp, eppMarkdown);
