// The control plane of the serve pipeline without a local data plane: provider → serve loop
// (translate, infrastructure, render check) → a data plane given by the caller, plus the admin
// server. `gatehouse serve` and `--infrastructure host` put HAProxy behind it (start.ts);
// `--infrastructure kubernetes` puts the config distributor behind it (the data planes are the
// Gateways' own pods). `stop()` stops the provider, lets the loop finish and closes the admin server.
import type { Logger } from "pino";
import { launchAdmin, type AdminListen } from "../admin/launch.ts";
import type { AdminServer } from "../admin/server.ts";
import { AdminStateStore } from "../admin/state.ts";
import type { RenderOptions } from "../dataplane/haproxy/render/index.ts";
import type { GatewayInfrastructure } from "../infra/types.ts";
import { createMetrics, type Metrics } from "../observability/metrics.ts";
import type { Provider, ProviderUpdate } from "../provider/types.ts";
import type { StatusEntry } from "../status/types.ts";
import { DEFAULT_CONTROLLER_NAME } from "../translate/index.ts";
import { ServeLoop, type Dataplane, type ModeOptions } from "./loop.ts";

export interface ControlPlaneOptions<P extends Provider> {
  provider: P;
  /** The data plane the loop applies to, created once the metrics and the admin store exist. */
  dataplane: (context: { store: AdminStateStore; metrics: Metrics }) => Dataplane;
  /** Options of the renderer the loop checks the IR against (the data plane renders with the same). */
  renderOptions: RenderOptions;
  logger: Logger;
  admin: AdminListen;
  /** Loopback URL of HAProxy's Prometheus exporter, proxied by /metrics (none: omit). */
  haproxyMetricsUrl?: string;
  controllerName?: string;
  /** Translator options beyond controller name, time and validators (e.g. the infrastructure mode). */
  translate?: ModeOptions;
  infrastructure?: GatewayInfrastructure;
  onStatuses?: (statuses: readonly StatusEntry[], update: ProviderUpdate) => void;
  /** Addresses reported for Gateways bound on all interfaces. */
  hostAddresses: readonly string[];
  now: () => Date;
  onUpdate?: (update: ProviderUpdate) => void;
  onProcessed?: (generation: number) => void;
  /** Not ready while no listener is programmed (default true; see AdminStateStore). */
  listenersRequired?: boolean;
  /** Runs after the provider and the loop stopped, before the admin server closes (the data plane's own stop). */
  beforeAdminClose?: (how: { graceful: boolean; timeoutMs: number }) => Promise<void>;
}

export interface ControlPlaneHandle<P extends Provider> {
  /** `http://host:port` of the admin server. */
  readonly adminUrl: string;
  readonly store: AdminStateStore;
  /** The admin server (its HTTP side runs in a worker thread). */
  readonly admin: AdminServer;
  readonly metrics: Metrics;
  readonly loop: ServeLoop;
  readonly provider: P;
  /** Stops watching, lets the loop finish, stops the data plane and the admin server. Idempotent. */
  stop(options?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
}

export async function startControlPlane<P extends Provider>(
  options: ControlPlaneOptions<P>,
): Promise<ControlPlaneHandle<P>> {
  const { logger, provider } = options;
  const store = new AdminStateStore(options.now, {
    ...(options.listenersRequired !== undefined ? { listenersRequired: options.listenersRequired } : {}),
  });
  const metrics = createMetrics();
  const loop = new ServeLoop({
    controllerName: options.controllerName ?? DEFAULT_CONTROLLER_NAME,
    renderOptions: options.renderOptions,
    dataplane: options.dataplane({ store, metrics }),
    store,
    metrics,
    logger,
    hostAddresses: options.hostAddresses,
    now: options.now,
    ...(options.translate !== undefined ? { translate: options.translate } : {}),
    ...(options.onProcessed !== undefined ? { onProcessed: options.onProcessed } : {}),
    ...(options.infrastructure !== undefined ? { infrastructure: options.infrastructure } : {}),
    ...(options.onStatuses !== undefined ? { onStatuses: options.onStatuses } : {}),
  });
  const launched = await launchAdmin({
    listen: options.admin,
    state: store,
    registry: metrics.registry,
    ...(options.haproxyMetricsUrl !== undefined ? { haproxyMetricsUrl: options.haproxyMetricsUrl } : {}),
    logger,
  });
  const server = launched.server;
  const adminUrl = server.address?.url ?? `http://${options.admin.host}:${options.admin.port}`;

  let stopping: Promise<void> | undefined;
  const stop = (how: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> =>
    (stopping ??= (async () => {
      await provider.stop();
      loop.stop();
      await loop.idle();
      await options.beforeAdminClose?.({ graceful: how.graceful ?? true, timeoutMs: how.timeoutMs ?? 5000 });
      await launched.close();
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
  return { adminUrl, store, admin: server, metrics, loop, provider, stop };
}
