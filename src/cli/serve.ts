// `gatehouse serve`: standalone mode. The file provider watches --config; every change is translated
// and applied to an HAProxy that runs as our child; the admin server shows readiness, status, the
// IR in effect and metrics. Stops cleanly (HAProxy included) on SIGTERM/SIGINT.
import { tmpdir } from "node:os";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ensurePrivateDir } from "../dataplane/haproxy/process/lock.ts";
import { UsageError } from "../errors.ts";
import { createLogger } from "../observability/logger.ts";
import { startServe } from "../serve/start.ts";
import { DEFAULT_CONTROLLER_NAME } from "../translate/index.ts";
import {
  ADMIN_AUTH_HELP,
  OBSERVABILITY_HELP,
  DATAPLANE_OPTIONS,
  parseDataplaneFlags,
  perInstanceStateDir,
} from "./dataplane-flags.ts";
import type { CliIO, Command } from "./main.ts";

const USAGE = `Usage: gatehouse serve --config PATH [flags]

Runs Gatehouse standalone: watches the Gateway API resources under PATH, translates every change
and programs an HAProxy it runs as a child process (Debian's haproxy 2.6; master-worker mode).

Flags:
  -c, --config PATH          A YAML file or a directory (searched recursively). Required.
      --admin HOST:PORT      Admin HTTP server: /ready, /status, /config, /metrics,
                             /metrics/haproxy (default 127.0.0.1:9901).
${ADMIN_AUTH_HELP}
      --state-dir DIR        Where haproxy.cfg, maps, certificates and sockets live; one
                             Gatehouse at a time (locked). Default: one per instance,
                             $XDG_RUNTIME_DIR/gatehouse/<hash> or /tmp/gatehouse-<uid>/<hash>,
                             the hash of the config path and admin address.
      --haproxy BIN          The haproxy binary (default: haproxy on PATH).
      --controller-name NAME The GatewayClass controllerName to answer to
                             (default ${DEFAULT_CONTROLLER_NAME}).
      --server-slots N       Pre-allocated server slots per backend (default 16); endpoint
                             changes within the slots never reload HAProxy.
      --spare-backends N     Spare HAProxy backends (gh_spare_<n>) that new plain-HTTP
                             Services take without a reload (default 16; 0: none).
      --hard-stop-after DUR  How long old HAProxy workers may keep serving long-lived
                             connections (WebSockets) after a reload (default 10m).
      --haproxy-metrics HOST:PORT
                             Loopback address for HAProxy's Prometheus exporter
                             (default 127.0.0.1:9902; proxied at /metrics/haproxy).
      --log-format json|text Log format (default json).
      --log-level LEVEL      trace, debug, info, warn, error (default info).
      --udp-idle-timeout S   UDP listeners: seconds an idle client flow is kept (default 60).
      --udp-max-flows N      UDP listeners: client flows kept at most, the least recently
                             active evicted first (default 4096).
${OBSERVABILITY_HELP}
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
    options: { config: { type: "string", short: "c" }, ...DATAPLANE_OPTIONS },
    strict: true,
    allowPositionals: false,
  });
  if (values.config === undefined || values.config === "") throw new UsageError("--config PATH is required");
  const config = resolve(values.config);
  const flags = parseDataplaneFlags(values, (admin) =>
    perInstanceStateDir([config, `${admin.host}:${admin.port}`], {
      runtimeDir: process.env["XDG_RUNTIME_DIR"],
      tmpDir: tmpdir(),
      uid: process.getuid?.() ?? 0,
    }),
  );
  // A per-instance directory lives in a shared place: its parent must be ours alone.
  if (values["state-dir"] === undefined) await ensurePrivateDir(dirname(flags.stateDir));
  const logger = createLogger({ format: flags.logFormat, level: flags.logLevel });

  const stopped = new Promise<string>((done) => {
    process.once("SIGTERM", () => done("SIGTERM"));
    process.once("SIGINT", () => done("SIGINT"));
  });
  const serve = await startServe({
    config,
    stateDir: flags.stateDir,
    logger,
    admin: flags.admin,
    haproxy: flags.haproxy,
    controllerName: flags.controllerName,
    serverSlots: flags.serverSlots,
    spareBackends: flags.spareBackends,
    hardStopAfter: flags.hardStopAfter,
    metricsAddress: flags.metricsAddress,
    udp: flags.udp,
    accessLog: flags.accessLog,
    routeMetrics: flags.routeMetrics,
    now: () => io.now(),
  });
  const signal = await stopped;
  logger.info({ signal }, "stopping");
  await serve.stop({ graceful: true, timeoutMs: 5000 });
  logger.info("stopped");
  return 0;
}
