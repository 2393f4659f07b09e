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
import { resolve } from "node:path";
import type { Logger } from "pino";
import type { AdminListen } from "../admin/launch.ts";
import type { HAProxyApplier } from "../dataplane/haproxy/apply/applier.ts";
import {
  findHAProxy,
  type HAProxyProcess,
  type RestartPolicy,
} from "../dataplane/haproxy/process/manager.ts";
import { lockStateDir, type StateDirLock } from "../dataplane/haproxy/process/lock.ts";
import {
  DEFAULT_METRICS_ADDRESS,
  openLocalDataplane,
  type LocalAccessLogOptions,
} from "../dataplane/local.ts";
import type { UdpForwarder } from "../dataplane/udp/forwarder.ts";
import { GatehouseError } from "../errors.ts";
import type { AccessLogReceiver } from "../observability/access-log.ts";
import { FileProvider } from "../provider/file/provider.ts";
import type { Provider, ProviderUpdate } from "../provider/types.ts";
import type { GatewayInfrastructure } from "../infra/types.ts";
import type { StatusEntry } from "../status/types.ts";
import { hostAddresses, type InterfaceAddress } from "./addresses.ts";
import { startControlPlane, type ControlPlaneHandle, type ControlPlaneOptions } from "./control.ts";

export { AddressInUseError } from "../dataplane/local.ts";

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
  /** Translator options beyond controller name, time and validators (e.g. the infrastructure mode). */
  translate?: ControlPlaneOptions<Provider>["translate"];
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
  accessLog?: LocalAccessLogOptions;
}

/** `P`: the provider's type (a FileProvider unless `provider` was given). */
export interface ServeHandle<P extends Provider = FileProvider> extends ControlPlaneHandle<P> {
  readonly stateDir: string;
  readonly haproxy: HAProxyProcess;
  readonly applier: HAProxyApplier;
  /** The data plane of UDP listeners. */
  readonly udp: UdpForwarder;
  /** The access log receiver (absent when access logs are off). */
  readonly accessLog: AccessLogReceiver | undefined;
}

/** `--config` names nothing: an error at start (a path that disappears later keeps the last good config). */
export class ConfigPathError extends GatehouseError {
  readonly path: string;
  constructor(path: string, options?: ErrorOptions) {
    super(`--config ${path}: no such file or directory; give the YAML file or directory to serve`, options);
    this.path = path;
  }
}

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
  findHAProxy(options.haproxy ?? "haproxy");
  const admin = options.admin ?? { host: "127.0.0.1", port: 9901 };

  const lock = await lockStateDir(stateDir, {
    admin: `${admin.host}:${admin.port}`,
    ...(config !== undefined ? { config: resolve(config) } : {}),
  });
  try {
    return await startLocked(options, { config, logger, now, stateDir, admin, lock });
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
  admin: AdminListen;
  lock: StateDirLock;
}

async function startLocked<P extends Provider>(
  options: ServeOptions & { provider?: P },
  { config, logger, now, stateDir, admin, lock }: Prepared,
): Promise<ServeHandle<P>> {
  let recordEvent: ((text: string) => void) | undefined;
  const local = await openLocalDataplane({
    stateDir,
    logger,
    metricsAddress: options.metricsAddress ?? DEFAULT_METRICS_ADDRESS,
    ...(options.haproxy !== undefined ? { haproxy: options.haproxy } : {}),
    ...(options.serverSlots !== undefined ? { serverSlots: options.serverSlots } : {}),
    ...(options.spareBackends !== undefined ? { spareBackends: options.spareBackends } : {}),
    ...(options.hardStopAfter !== undefined ? { hardStopAfter: options.hardStopAfter } : {}),
    ...(options.restart !== undefined ? { restart: options.restart } : {}),
    ...(options.udp !== undefined ? { udp: options.udp } : {}),
    ...(options.routeMetrics !== undefined ? { routeMetrics: options.routeMetrics } : {}),
    ...(options.accessLog !== undefined ? { accessLog: options.accessLog } : {}),
    onProcessEvent: (text) => recordEvent?.(text),
  });
  let udp: UdpForwarder | undefined;
  // Without `provider`, P is FileProvider (its default): the cast only restates that.
  const provider: P =
    options.provider ??
    (new FileProvider({
      path: config ?? "",
      onWarning: (w) => logger.warn(w),
      ...(options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {}),
    }) as Provider as P);
  logger.info({ admin: `${admin.host}:${admin.port}`, stateDir, config }, "gatehouse serve starting");
  const control = await startControlPlane({
    provider,
    renderOptions: local.renderOptions,
    logger,
    admin,
    haproxyMetricsUrl: `http://${local.metricsAddress}/metrics`,
    hostAddresses: options.hostAddresses ?? hostAddresses(interfaces()),
    now,
    ...(options.controllerName !== undefined ? { controllerName: options.controllerName } : {}),
    ...(options.translate !== undefined ? { translate: options.translate } : {}),
    ...(options.onUpdate !== undefined ? { onUpdate: options.onUpdate } : {}),
    ...(options.onProcessed !== undefined ? { onProcessed: options.onProcessed } : {}),
    ...(options.infrastructure !== undefined ? { infrastructure: options.infrastructure } : {}),
    ...(options.onStatuses !== undefined ? { onStatuses: options.onStatuses } : {}),
    dataplane: ({ store, metrics }) => {
      recordEvent = (text) => store.recordProcessEvent(text);
      const combined = local.combine(metrics, (outcome) => {
        if (outcome.spares !== undefined) store.recordSpares(outcome.spares);
      });
      udp = combined.udp;
      return combined.dataplane;
    },
    beforeAdminClose: (how) => local.close(how),
  });
  let stopping: Promise<void> | undefined;
  const stop = (how: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> =>
    (stopping ??= (async () => {
      try {
        await control.stop(how);
      } finally {
        await lock.release();
      }
    })());
  if (udp === undefined) throw new Error("startServe: the data plane was not created");
  return {
    ...control,
    stateDir,
    haproxy: local.haproxy,
    applier: local.applier,
    udp,
    accessLog: local.accessLog,
    stop,
  };
}

function interfaces(): InterfaceAddress[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined)
    .map((i) => ({ address: i.address, family: i.family, internal: i.internal }));
}
