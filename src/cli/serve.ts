// `gatehouse serve`: standalone mode. The file provider watches --config; every change is translated
// and applied to an HAProxy that runs as our child; the admin server shows readiness, status, the
// IR in effect and metrics. Stops cleanly (HAProxy included) on SIGTERM/SIGINT.
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseAdminAddress } from "../admin/server.ts";
import { UsageError } from "../errors.ts";
import { createLogger, parseLogFormat, parseLogLevel } from "../observability/logger.ts";
import { startServe } from "../serve/start.ts";
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

  const stopped = new Promise<string>((done) => {
    process.once("SIGTERM", () => done("SIGTERM"));
    process.once("SIGINT", () => done("SIGINT"));
  });
  const serve = await startServe({
    config: values.config,
    stateDir,
    logger,
    admin,
    haproxy: values.haproxy ?? "haproxy",
    controllerName: values["controller-name"] ?? DEFAULT_CONTROLLER_NAME,
    serverSlots: slots,
    hardStopAfter,
    metricsAddress,
    now: () => io.now(),
  });
  const signal = await stopped;
  logger.info({ signal }, "stopping");
  await serve.stop({ graceful: true, timeoutMs: 5000 });
  logger.info("stopped");
  return 0;
}
