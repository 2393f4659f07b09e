// `gatehouse dataplane`: one Gateway's data-plane pod in `--infrastructure kubernetes` (the
// infrastructure reconciler generates this command line). Runs HAProxy and takes the Gateway's
// configuration from the controller's config stream; see src/dataplane/agent/agent.ts.
import { parseArgs } from "node:util";
import { parseAdminAddress } from "../admin/server.ts";
import { startAgent } from "../dataplane/agent/agent.ts";
import { UsageError } from "../errors.ts";
import { createLogger, type LogFormat, type LogLevel } from "../observability/logger.ts";
import { durationFlag } from "./flags.ts";
import {
  DATAPLANE_OPTIONS,
  OBSERVABILITY_HELP,
  parseDataplaneFlags,
  type DataplaneFlags,
} from "./dataplane-flags.ts";
import type { Command } from "./main.ts";

export const DEFAULT_AGENT_STATE_DIR = "/var/run/gatehouse";

const USAGE = `Usage: gatehouse dataplane --controller HOST:PORT --gateway NAMESPACE/NAME --tls-dir DIR [flags]

Runs one Gateway's data plane (in a pod of its Deployment, --infrastructure kubernetes): HAProxy,
programmed with the configuration the controller streams to this Gateway over mutual TLS. Keeps
serving its last configuration while the controller is away; on SIGTERM stops being ready, serves
for --shutdown-drain, then stops HAProxy gracefully.

Flags:
      --controller HOST:PORT The controller's config stream. Required.
      --gateway NS/NAME      The Gateway this pod serves (must be the one its certificate names).
                             Required.
      --tls-dir DIR          tls.crt, tls.key (the Gateway's client certificate) and ca.crt,
                             re-read on every connection. Required.
      --admin HOST:PORT      /healthz, /ready, /metrics with per-route metrics
                             (default 0.0.0.0:9901).
      --state-dir DIR        haproxy.cfg, sockets and the last applied configuration
                             (default ${DEFAULT_AGENT_STATE_DIR}).
      --shutdown-drain DUR   Time /ready answers 503 before HAProxy stops (default 5s).
      --haproxy BIN          The haproxy binary (default: haproxy on PATH).
      --server-slots N       Pre-allocated server slots per backend (default 16).
      --spare-backends N     Spare backends new plain-HTTP Services take without a reload
                             (default 16; 0: none).
      --hard-stop-after DUR  How long old HAProxy workers may keep serving after a reload or
                             at shutdown (default 10m).
      --haproxy-metrics HOST:PORT
                             Loopback address of HAProxy's Prometheus exporter
                             (default 127.0.0.1:9902; included in /metrics).
      --threads N            HAProxy nbthread (default: HAProxy's).
      --maxconn N            HAProxy maxconn (default: HAProxy's).
      --timeout-connect DUR  HAProxy timeout connect (default 5s).
      --timeout-client DUR   HAProxy timeout client for HTTP (default 60s).
      --timeout-server DUR   HAProxy timeout server for HTTP (default 300s).
      --log-format json|text Log format (default json).
      --log-level LEVEL      trace, debug, info, warn, error (default info).
      --udp-idle-timeout S   UDP listeners: seconds an idle client flow is kept (default 60).
      --udp-max-flows N      UDP listeners: client flows kept at most (default 4096).
${OBSERVABILITY_HELP}
  -h, --help                 Show this help.
  -V, --version              Show the version.
`;

export const dataplaneCommand: Command = {
  name: "dataplane",
  summary: "Run one Gateway's data plane, configured by the controller (--infrastructure kubernetes)",
  usage: USAGE,
  run: runDataplane,
};

/** The shared data-plane flags that apply to a pod (not the admin token flags nor controller-name). */
const SHARED = Object.fromEntries(
  Object.entries(DATAPLANE_OPTIONS).filter(
    ([name]) => !["admin", "admin-token-file", "admin-insecure-no-auth", "controller-name"].includes(name),
  ),
) as Omit<
  typeof DATAPLANE_OPTIONS,
  "admin" | "admin-token-file" | "admin-insecure-no-auth" | "controller-name"
>;

export interface DataplaneArgs {
  controller: string;
  gateway: { namespace: string; name: string };
  tlsDir: string;
  admin: { host: string; port: number };
  stateDir: string;
  shutdownDrainMs: number;
  haproxy: string;
  serverSlots: number;
  spareBackends: number;
  hardStopAfter: string;
  metricsAddress: string;
  threads: number | undefined;
  maxconn: number | undefined;
  timeouts: { connectMs?: number; clientMs?: number; serverMs?: number };
  logFormat: LogFormat;
  logLevel: LogLevel;
  udp: { idleTimeoutMs: number; maxFlows: number };
  accessLog: DataplaneFlags["accessLog"];
  routeMetrics: boolean;
}

export function parseDataplaneArgs(args: readonly string[]): DataplaneArgs {
  const { values } = parseArgs({
    args: [...args],
    options: {
      controller: { type: "string" },
      gateway: { type: "string" },
      "tls-dir": { type: "string" },
      admin: { type: "string" },
      "shutdown-drain": { type: "string" },
      threads: { type: "string" },
      maxconn: { type: "string" },
      "timeout-connect": { type: "string" },
      "timeout-client": { type: "string" },
      "timeout-server": { type: "string" },
      ...SHARED,
    },
    strict: true,
    allowPositionals: false,
  });
  const controller = values.controller ?? "";
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(controller))
    throw new UsageError("--controller HOST:PORT is required");
  const gw = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)$/.exec(
    values.gateway ?? "",
  );
  if (gw === null) throw new UsageError("--gateway NAMESPACE/NAME is required");
  const tlsDir = values["tls-dir"];
  if (tlsDir === undefined || tlsDir === "") throw new UsageError("--tls-dir DIR is required");
  // The admin server of a pod answers the kubelet's probes on the pod IP: all interfaces, and it
  // serves nothing secret (no configuration, no keys), so it has no token.
  const admin = parseAdminAddress(values.admin ?? "0.0.0.0:9901");
  const flags = parseDataplaneFlags({ ...values, admin: "127.0.0.1:0" }, DEFAULT_AGENT_STATE_DIR);
  const int = (flag: string, raw: string | undefined, max: number): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new UsageError(`--${flag} must be an integer in 1..${max}`);
    return n;
  };
  const ms = (flag: string, raw: string | undefined): number | undefined =>
    raw === undefined ? undefined : durationFlag(`--${flag}`, raw, 0);
  const connectMs = ms("timeout-connect", values["timeout-connect"]);
  const clientMs = ms("timeout-client", values["timeout-client"]);
  const serverMs = ms("timeout-server", values["timeout-server"]);
  return {
    controller,
    gateway: { namespace: gw[1] ?? "", name: gw[3] ?? "" },
    tlsDir,
    admin,
    stateDir: flags.stateDir,
    shutdownDrainMs:
      values["shutdown-drain"] === undefined
        ? 5000
        : durationFlag("--shutdown-drain", values["shutdown-drain"], 5000),
    haproxy: flags.haproxy,
    serverSlots: flags.serverSlots,
    spareBackends: flags.spareBackends,
    hardStopAfter: flags.hardStopAfter,
    metricsAddress: flags.metricsAddress,
    threads: int("threads", values.threads, 64),
    maxconn: int("maxconn", values.maxconn, 10_000_000),
    timeouts: {
      ...(connectMs !== undefined ? { connectMs } : {}),
      ...(clientMs !== undefined ? { clientMs } : {}),
      ...(serverMs !== undefined ? { serverMs } : {}),
    },
    logFormat: flags.logFormat,
    logLevel: flags.logLevel,
    udp: flags.udp,
    accessLog: flags.accessLog,
    routeMetrics: flags.routeMetrics,
  };
}

async function runDataplane(args: readonly string[]): Promise<number> {
  const a = parseDataplaneArgs(args);
  const logger = createLogger({ format: a.logFormat, level: a.logLevel });
  const signalled = new Promise<string>((done) => {
    process.once("SIGTERM", () => done("SIGTERM"));
    process.once("SIGINT", () => done("SIGINT"));
  });
  const agent = await startAgent({
    controller: a.controller,
    gateway: a.gateway,
    tlsDir: a.tlsDir,
    admin: a.admin,
    stateDir: a.stateDir,
    shutdownDrainMs: a.shutdownDrainMs,
    logger,
    haproxy: a.haproxy,
    serverSlots: a.serverSlots,
    spareBackends: a.spareBackends,
    hardStopAfter: a.hardStopAfter,
    metricsAddress: a.metricsAddress,
    udp: a.udp,
    accessLog: a.accessLog,
    routeMetrics: a.routeMetrics,
    ...(a.threads !== undefined ? { threads: a.threads } : {}),
    ...(a.maxconn !== undefined ? { maxconn: a.maxconn } : {}),
    ...(Object.keys(a.timeouts).length > 0 ? { timeouts: a.timeouts } : {}),
  });
  const signal = await signalled;
  logger.info({ signal }, "signal received");
  await agent.shutdown();
  return 0;
}
