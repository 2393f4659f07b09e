// `npm run conformance:inference -- [flags] [-- suite flags]`: runs the official Gateway API
// Inference Extension conformance suite (sigs.k8s.io/gateway-api-inference-extension/conformance
// v1.6.0, profile "Gateway") against Gatehouse on a mini-cluster of its own:
//
//   image (npm run image) + helm → mini-cluster "inference" (its own bridge, subnets and
//   load-balancer pool, so it runs beside the default one and the data-plane test's) + fake kubelet
//   (the suite's echo-basic and lwepp Pods as local binaries, lwepp with an in-cluster config and
//   gRPC health probes) → GatewayClass gatehouse → `helm upgrade --install` of charts/gatehouse with
//   inferenceExtension.installCRD=true (the InferencePool CRD from the chart; the Gateway API v1.6.1
//   CRDs come with the mini-cluster) and --infrastructure kubernetes → the suite's test binary
//   (conformance/inference, built once per content hash) → conformance/out/inference-report.yaml
//   → teardown.
//
// The suite's output is in conformance/out/inference-suite.log; after a failure the mini-cluster's
// logs are copied to conformance/out/inference-logs/.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULTS, REPO, startCluster, stopCluster, type StartOptions } from "./minicluster/cluster.ts";
import { describe, Kube } from "./minicluster/kube.ts";
import { isAlive, run, waitFor } from "./minicluster/proc.ts";
import { readState, type ClusterState } from "./minicluster/state.ts";
import {
  buildImageAndHelm,
  controllerLog,
  IMAGE_ARCHIVE,
  IMAGE_PATTERN,
  installController,
} from "./chart.ts";
import { applyGatewayClass, Interruption, keepLogs, runSuite, tail } from "./harness.ts";
import { failedTests, summarizeReport, timedOutTests } from "./report.ts";

const OUT = join(REPO, "conformance", "out");
const SUITE_DIR = join(REPO, "conformance", "inference");
export const INFERENCE_REPORT = join(OUT, "inference-report.yaml");

/**
 * The run's mini-cluster: name, bridge, node/pod subnets, service CIDR and load-balancer range of
 * its own (the default cluster uses gh-br0/10.244/10.96/10.245, the minicluster test gh-br9/10.246/
 * 10.247, the data-plane test gh-br8/10.248/10.98/10.249).
 */
export const CLUSTER: Omit<StartOptions, "log" | "images"> = {
  ...DEFAULTS,
  name: "inference",
  bridge: "gh-br7",
  nodeAddress: "10.250.0.1/16",
  podCIDR: "10.250.1.0/24",
  serviceCIDR: "10.99.0.0/16",
  loadBalancerPool: "10.251.0.0/24",
  loadBalancerRange: "10.251.0.0/16",
  services: true,
};
/** The controller's config-stream Service ClusterIP: x.y.100.100 of the service CIDR (a /16). */
export function distributionIP(serviceCIDR: string): string {
  const [a, b] = serviceCIDR.split(".");
  return `${a ?? "10"}.${b ?? "96"}.100.100`;
}

const USAGE = `Usage: npm run conformance:inference -- [flags] [-- extra flags for the suite]

Runs the Gateway API Inference Extension v1.6.0 conformance suite against Gatehouse (installed
with the chart, --infrastructure kubernetes) on a mini-cluster named "${CLUSTER.name}" (needs root).
Writes conformance/out/inference-report.yaml and conformance/out/inference-suite.log.

Flags:
  --run-test NAME      run only this test (e.g. InferencePoolAccepted)
  --skip-tests A,B     skip these tests
  --gateway-class NAME (default gatehouse)
  --timeout DURATION   the test binary's -test.timeout (default 90m: a routing test that fails
                       waits up to the suite's MaxTimeToConsistency, 300 s, per check)
  --debug              the suite's -debug
  --quiet              print only test results, not the suite's log lines
  --reuse              use the running mini-cluster (started by an earlier --keep run) and leave it running
  --keep               leave the mini-cluster and the controller running afterwards
                       (stop with: npm run minicluster -- stop --name ${CLUSTER.name})
  --out DIR            where the report, the suite log and kept logs go (default conformance/out)
  --name, --bridge, --node-address, --pod-cidr, --service-cidr (a /16), --lb-pool, --lb-range
                       another mini-cluster (defaults ${CLUSTER.name}, ${CLUSTER.bridge}, ${CLUSTER.nodeAddress},
                       ${CLUSTER.podCIDR}, ${CLUSTER.serviceCIDR}, ${CLUSTER.loadBalancerPool}, ${CLUSTER.loadBalancerRange})
`;

function log(line: string): void {
  process.stderr.write(`conformance:inference: ${line}\n`);
}

function cacheRoot(): string {
  return (
    process.env["GATEHOUSE_MINICLUSTER_CACHE"] ??
    join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "gatehouse", "minicluster")
  );
}

const GO_ENV = {
  GOWORK: "off",
  GOFLAGS: "-mod=readonly -buildvcs=false",
  GOTOOLCHAIN: process.env["GOTOOLCHAIN"] ?? "local",
};

/**
 * The suite's test binary (`go test -c` of conformance/inference), cached under
 * `<cache>/inference-suite/<hash>/` by a hash of the Go version and platform and the module's
 * go.mod, go.sum and Go sources; built when missing.
 */
export async function buildSuite(logLine: (line: string) => void): Promise<string> {
  const env = { ...process.env, ...GO_ENV };
  const goEnv = (await run("go", ["env", "GOVERSION", "GOOS", "GOARCH"], { env, timeoutMs: 60_000 })).trim();
  const hash = createHash("sha256").update(`recipe=1\n${goEnv}\n`);
  for (const file of ["go.mod", "go.sum", "conformance_test.go"]) {
    hash.update(`== ${file}\n`).update(readFileSync(join(SUITE_DIR, file)));
  }
  const dir = join(cacheRoot(), "inference-suite", hash.digest("hex").slice(0, 16));
  const binary = join(dir, "inference-conformance.test");
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  logLine(`building the suite's test binary (go test -c in conformance/inference) ...`);
  const tmp = `${binary}.tmp.${process.pid}`;
  try {
    await run("nice", ["-n", "10", "go", "test", "-c", "-trimpath", "-o", tmp, "."], {
      cwd: SUITE_DIR,
      env,
      timeoutMs: 30 * 60_000,
    });
    renameSync(tmp, binary);
  } finally {
    rmSync(tmp, { force: true });
  }
  logLine(`built ${binary} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return binary;
}

async function main(argv: string[]): Promise<number> {
  const dashdash = argv.indexOf("--");
  const extra = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  const { values } = parseArgs({
    args: dashdash >= 0 ? argv.slice(0, dashdash) : argv,
    options: {
      "run-test": { type: "string" },
      "skip-tests": { type: "string" },
      "gateway-class": { type: "string", default: "gatehouse" },
      timeout: { type: "string", default: "90m" },
      debug: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      reuse: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      out: { type: "string", default: OUT },
      name: { type: "string", default: CLUSTER.name },
      bridge: { type: "string", default: CLUSTER.bridge },
      "node-address": { type: "string", default: CLUSTER.nodeAddress },
      "pod-cidr": { type: "string", default: CLUSTER.podCIDR },
      "service-cidr": { type: "string", default: CLUSTER.serviceCIDR },
      "lb-pool": { type: "string", default: CLUSTER.loadBalancerPool },
      "lb-range": { type: "string", default: CLUSTER.loadBalancerRange },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const cluster = {
    ...CLUSTER,
    name: values.name,
    bridge: values.bridge,
    nodeAddress: values["node-address"],
    podCIDR: values["pod-cidr"],
    serviceCIDR: values["service-cidr"],
    loadBalancerPool: values["lb-pool"],
    loadBalancerRange: values["lb-range"],
  };
  const out = values.out;
  const report = join(out, "inference-report.yaml");
  const suiteLog = join(out, "inference-suite.log");
  const keptLogs = join(out, "inference-logs");
  mkdirSync(out, { recursive: true });
  rmSync(keptLogs, { recursive: true, force: true });
  rmSync(report, { force: true });

  const interruption = new Interruption(log);

  let state: ClusterState | undefined;
  let failed = true;
  let exitCode = 1;
  try {
    const [built, suite] = await Promise.all([buildImageAndHelm(log), buildSuite(log)]);
    if (values.reuse) {
      state = readState(cluster.name);
      if (state === undefined || !state.processes.every(isAlive))
        throw new Error(`--reuse: no running mini-cluster "${cluster.name}" (run once with --keep)`);
      log(`using the running mini-cluster "${state.name}" (${state.runDir})`);
    } else {
      state = await startCluster({ ...cluster, images: [`${IMAGE_PATTERN}=${IMAGE_ARCHIVE}`], log });
    }
    log(`mini-cluster ready after ${elapsed()}`);
    interruption.check();
    const kube = Kube.fromFile(state.kubeconfig);

    // --- GatewayClass, the chart (with the InferencePool CRD) --------------------------------
    await applyGatewayClass(kube, values["gateway-class"]);
    const output = await installController({
      infrastructure: "kubernetes",
      helm: built.helm,
      kubeconfig: state.kubeconfig,
      digest: built.digest,
      adminPort: 9901,
      distributionClusterIP: distributionIP(cluster.serviceCIDR),
      extraValues: ["inferenceExtension.installCRD=true"],
    });
    log(`helm: ${output.split("\n").find((line) => line.startsWith("STATUS")) ?? "installed"}`);
    const runDir = state.runDir;
    const gwcPath = `/apis/gateway.networking.k8s.io/v1/gatewayclasses/${values["gateway-class"]}`;
    try {
      await waitFor(`GatewayClass ${values["gateway-class"]} Accepted`, 180_000, async () => {
        const gwc = await kube.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
          "GET",
          gwcPath,
        );
        return (gwc.status?.conditions ?? []).some((c) => c.type === "Accepted" && c.status === "True")
          ? true
          : undefined;
      });
      await waitFor("the InferencePool CRD Established", 60_000, async () => {
        const crd = await kube.request<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
          "GET",
          "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/inferencepools.inference.networking.k8s.io",
        );
        return (crd.status?.conditions ?? []).some((c) => c.type === "Established" && c.status === "True")
          ? true
          : undefined;
      });
    } catch (error) {
      const file = controllerLog(runDir) ?? join(runDir, "logs", "controller.log");
      throw new Error(`${describe(error)}\n--- controller log (last lines) ---\n${tail(file)}`, {
        cause: error,
      });
    }
    log(`GatewayClass ${values["gateway-class"]} accepted after ${elapsed()}`);
    interruption.check();

    // --- the suite -----------------------------------------------------------------------------
    const suiteArgs = [
      "-test.run=^TestConformance$",
      "-test.count=1",
      `-test.timeout=${values.timeout}`,
      "-test.v",
      `-gateway-class=${values["gateway-class"]}`,
      `-report-output=${report}`,
    ];
    if (values["run-test"] !== undefined) suiteArgs.push(`-run-test=${values["run-test"]}`);
    if (values["skip-tests"] !== undefined) suiteArgs.push(`-skip-tests=${values["skip-tests"]}`);
    if (values.debug) suiteArgs.push("-debug");
    suiteArgs.push(...extra);
    log(`${suite} ${suiteArgs.join(" ")}  (in conformance/inference)`);
    const suiteStart = Date.now();
    exitCode = await runSuite(suite, suiteArgs, {
      cwd: SUITE_DIR,
      env: { ...process.env, KUBECONFIG: state.kubeconfig, GATEHOUSE_REPO: REPO },
      logFile: suiteLog,
      quiet: values.quiet,
      children: interruption.children,
    });
    log(
      `the suite exited with ${exitCode} after ${((Date.now() - suiteStart) / 1000).toFixed(1)} s (total ${elapsed()})`,
    );
    const suiteOutput = readFileSync(suiteLog, "utf8");
    if (existsSync(report)) {
      process.stdout.write(
        `\n${summarizeReport(readFileSync(report, "utf8"), failedTests(suiteOutput), timedOutTests(suiteOutput))}`,
      );
      log(`report: ${report}; suite output: ${suiteLog}`);
    } else {
      log(`no report was written; suite output: ${suiteLog}`);
    }
    failed = exitCode !== 0;
  } catch (error) {
    log(describe(error));
    failed = true;
  } finally {
    if (state !== undefined && failed) {
      keepLogs(state.runDir, keptLogs);
      log(`logs kept in ${keptLogs}`);
    }
    if (state !== undefined && !values.keep && !values.reuse) {
      try {
        await stopCluster(state, log);
        log(`torn down (total ${elapsed()})`);
      } catch (error) {
        log(`${describe(error)}\n  retry with: npm run minicluster -- stop --name ${cluster.name}`);
        exitCode = exitCode === 0 ? 1 : exitCode;
      }
    } else if (state !== undefined) {
      log(
        `left running: export KUBECONFIG=${state.kubeconfig}; stop with: npm run minicluster -- stop --name ${cluster.name}`,
      );
    }
  }
  return failed && exitCode === 0 ? 1 : exitCode;
}

if (import.meta.main) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    log(describe(error));
    process.exitCode = 1;
  }
}
