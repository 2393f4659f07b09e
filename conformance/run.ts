// `npm run conformance -- [flags] [-- suite flags]`: runs the official Gateway API conformance suite
// (v1.6.1) against `gatehouse controller` on a mini-cluster of this machine:
//
//   image (npm run image) + helm → mini-cluster + fake kubelet (the image under runc) →
//   GatewayClass gatehouse → `helm upgrade --install` of charts/gatehouse: the controller as a Pod
//   (--infrastructure kubernetes: each Gateway gets its own Deployment of data-plane pods from the
//   same image and a LoadBalancer Service, which the mini-cluster's allocator and proxy serve; or
//   --infrastructure host: hostNetwork, Gateway addresses from --address-pool bound on this host)
//   → go test in conformance/suite → per-profile summary of conformance/out/report.yaml → teardown.
//
// `--controller process` runs the controller as a process of this checkout instead (no image).
//
// On failure the controller log, its state dir (haproxy.cfg ...), the kubelet and control-plane
// logs are copied to conformance/out/logs/ (the suite's output is always in
// conformance/out/suite.log).
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULTS, REPO, registerProcess, startCluster, stopCluster } from "./minicluster/cluster.ts";
import { describe, isConflict, Kube } from "./minicluster/kube.ts";
import { failedTests, summarizeReport, timedOutTests } from "./report.ts";
import { freePort } from "./minicluster/net.ts";
import {
  isAlive,
  run,
  startProcess,
  stopProcess,
  waitFor,
  Fatal,
  type ProcessRecord,
} from "./minicluster/proc.ts";
import { readState, saveState, type ClusterState } from "./minicluster/state.ts";
import {
  buildImageAndHelm,
  controllerLog,
  IMAGE_ARCHIVE,
  IMAGE_PATTERN,
  installController,
} from "./chart.ts";
import { applyGatewayClass, Interruption, keepLogs, runSuite, tail } from "./harness.ts";

/**
 * Tests skipped in every run, each with the reason (they appear as skipped in the report). None now.
 *
 * GatewayInvalidTLSBackendConfiguration runs: one of its cases expects a Gateway of
 * gateway-conformance-infra referring to Secret gateway-conformance-web-backend/certificate to get
 * RefNotPermitted, while ListenerSetReferenceGrant, which the suite may run at the same time, creates
 * a ReferenceGrant permitting exactly that reference for as long as it runs. The case polls for the
 * condition for up to GatewayMustHaveCondition (180 s), so the overlap only delays it (alone,
 * ListenerSetReferenceGrant takes about 5 s in host mode); it would fail only if the other test held
 * its grant for the whole window.
 */
const DEFAULT_SKIPPED_TESTS: readonly string[] = [];

const OUT = join(REPO, "conformance", "out");
const SUITE_DIR = join(REPO, "conformance", "suite");

const USAGE = `Usage: npm run conformance -- [flags] [-- extra flags for the suite]

Runs the Gateway API v1.6.1 conformance suite against gatehouse controller on a mini-cluster
(needs root). Writes conformance/out/report.yaml and conformance/out/suite.log.

Flags:
  --run-test NAME               run only this test (e.g. HTTPRouteSimpleSameNamespace)
  --skip-tests A,B              skip these tests
  --supported-features A,B      instead of GatewayClass.status.supportedFeatures
  --exempt-features A,B         leave these features out
  --all-gateway-features        every feature except the mesh ones (to see what fails beyond what
                                the GatewayClass advertises)
  --conformance-profiles A,B    default: every GATEWAY-* profile the supported features cover
  --usable-address IP           for GatewayStaticAddresses (default 10.245.1.10)
  --unusable-address IP         for GatewayStaticAddresses (default ff02::1: a multicast address
                                the kernel refuses to bind, so the controller reports
                                AddressNotUsable)
  --gateway-class NAME          (default gatehouse)
  --infrastructure kubernetes|host
                                kubernetes (default): the chart's default, a data-plane
                                Deployment and LoadBalancer Service per Gateway; host: the
                                controller Pod serves every Gateway on this host's addresses
                                (always host with --controller process)
  --address-pool CIDR           --infrastructure host: Gateway addresses, bound on this host
                                (default 10.245.0.0/24)
  --timeout DURATION            go test -timeout (default 30m)
  --debug                       the suite's -debug (request/response dumps)
  --quiet                       print only test results, not the suite's log lines
  --reuse                       use the running mini-cluster (npm run minicluster -- start) and
                                leave it running afterwards
  --keep                        leave the mini-cluster and the controller running afterwards
                                (stop both with: npm run minicluster -- stop)
  --name NAME                   mini-cluster name (default ${DEFAULTS.name})
  --controller image|process    image (default): the OCI image of npm run image, installed with
                                the Helm chart, run by the kubelet under runc; process: a
                                process of this checkout
`;

function log(line: string): void {
  process.stderr.write(`conformance: ${line}\n`);
}

/** The flags `gatehouse controller --help` lists (so that optional ones are passed only when known). */
async function controllerFlags(): Promise<Set<string>> {
  let help: string;
  try {
    help = await run(process.execPath, [join(REPO, "bin", "gatehouse.js"), "controller", "--help"], {
      timeoutMs: 30_000,
    });
  } catch (error) {
    throw new Error(
      `\`gatehouse controller\` is not available yet (node bin/gatehouse.js controller --help failed: ${describe(error).split("\n")[0] ?? ""}). ` +
        "The conformance run needs it; start only the cluster with: npm run minicluster -- start",
      { cause: error },
    );
  }
  return new Set([...help.matchAll(/--([a-z][a-z-]+)/g)].map((m) => m[1] ?? ""));
}

async function ensureNamespace(kube: Kube, name: string): Promise<void> {
  try {
    await kube.request("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name },
    });
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
}

async function main(argv: string[]): Promise<number> {
  const dashdash = argv.indexOf("--");
  const extra = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  const { values } = parseArgs({
    args: dashdash >= 0 ? argv.slice(0, dashdash) : argv,
    options: {
      "run-test": { type: "string" },
      "skip-tests": { type: "string" },
      "supported-features": { type: "string" },
      "exempt-features": { type: "string" },
      "conformance-profiles": { type: "string" },
      "usable-address": { type: "string", default: "10.245.1.10" },
      "unusable-address": { type: "string", default: "ff02::1" },
      "gateway-class": { type: "string", default: "gatehouse" },
      "address-pool": { type: "string", default: "10.245.0.0/24" },
      timeout: { type: "string" },
      "all-gateway-features": { type: "boolean", default: false },
      debug: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      reuse: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      name: { type: "string", default: DEFAULTS.name },
      controller: { type: "string", default: "image" },
      infrastructure: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  if (values.controller !== "image" && values.controller !== "process") {
    process.stderr.write(`conformance: --controller must be image or process\n\n${USAGE}`);
    return 2;
  }
  const fromImage = values.controller === "image";
  const infrastructure = values.infrastructure ?? (fromImage ? "kubernetes" : "host");
  if (infrastructure !== "kubernetes" && infrastructure !== "host") {
    process.stderr.write(`conformance: --infrastructure must be kubernetes or host\n\n${USAGE}`);
    return 2;
  }
  if (infrastructure === "kubernetes" && !fromImage) {
    process.stderr.write(
      `conformance: --infrastructure kubernetes runs data-plane pods from the image: not with --controller process\n\n${USAGE}`,
    );
    return 2;
  }
  const flags = await controllerFlags();
  mkdirSync(OUT, { recursive: true });
  rmSync(join(OUT, "logs"), { recursive: true, force: true });
  rmSync(join(OUT, "report.yaml"), { force: true });

  const interruption = new Interruption(log);

  let state: ClusterState | undefined;
  let controller: ProcessRecord | undefined;
  let failed = true;
  let exitCode = 1;
  try {
    const built = fromImage ? await buildImageAndHelm((line) => log(line)) : undefined;
    if (values.reuse) {
      state = readState(values.name);
      if (
        state === undefined ||
        !state.processes.filter((p) => p.name !== "gatehouse-controller").every(isAlive)
      ) {
        throw new Error(
          `--reuse: no running mini-cluster "${values.name}" (start one with: npm run minicluster -- start)`,
        );
      }
      log(`using the running mini-cluster "${state.name}" (${state.runDir})`);
      // A controller left running by an earlier --keep run: replace it (the code may have changed).
      for (const old of state.processes.filter((p) => p.name === "gatehouse-controller")) {
        log(`stopping the controller of an earlier run (pid ${old.pid}): ${await stopProcess(old, 20_000)}`);
      }
      state.processes = state.processes.filter((p) => p.name !== "gatehouse-controller");
      await saveState(state);
    } else {
      state = await startCluster({
        ...DEFAULTS,
        name: values.name,
        // The Services' proxy and load-balancer allocator serve the Gateways' own Services; host
        // infrastructure binds the Gateways' addresses from the same range itself.
        services: infrastructure === "kubernetes",
        images: fromImage ? [`${IMAGE_PATTERN}=${IMAGE_ARCHIVE}`] : [],
        log: (line) => log(line),
      });
    }
    log(`mini-cluster ready after ${elapsed()}`);
    const kube = Kube.fromFile(state.kubeconfig);
    interruption.check();

    // --- GatewayClass and controller -------------------------------------------------------
    await applyGatewayClass(kube, values["gateway-class"]);
    const iface = `ghgw-${state.name}`.slice(0, 15);
    if (!state.extraLinks.includes(iface)) state.extraLinks.push(iface);
    await saveState(state);
    let controllerLogFile: () => string;
    let running: ProcessRecord | undefined;
    if (built !== undefined) {
      // The controller as users install it: the chart, the image, a Pod.
      const output = await installController(
        infrastructure === "kubernetes"
          ? {
              infrastructure,
              helm: built.helm,
              kubeconfig: state.kubeconfig,
              digest: built.digest,
              adminPort: 9901,
            }
          : {
              infrastructure,
              helm: built.helm,
              kubeconfig: state.kubeconfig,
              digest: built.digest,
              addressPool: values["address-pool"],
              iface,
              adminPort: await freePort("0.0.0.0"),
              haproxyMetricsPort: await freePort("127.0.0.1"),
            },
      );
      log(`helm: ${output.split("\n").find((line) => line.startsWith("STATUS")) ?? "installed"}`);
      const runDir = state.runDir;
      controllerLogFile = () => controllerLog(runDir) ?? join(runDir, "logs", "controller.log");
    } else {
      // Short: HAProxy's unix sockets live under it (sun_path is 108 bytes).
      const controllerStateDir = join(state.runDir, "ctl");
      const args = [
        join(REPO, "bin", "gatehouse.js"),
        "controller",
        "--kubeconfig",
        state.kubeconfig,
        "--infrastructure",
        "host",
        "--address-pool",
        values["address-pool"],
      ];
      if (flags.has("interface")) args.push("--interface", iface);
      if (flags.has("state-dir")) args.push("--state-dir", controllerStateDir);
      if (flags.has("admin")) args.push("--admin", `127.0.0.1:${await freePort("127.0.0.1")}`);
      if (flags.has("haproxy-metrics"))
        args.push("--haproxy-metrics", `127.0.0.1:${await freePort("127.0.0.1")}`);
      if (flags.has("lease-namespace")) {
        await ensureNamespace(kube, "gatehouse-system");
        args.push("--lease-namespace", "gatehouse-system");
      }
      if (flags.has("log-format")) args.push("--log-format", "text");
      const logFile = join(state.runDir, "logs", "controller.log");
      controller = startProcess("gatehouse-controller", process.execPath, args, logFile, {
        env: {
          ...process.env,
          KUBECONFIG: state.kubeconfig,
          PATH: `${join(REPO, "node_modules", ".bin")}:${process.env["PATH"] ?? ""}`,
        },
        cwd: REPO,
      });
      await registerProcess(state, controller);
      log(`gatehouse controller (pid ${controller.pid}), log ${logFile}`);
      running = controller;
      controllerLogFile = () => logFile;
    }
    const gwcPath = `/apis/gateway.networking.k8s.io/v1/gatewayclasses/${values["gateway-class"]}`;
    try {
      await waitFor(
        `GatewayClass ${values["gateway-class"]} Accepted with supportedFeatures`,
        120_000,
        async () => {
          if (running !== undefined && !isAlive(running)) throw new Fatal("the controller exited");
          const gwc = await kube.request<{
            status?: {
              conditions?: Array<{ type: string; status: string }>;
              supportedFeatures?: Array<{ name: string }>;
            };
          }>("GET", gwcPath);
          const accepted = (gwc.status?.conditions ?? []).some(
            (c) => c.type === "Accepted" && c.status === "True",
          );
          return accepted && (gwc.status?.supportedFeatures ?? []).length > 0 ? true : undefined;
        },
      );
    } catch (error) {
      throw new Error(
        `${describe(error)}\n--- controller log (last lines) ---\n${tail(controllerLogFile())}`,
        { cause: error },
      );
    }
    log(`GatewayClass ${values["gateway-class"]} accepted after ${elapsed()}`);
    interruption.check();

    // --- the suite ---------------------------------------------------------------------------
    const suiteFlags = [
      `-gateway-class=${values["gateway-class"]}`,
      `-report-output=${join(OUT, "report.yaml")}`,
    ];
    const pass = (flag: string, value: string | undefined) => {
      if (value !== undefined && value !== "") suiteFlags.push(`-${flag}=${value}`);
    };
    pass("run-test", values["run-test"]);
    pass(
      "skip-tests",
      [...DEFAULT_SKIPPED_TESTS, values["skip-tests"] ?? ""].filter((t) => t !== "").join(","),
    );
    pass("supported-features", values["supported-features"]);
    pass("exempt-features", values["exempt-features"]);
    pass("conformance-profiles", values["conformance-profiles"]);
    pass("usable-address", values["usable-address"]);
    pass("unusable-address", values["unusable-address"]);
    if (values["all-gateway-features"]) suiteFlags.push("-all-gateway-features");
    if (values.debug) suiteFlags.push("-debug");
    suiteFlags.push(...extra);
    const goArgs = [
      "test",
      "./...",
      "-run",
      "^TestConformance$",
      "-count=1",
      "-timeout",
      values.timeout ?? "30m",
      "-v",
      "-args",
      ...suiteFlags,
    ];
    log(`go ${goArgs.join(" ")}  (in conformance/suite)`);
    const suiteStart = Date.now();
    exitCode = await runSuite("go", goArgs, {
      cwd: SUITE_DIR,
      env: {
        ...process.env,
        KUBECONFIG: state.kubeconfig,
        GOWORK: "off",
        GOFLAGS: "-mod=readonly",
        GOTOOLCHAIN: process.env["GOTOOLCHAIN"] ?? "local",
      },
      logFile: join(OUT, "suite.log"),
      quiet: values.quiet,
      children: interruption.children,
    });
    log(
      `go test exited with ${exitCode} after ${((Date.now() - suiteStart) / 1000).toFixed(1)} s (total ${elapsed()})`,
    );
    const reportFile = join(OUT, "report.yaml");
    const output = readFileSync(join(OUT, "suite.log"), "utf8");
    if (existsSync(reportFile)) {
      process.stdout.write(
        `\n${summarizeReport(readFileSync(reportFile, "utf8"), failedTests(output), timedOutTests(output))}`,
      );
      log(`report: ${reportFile}; suite output: ${join(OUT, "suite.log")}`);
    } else {
      log(`no report was written; suite output: ${join(OUT, "suite.log")}`);
    }
    failed = exitCode !== 0;
  } catch (error) {
    log(describe(error));
    failed = true;
  } finally {
    if (state !== undefined && failed) {
      const logs = join(OUT, "logs");
      keepLogs(state.runDir, logs);
      log(`logs kept in ${logs}`);
    }
    if (state !== undefined && !values.keep) {
      if (controller !== undefined) {
        const how = await stopProcess(controller, 20_000);
        log(`controller ${how}`);
        state.processes = state.processes.filter(
          (p) => p !== controller && !(p.pid === controller?.pid && p.name === controller.name),
        );
        await saveState(state).catch(() => undefined);
      }
      if (!values.reuse) {
        try {
          await stopCluster(state, (line) => log(line));
          log(`torn down (total ${elapsed()})`);
        } catch (error) {
          log(
            `${describe(error)}\n  retry with: npm run minicluster -- stop${values.name === DEFAULTS.name ? "" : ` --name ${values.name}`}`,
          );
          exitCode = exitCode === 0 ? 1 : exitCode;
        }
      }
    } else if (state !== undefined) {
      log(`left running: export KUBECONFIG=${state.kubeconfig}; stop with: npm run minicluster -- stop`);
    }
  }
  return failed && exitCode === 0 ? 1 : exitCode;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  log(describe(error));
  process.exitCode = 1;
}
