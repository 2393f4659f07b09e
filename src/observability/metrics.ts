// Gatehouse's own Prometheus metrics, on a private prom-client Registry (never the global one, so
// tests and several instances in one process do not collide). HAProxy's data-plane metrics come
// from HAProxy's own exporter; the admin server serves them separately (see src/admin/server.ts).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { InputError } from "../errors.ts";

/** Values of `gatehouse_reloads_total{result}`. */
export type ReloadResult = "success" | "invalid" | "failure";

/** Values of `gatehouse_runtime_updates_total{type}`: what a runtime API update changed. */
export type RuntimeUpdateType = "server" | "weight" | "map" | "certificate";

export interface Metrics {
  readonly registry: Registry;
  /** `gatehouse_translations_total`: translator runs. */
  readonly translations: Counter;
  /** `gatehouse_translation_duration_seconds`: time of one translator run. */
  readonly translationDuration: Histogram;
  /**
   * `gatehouse_config_errors_total{kind}`: input problems reported, per load of the input (the same
   * broken file counts again at each load). `kind` is the Kubernetes kind of the object concerned,
   * or `none` when the problem is not tied to one object (YAML syntax, an unreadable file).
   */
  readonly configErrors: Counter<"kind">;
  /** `gatehouse_config_errors{kind}`: input problems in the input currently in effect. */
  readonly configErrorsCurrent: Gauge<"kind">;
  /** `gatehouse_reloads_total{result}`: HAProxy reloads; `result` is a ReloadResult. */
  readonly reloads: Counter<"result">;
  /** `gatehouse_runtime_updates_total{type}`: changes applied through the runtime API, no reload. */
  readonly runtimeUpdates: Counter<"type">;
  /** `gatehouse_last_applied_timestamp_seconds`: Unix time the data plane last took a new config. */
  readonly lastAppliedTimestamp: Gauge;
  /** `gatehouse_route_propagation_seconds`: from seeing an input change to the data plane applying it. */
  readonly routePropagation: Histogram;
  /** `gatehouse_udp_datagrams_total{direction}`: datagrams the UDP forwarder sent (`to_backend`, `to_client`). */
  readonly udpDatagrams: Counter<"direction">;
  /** `gatehouse_udp_bytes_total{direction}`: payload bytes of those datagrams. */
  readonly udpBytes: Counter<"direction">;
  /** `gatehouse_udp_dropped_datagrams_total{reason}`: datagrams the UDP forwarder did not forward. */
  readonly udpDrops: Counter<"reason">;
  /** `gatehouse_udp_flows`: UDP flows (client address and port on a listener) open now. */
  readonly udpFlowsActive: Gauge;
  /** `gatehouse_udp_flows_opened_total`: UDP flows opened. */
  readonly udpFlowsOpened: Counter;
  /** `gatehouse_udp_flows_closed_total{reason}`: UDP flows closed (idle, evicted, reconfigured, ...). */
  readonly udpFlowsClosed: Counter<"reason">;
  /** `gatehouse_udp_listeners`: UDP listener sockets bound now. */
  readonly udpListeners: Gauge;
}

export interface MetricsOptions {
  /** Also collect Node's default process metrics (RSS, CPU, heap, event loop lag). Default true. */
  defaultMetrics?: boolean;
}

const TRANSLATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PROPAGATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    translations: new Counter({
      name: "gatehouse_translations_total",
      help: "Translator runs.",
      registers,
    }),
    translationDuration: new Histogram({
      name: "gatehouse_translation_duration_seconds",
      help: "Time of one translator run, in seconds.",
      buckets: TRANSLATION_BUCKETS,
      registers,
    }),
    configErrors: new Counter({
      name: "gatehouse_config_errors_total",
      help: "Input problems reported at each load, by Kubernetes kind of the object concerned (none: not tied to one object).",
      labelNames: ["kind"],
      registers,
    }),
    configErrorsCurrent: new Gauge({
      name: "gatehouse_config_errors",
      help: "Input problems in the input currently in effect, by Kubernetes kind (none: not tied to one object).",
      labelNames: ["kind"],
      registers,
    }),
    reloads: new Counter({
      name: "gatehouse_reloads_total",
      help: "HAProxy reloads by result (success; invalid: the new config failed validation; failure: the reload failed).",
      labelNames: ["result"],
      registers,
    }),
    runtimeUpdates: new Counter({
      name: "gatehouse_runtime_updates_total",
      help: "Changes applied through the HAProxy runtime API without a reload, by type (server, weight, map, certificate).",
      labelNames: ["type"],
      registers,
    }),
    lastAppliedTimestamp: new Gauge({
      name: "gatehouse_last_applied_timestamp_seconds",
      help: "Unix time at which the data plane last took a new configuration.",
      registers,
    }),
    routePropagation: new Histogram({
      name: "gatehouse_route_propagation_seconds",
      help: "Time from seeing an input change to the data plane applying it, in seconds.",
      buckets: PROPAGATION_BUCKETS,
      registers,
    }),
    udpDatagrams: new Counter({
      name: "gatehouse_udp_datagrams_total",
      help: "Datagrams forwarded by the UDP forwarder, by direction (to_backend, to_client).",
      labelNames: ["direction"],
      registers,
    }),
    udpBytes: new Counter({
      name: "gatehouse_udp_bytes_total",
      help: "Payload bytes forwarded by the UDP forwarder, by direction (to_backend, to_client).",
      labelNames: ["direction"],
      registers,
    }),
    udpDrops: new Counter({
      name: "gatehouse_udp_dropped_datagrams_total",
      help: "Datagrams the UDP forwarder did not forward, by reason (no_route, no_backend, invalid_backend, no_endpoint, send_error, unexpected_source).",
      labelNames: ["reason"],
      registers,
    }),
    udpFlowsActive: new Gauge({
      name: "gatehouse_udp_flows",
      help: "UDP flows (one per client address and port on a listener) open now.",
      registers,
    }),
    udpFlowsOpened: new Counter({
      name: "gatehouse_udp_flows_opened_total",
      help: "UDP flows opened.",
      registers,
    }),
    udpFlowsClosed: new Counter({
      name: "gatehouse_udp_flows_closed_total",
      help: "UDP flows closed, by reason (idle, evicted, reconfigured, listener_closed, error, shutdown).",
      labelNames: ["reason"],
      registers,
    }),
    udpListeners: new Gauge({
      name: "gatehouse_udp_listeners",
      help: "UDP listener sockets bound now.",
      registers,
    }),
  };
}

/** The `kind` label of an input problem. */
export function configErrorKind(error: InputError): string {
  return error.kind ?? "none";
}

const seenKinds = new WeakMap<Metrics, Set<string>>();

/**
 * Records the input problems of one load: adds them to `gatehouse_config_errors_total` and makes
 * `gatehouse_config_errors` reflect exactly this set (kinds that had problems before go to 0).
 */
export function recordConfigErrors(metrics: Metrics, errors: readonly InputError[]): void {
  const counts = new Map<string, number>();
  for (const error of errors) {
    const kind = configErrorKind(error);
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  let seen = seenKinds.get(metrics);
  if (seen === undefined) seenKinds.set(metrics, (seen = new Set()));
  for (const kind of seen) if (!counts.has(kind)) metrics.configErrorsCurrent.set({ kind }, 0);
  for (const [kind, count] of counts) {
    seen.add(kind);
    metrics.configErrors.inc({ kind }, count);
    metrics.configErrorsCurrent.set({ kind }, count);
  }
}
