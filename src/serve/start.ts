// The serve pipeline, wired: provider → serve loop (translate, render, apply) → HAProxy as a child
// process, plus the admin server. `gatehouse serve` runs it with the file provider until a signal;
// `gatehouse controller` runs it with the Kubernetes provider, host infrastructure and the status
// writer (options `provider`, `infrastructure`, `onStatuses`); the end-to-end tests run it
// in-process. `stop()` takes everything down (HAProxy included).
//
// One Gatehouse per state directory: it is locked for the life of the pipeline (a second one fails
// at once, naming the holder), and an HAProxy an earlier Gatehouse left there is stopped before
// ours starts: the data plane lives and dies with the control plane.
import { stat } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { join, resolve } from "node:path";
import type { Logger } from "pino";
import { launchAdmin, type AdminListen } from "../admin/launch.ts";
import type { AdminServer } from "../admin/server.ts";
import { AdminStateStore } from "../admin/state.ts";
import { canBindExclusively, HAProxyApplier } from "../dataplane/haproxy/apply/applier.ts";
import { nodeFileWriter } from "../dataplane/haproxy/apply/files.ts";
import {
  findHAProxy,
  HAProxyProcess,
  type HAProxyProcessEvent,
  type RestartPolicy,
} from "../dataplane/haproxy/process/manager.ts";
import { lockStateDir, type StateDirLock } from "../dataplane/haproxy/process/lock.ts";
import { stopStaleHAProxy } from "../dataplane/haproxy/process/stale.ts";
import type { RenderOptions } from "../dataplane/haproxy/render/index.ts";
import { workerRuntimeApi } from "../dataplane/haproxy/runtime/socket.ts";
import { CombinedDataplane } from "../dataplane/udp/dataplane.ts";
import { UdpForwarder } from "../dataplane/udp/forwarder.ts";
import { GatehouseError } from "../errors.ts";
import { udpMetrics } from "../dataplane/udp/metrics.ts";
import { nodeUdpSockets } from "../dataplane/udp/sockets.ts";
import { createMetrics, type Metrics } from "../observability/metrics.ts";
import {
  AccessLogReceiver,
  openSink,
  type AccessLogFormat,
  type AccessLogOutput,
} from "../observability/access-log.ts";
import {
  createRouteMetrics,
  runtimeRuleStatsSource,
  type RouteMetrics,
} from "../observability/route-metrics.ts";
import { FileProvider } from "../provider/file/provider.ts";
import type { Provider, ProviderUpdate } from "../provider/types.ts";
import type { GatewayInfrastructure } from "../infra/types.ts";
import type { StatusEntry } from "../status/types.ts";
import { DEFAULT_CONTROLLER_NAME } from "../translate/index.ts";
import { hostAddresses, type InterfaceAddress } from "./addresses.ts";
import { ServeLoop } from "./loop.ts";

export interface ServeOptions {
  /** A YAML file or a directory (searched recursively), watched by a FileProvider. */
  config?: string;
  /** Any other provider (instead of `config`), e.g. the Kubernetes provider. Stopped by stop(). */
  provider?: Provider;
  /** Address management between translation and rendering (see ServeLoopOptions.infrastructure). */
  infrastructure?: GatewayInfrastructure;
  /** Receives the final statuses of every processed update (e.g. the Kubernetes status writer). */
  onStatuses?: (statuses: readonly StatusEntry[], update: ProviderUpdate) => void;
  /** Where haproxy.cfg, maps, certificates and sockets live (created if missing). */
  stateDir: string;
  logger: Logger;
  /**
   * Admin server address (default 127.0.0.1:9901; port 0 picks a free one) and authentication
   * (a token file, or the explicit opt-out needed to serve a non-loopback address without one).
   */
  admin?: AdminListen;
  /** The haproxy binary: a path, or a name looked up on PATH (default "haproxy"). */
  haproxy?: string;
  controllerName?: string;
  /** Pre-allocated server slots per backend (default 16). */
  serverSlots?: number;
  /** Spare backends new Services take without a reload (default 16). */
  spareBackends?: number;
  /** How long old workers may keep serving after a reload (default 10m). */
  hardStopAfter?: string;
  /** Loopback HOST:PORT of HAProxy's Prometheus exporter (default 127.0.0.1:9902). */
  metricsAddress?: string;
  /** Addresses reported for Gateways bound on all interfaces (default: this host's). */
  hostAddresses?: readonly string[];
  /** The clock (default the system's). */
  now?: () => Date;
  /** File provider debounce (default the provider's). */
  debounceMs?: number;
  /** HAProxy restart policy after a crash (default the process manager's). */
  restart?: RestartPolicy;
  /** Called with every provider update, before the loop processes it. */
  onUpdate?: (update: ProviderUpdate) => void;
  /** Called after each processed update. */
  onProcessed?: (generation: number) => void;
  /** UDP forwarder: flow idle timeout (default 60 s) and most flows at once (default 4096). */
  udp?: { idleTimeoutMs?: number; maxFlows?: number };
  /** Per-route counters in HAProxy, on /metrics (default true). */
  routeMetrics?: boolean;
  /** HTTP access logs (default off here; `gatehouse serve` defaults to JSON lines on stdout). */
  accessLog?: { format: AccessLogFormat; output: AccessLogOutput; stdout?: NodeJS.WritableStream };
}

/** `P`: the provider's type (a FileProvider unless `provider` was given). */
export interface ServeHandle<P extends Provider = FileProvider> {
  /** `http://host:port` of the admin server. */
  readonly adminUrl: string;
  readonly stateDir: string;
  readonly store: AdminStateStore;
  /** The admin server (its HTTP side runs in a worker thread). */
  readonly admin: AdminServer;
  readonly metrics: Metrics;
  readonly haproxy: HAProxyProcess;
  readonly applier: HAProxyApplier;
  /** The data plane of UDP listeners. */
  readonly udp: UdpForwarder;
  /** The access log receiver (absent when access logs are off). */
  readonly accessLog: AccessLogReceiver | undefined;
  readonly loop: ServeLoop;
  readonly provider: P;
  /** Stops watching, lets the loop finish, stops HAProxy and the admin server. Idempotent. */
  stop(options?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
}

/** `--config` names nothing: an error at start (a path that disappears later keeps the last good config). */
export class ConfigPathError extends GatehouseError {
  readonly path: string;
  constructor(path: string, options?: ErrorOptions) {
    super(`--config ${path}: no such file or directory; give the YAML file or directory to serve`, options);
    this.path = path;
  }
}

/** An address Gatehouse itself needs (not a listener) is held by another process. */
export class AddressInUseError extends GatehouseError {}

export async function startServe<P extends Provider = FileProvider>(
  options: ServeOptions & { provider?: P },
): Promise<ServeHandle<P>> {
  const config = options.config;
  if (options.provider === undefined && config === undefined)
    throw new Error("startServe: give `config` or `provider`");
  if (options.provider === undefined && config !== undefined) {
    try {
      await stat(config);
    } catch (err) {
      throw new ConfigPathError(config, { cause: err });
    }
  }
  const { logger } = options;
  const now = options.now ?? (() => new Date());
  const stateDir = resolve(options.stateDir);
  const metricsAddress = options.metricsAddress ?? "127.0.0.1:9902";
  const binary = findHAProxy(options.haproxy ?? "haproxy");
  const admin = options.admin ?? { host: "127.0.0.1", port: 9901 };

  const lock = await lockStateDir(stateDir, {
    admin: `${admin.host}:${admin.port}`,
    ...(config !== undefined ? { config: resolve(config) } : {}),
  });
  try {
    return await startLocked(options, { config, logger, now, stateDir, metricsAddress, binary, admin, lock });
  } catch (err) {
    await lock.release();
    throw err;
  }
}

interface Prepared {
  config: string | undefined;
  logger: Logger;
  now: () => Date;
  stateDir: string;
  metricsAddress: string;
  binary: string;
  admin: AdminListen;
  lock: StateDirLock;
}

async function startLocked<P extends Provider>(
  options: ServeOptions & { provider?: P },
  { config, logger, now, stateDir, metricsAddress, binary, admin, lock }: Prepared,
): Promise<ServeHandle<P>> {
  const masterSocket = join(stateDir, "master.sock");
  const pidFile = join(stateDir, "haproxy.pid");
  const stale = await stopStaleHAProxy(pidFile, masterSocket);
  if (stale !== undefined)
    logger.warn(
      { pid: stale.pid, by: stale.stoppedBy },
      "stopped the HAProxy an earlier Gatehouse left running",
    );
  const [metricsHost, metricsPort] = splitHostPort(metricsAddress);
  const metricsProblem = await canBindExclusively(metricsHost, Number(metricsPort));
  if (metricsProblem !== undefined)
    throw new AddressInUseError(
      `--haproxy-metrics ${metricsAddress}: ${metricsProblem}; give this instance its own address`,
    );
  const renderOptions: RenderOptions = {
    stateDir,
    runtimeSocket: join(stateDir, "haproxy.sock"),
    serverSlots: options.serverSlots ?? 16,
    spareBackends: options.spareBackends ?? 16,
    hardStopAfter: options.hardStopAfter ?? "10m",
    metricsAddress,
    ...(options.routeMetrics !== false ? { ruleCounters: true } : {}),
  };
  const store = new AdminStateStore(now);
  const metrics = createMetrics();
  const routeMetrics = createRouteMetrics(
    metrics.registry,
    runtimeRuleStatsSource(workerRuntimeApi(masterSocket)),
    renderOptions,
    (err) => logger.debug({ err }, "could not read HAProxy's rule counters"),
  );
  const accessLog = await startAccessLog(options, routeMetrics, logger);
  if (accessLog !== undefined)
    renderOptions.accessLog = { address: accessLog.address, token: accessLog.receiver.token };
  const haproxy = new HAProxyProcess({
    masterSocket,
    pidFile,
    binary,
    logger: logger.child({ component: "haproxy" }),
    ...(options.restart !== undefined ? { restart: options.restart } : {}),
  });
  haproxy.on((event) => {
    const text = describeProcessEvent(event);
    if (text === undefined) return;
    store.recordProcessEvent(text);
    if (event.type === "exited" && !event.expected) logger.error({ event }, text);
    else logger.info({ event }, text);
  });
  const applier = new HAProxyApplier({
    stateDir,
    process: haproxy,
    runtime: workerRuntimeApi(masterSocket),
    files: nodeFileWriter,
    render: renderOptions,
  });
  const udp = new UdpForwarder({
    sockets: nodeUdpSockets,
    metrics: udpMetrics(metrics),
    logger: logger.child({ component: "udp" }),
    ...(options.udp?.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.udp.idleTimeoutMs } : {}),
    ...(options.udp?.maxFlows !== undefined ? { maxFlows: options.udp.maxFlows } : {}),
  });
  const loop = new ServeLoop({
    controllerName: options.controllerName ?? DEFAULT_CONTROLLER_NAME,
    renderOptions,
    dataplane: new CombinedDataplane(
      {
        apply: async (ir) => {
          const outcome = await applier.apply(ir);
          routeMetrics.setIR(ir);
          if (outcome.spares !== undefined) store.recordSpares(outcome.spares);
          return outcome;
        },
      },
      udp,
    ),
    store,
    metrics,
    logger,
    hostAddresses: options.hostAddresses ?? hostAddresses(interfaces()),
    now,
    ...(options.onProcessed !== undefined ? { onProcessed: options.onProcessed } : {}),
    ...(options.infrastructure !== undefined ? { infrastructure: options.infrastructure } : {}),
    ...(options.onStatuses !== undefined ? { onStatuses: options.onStatuses } : {}),
  });
  const launched = await launchAdmin({
    listen: admin,
    state: store,
    registry: metrics.registry,
    haproxyMetricsUrl: `http://${metricsAddress}/metrics`,
    logger,
  });
  const server = launched.server;
  const adminUrl = server.address?.url ?? `http://${admin.host}:${admin.port}`;
  logger.info({ admin: adminUrl, stateDir, config }, "gatehouse serve starting");
  // Without `provider`, P is FileProvider (its default): the cast only restates that.
  const provider: P =
    options.provider ??
    (new FileProvider({
      path: config ?? "",
      onWarning: (w) => logger.warn(w),
      ...(options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {}),
    }) as Provider as P);

  let stopping: Promise<void> | undefined;
  const stop = (how: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> =>
    (stopping ??= (async () => {
      await provider.stop();
      loop.stop();
      await loop.idle();
      await haproxy.stop({ graceful: how.graceful ?? true, timeoutMs: how.timeoutMs ?? 5000 });
      await udp.close();
      await accessLog?.receiver.close();
      await launched.close();
      await lock.release();
    })());

  try {
    await provider.start((update) => {
      options.onUpdate?.(update);
      loop.submit(update);
    });
  } catch (err) {
    await stop({ graceful: false });
    throw err;
  }
  return {
    adminUrl,
    stateDir,
    store,
    admin: server,
    metrics,
    haproxy,
    applier,
    udp,
    accessLog: accessLog?.receiver,
    loop,
    provider,
    stop,
  };
}

/** The access log receiver when access logs are on, bound before HAProxy's first configuration. */
async function startAccessLog(
  options: ServeOptions,
  routeMetrics: RouteMetrics,
  logger: Logger,
): Promise<{ receiver: AccessLogReceiver; address: string } | undefined> {
  const o = options.accessLog;
  if (o === undefined || o.format.kind === "off") return undefined;
  let warned = false;
  const receiver = new AccessLogReceiver({
    format: o.format,
    sink: openSink(o.output, o.stdout),
    identity: (rid) => routeMetrics.identity(rid),
    onRecord: (r) => routeMetrics.observeDuration(r.rid, r.Ta),
    onError: (err) => {
      if (warned) return;
      warned = true; // once: a flood of bad datagrams must not flood the log
      logger.warn({ err }, "access log: a line could not be used (reported once)");
    },
  });
  const address = await receiver.start();
  return { receiver, address };
}

/** `host:port` or `[v6]:port` → [host, port]. */
function splitHostPort(address: string): [string, string] {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  return m === null ? [address, ""] : [m[1] ?? "", m[2] ?? ""];
}

function interfaces(): InterfaceAddress[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined)
    .map((i) => ({ address: i.address, family: i.family, internal: i.internal }));
}

/** One line for /status dataplane.events and the log; undefined for events not worth recording. */
export function describeProcessEvent(event: HAProxyProcessEvent): string | undefined {
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
