// `gatehouse serve`: standalone mode. The file provider watches --config; every change is translated
// and applied to an HAProxy that runs as our child; the admin server shows readiness, status, the
// IR in effect and metrics. Stops cleanly (HAProxy included) on SIGTERM/SIGINT.
import { networkInterfaces, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseAdminAddress, startAdminServer } from "../admin/server.ts";
import { AdminStateStore } from "../admin/state.ts";
import { HAProxyApplier } from "../dataplane/haproxy/apply/applier.ts";
import { nodeFileWriter } from "../dataplane/haproxy/apply/files.ts";
import { findHAProxy, HAProxyProcess } from "../dataplane/haproxy/process/manager.ts";
import type { RenderOptions } from "../dataplane/haproxy/render/index.ts";
import { workerRuntimeApi } from "../dataplane/haproxy/runtime/socket.ts";
import { UsageError } from "../errors.ts";
import { createLogger, parseLogFormat, parseLogLevel } from "../observability/logger.ts";
import { createMetrics } from "../observability/metrics.ts";
import { FileProvider } from "../provider/file/provider.ts";
import { hostAddresses, type InterfaceAddress } from "../serve/addresses.ts";
import { ServeLoop } from "../serve/loop.ts";
import { DEFAULT_CONTROLLER_NAME } from "../translate/index.ts";
import type { CliIO, Command } from "./main.ts";

const DEFAULT_STATE_DIR = join(tmpdir(), "gatehouse");

const USAGE = `Usage: gatehouse serve --config PATH [flags]

Runs Gatehouse standalone: watches the Gateway API resources under PATH, translates every change
and programs an HAProxy it runs as a child process (Debian's haproxy 2.6; master-worker mode).

Flags:
  -c, --config PATH          A YAML file or a directory (searched recursively). Required.
      --admin HOST:PORT      Admin HTTP server: /ready, /status, /config, /metrics,
                             /metrics/haproxy (default 127.0.0.1:9901).
      --state-dir DIR        Where haproxy.cfg, maps, certificates and sockets live
                             (default ${DEFAULT_STATE_DIR}).
      --haproxy BIN          The haproxy binary (default: haproxy on PATH).
      --controller-name NAME The GatewayClass controllerName to answer to
                             (default ${DEFAULT_CONTROLLER_NAME}).
      --server-slots N       Pre-allocated server slots per backend (default 16); endpoint
                             changes within the slots never reload HAProxy.
      --hard-stop-after DUR  How long old HAProxy workers may keep serving long-lived
                             connections (WebSockets) after a reload (default 10m).
      --haproxy-metrics HOST:PORT
                             Loopback address for HAProxy's Prometheus exporter
                             (default 127.0.0.1:9902; proxied at /metrics/haproxy).
      --log-format json|text Log format (default json).
      --log-level LEVEL      trace, debug, info, warn, error (default info).
  -h, --help                 Show this help.
`;

export const serveCommand: Command = {
  name: "serve",
  summary: "Run the gateway standalone on YAML files, with HAProxy as the data plane",
  usage: USAGE,
  run: runServe,
};

async function runServe(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      config: { type: "string", short: "c" },
      admin: { type: "string" },
      "state-dir": { type: "string" },
      haproxy: { type: "string" },
      "controller-name": { type: "string" },
      "server-slots": { type: "string" },
      "hard-stop-after": { type: "string" },
      "haproxy-metrics": { type: "string" },
      "log-format": { type: "string" },
      "log-level": { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.config === undefined || values.config === "") throw new UsageError("--config PATH is required");
  const admin = parseAdminAddress(values.admin ?? "127.0.0.1:9901");
  const stateDir = resolve(values["state-dir"] ?? DEFAULT_STATE_DIR);
  const slots = Number(values["server-slots"] ?? "16");
  if (!Number.isInteger(slots) || slots < 1 || slots > 4096)
    throw new UsageError("--server-slots must be 1..4096");
  const hardStopAfter = values["hard-stop-after"] ?? "10m";
  const metricsAddress = values["haproxy-metrics"] ?? "127.0.0.1:9902";
  const logger = createLogger({
    format: parseLogFormat(values["log-format"] ?? "json"),
    level: parseLogLevel(values["log-level"] ?? "info"),
  });
  const binary = findHAProxy(values.haproxy ?? "haproxy");

  await nodeFileWriter.mkdir(stateDir);
  const masterSocket = join(stateDir, "master.sock");
  const renderOptions: RenderOptions = {
    stateDir,
    runtimeSocket: join(stateDir, "haproxy.sock"),
    serverSlots: slots,
    hardStopAfter,
    metricsAddress,
  };
  const store = new AdminStateStore(() => io.now());
  const metrics = createMetrics();
  const process_ = new HAProxyProcess({
    masterSocket,
    binary,
    logger: logger.child({ component: "haproxy" }),
  });
  process_.on((event) => {
    const text = describeEvent(event);
    if (text === undefined) return;
    store.recordProcessEvent(text);
    if (event.type === "exited" && !event.expected) logger.error({ event }, text);
    else logger.info({ event }, text);
  });
  const applier = new HAProxyApplier({
    stateDir,
    process: process_,
    runtime: workerRuntimeApi(masterSocket),
    files: nodeFileWriter,
    render: renderOptions,
  });
  const loop = new ServeLoop({
    controllerName: values["controller-name"] ?? DEFAULT_CONTROLLER_NAME,
    renderOptions,
    dataplane: applier,
    store,
    metrics,
    logger,
    hostAddresses: hostAddresses(interfaces()),
    now: () => io.now(),
  });
  const server = await startAdminServer({
    state: store,
    registry: metrics.registry,
    host: admin.host,
    port: admin.port,
    haproxyMetricsUrl: `http://${metricsAddress}/metrics`,
    onError: (message, cause) => logger.warn({ err: cause }, message),
  });
  logger.info({ admin: server.address?.url, stateDir, config: values.config }, "gatehouse serve starting");
  const provider = new FileProvider({ path: values.config, onWarning: (w) => logger.warn(w) });

  const stopped = new Promise<string>((done) => {
    process.once("SIGTERM", () => done("SIGTERM"));
    process.once("SIGINT", () => done("SIGINT"));
  });
  await provider.start((update) => loop.submit(update));
  const signal = await stopped;
  logger.info({ signal }, "stopping");
  await provider.stop();
  await loop.idle();
  await process_.stop({ graceful: true, timeoutMs: 5000 });
  await server.close();
  logger.info("stopped");
  return 0;
}

function interfaces(): InterfaceAddress[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined)
    .map((i) => ({ address: i.address, family: i.family, internal: i.internal }));
}

function describeEvent(event: Parameters<Parameters<HAProxyProcess["on"]>[0]>[0]): string | undefined {
  switch (event.type) {
    case "started":
      return `HAProxy started (master pid ${event.pid})`;
    case "reloaded":
      return `HAProxy reloaded (workers ${event.workers.join(", ")})`;
    case "exited":
      return event.expected
        ? `HAProxy stopped`
        : `HAProxy exited unexpectedly (code ${event.code}, signal ${event.signal}); restarting`;
    case "restart-scheduled":
      return `HAProxy restart ${event.attempt} in ${event.delayMs} ms`;
    case "restarted":
      return `HAProxy restarted (master pid ${event.pid}, attempt ${event.attempt})`;
    case "restart-failed":
      return `HAProxy restart ${event.attempt} failed: ${event.error.message}`;
    case "gave-up":
      return `HAProxy could not be restarted after ${event.attempts} attempts`;
  }
}
