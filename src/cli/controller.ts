// `gatehouse controller`: Kubernetes mode. The same serve pipeline as `gatehouse serve` (one
// ServeLoop: translate → infrastructure → render → apply), fed by the Kubernetes provider instead of
// files, with host infrastructure (address pool, addresses bound on a local interface) and the
// statuses written back to the API server by the elected leader (several replicas may serve
// traffic; one writes status).
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GatehouseError, UsageError } from "../errors.ts";
import { IpBinder, type AddressBinder } from "../infra/host/binder.ts";
import { HostInfrastructure } from "../infra/host/host.ts";
import { AddressPool } from "../infra/host/pool.ts";
import type { GatewayInfrastructure } from "../infra/types.ts";
import { createLogger, type LogFormat, type LogLevel } from "../observability/logger.ts";
import { systemClock, type Clock } from "../provider/clock.ts";
import { HttpKubeApi, loadKubeConfig, type KubeApi } from "../provider/kubernetes/client.ts";
import { KubernetesProvider } from "../provider/kubernetes/provider.ts";
import { startServe, type ServeHandle, type ServeOptions } from "../serve/start.ts";
import { DEFAULT_LEASE_NAME, LeaderElector } from "../status/leader.ts";
import { StatusPublisher } from "../status/publisher.ts";
import { KubernetesStatusWriter, type StatusWriteReport } from "../status/writer.ts";
import { DEFAULT_CONTROLLER_NAME } from "../translate/index.ts";
import {
  ADMIN_AUTH_HELP,
  DATAPLANE_OPTIONS,
  OBSERVABILITY_HELP,
  parseDataplaneFlags,
  type DataplaneFlags,
} from "./dataplane-flags.ts";
import type { CliIO, Command } from "./main.ts";

const DEFAULT_STATE_DIR = join(tmpdir(), "gatehouse-controller");
const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
export const DEFAULT_LEASE_NAMESPACE = "gatehouse-system";

const USAGE = `Usage: gatehouse controller [flags]

Runs Gatehouse as a Kubernetes Gateway API controller: watches the Gateway API resources (and the
Services, EndpointSlices, Secrets, ConfigMaps and Namespaces they refer to) through the API server,
programs an HAProxy it runs as a child process, and writes the statuses back (leader only).

Flags:
      --kubeconfig PATH      Kubeconfig file (default: $KUBECONFIG, then the in-cluster service
                             account, then ~/.kube/config).
      --infrastructure host  Where Gateways are served: host = by this process, on addresses of
                             this host (default). kubernetes is not implemented yet.
      --address-pool CIDR    Addresses for Gateways without spec.addresses, one per Gateway,
                             stable per namespace/name, added to --interface. Without a pool such
                             Gateways listen on all interfaces.
      --interface NAME       Interface that holds the Gateway addresses; created (dummy) if
                             missing, removed on exit if created (default gatehouse0).
      --controller-name NAME The GatewayClass controllerName to answer to
                             (default ${DEFAULT_CONTROLLER_NAME}).
      --leader-elect BOOL    Write status only while holding the Lease (default true).
      --lease-namespace NS   Namespace of the Lease (default: the pod's namespace in a cluster,
                             else ${DEFAULT_LEASE_NAMESPACE}).
      --lease-name NAME      Name of the Lease (default ${DEFAULT_LEASE_NAME}).
      --admin HOST:PORT      Admin HTTP server: /ready, /status, /config, /metrics
                             (default 127.0.0.1:9901).
${ADMIN_AUTH_HELP}
      --state-dir DIR        Where haproxy.cfg, maps, certificates and sockets live
                             (default ${DEFAULT_STATE_DIR}).
      --haproxy BIN          The haproxy binary (default: haproxy on PATH).
      --server-slots N       Pre-allocated server slots per backend (default 16).
      --spare-backends N     Spare backends new plain-HTTP Services take without a reload
                             (default 16; 0: none).
      --hard-stop-after DUR  How long old HAProxy workers may keep serving after a reload
                             (default 10m).
      --haproxy-metrics HOST:PORT
                             Loopback address for HAProxy's Prometheus exporter
                             (default 127.0.0.1:9902).
      --log-format json|text Log format (default json).
      --log-level LEVEL      trace, debug, info, warn, error (default info).
      --udp-idle-timeout S   UDP listeners: seconds an idle client flow is kept (default 60).
      --udp-max-flows N      UDP listeners: client flows kept at most (default 4096).
${OBSERVABILITY_HELP}
  -h, --help                 Show this help.
`;

export const controllerCommand: Command = {
  name: "controller",
  summary: "Run as a Kubernetes Gateway API controller (API server → HAProxy, status written back)",
  usage: USAGE,
  run: runController,
};

/** The command line, checked; exported so tests (and deploy/ manifests' tests) can parse args. */
export interface ControllerArgs {
  kubeconfig: string | undefined;
  infrastructure: "host";
  addressPool: AddressPool | undefined;
  interfaceName: string;
  controllerName: string;
  leaderElect: boolean;
  leaseNamespace: string | undefined;
  leaseName: string;
  admin: { host: string; port: number };
  stateDir: string;
  haproxy: string;
  serverSlots: number;
  spareBackends: number;
  hardStopAfter: string;
  metricsAddress: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  udp: { idleTimeoutMs: number; maxFlows: number };
  accessLog: DataplaneFlags["accessLog"];
  routeMetrics: boolean;
}

export function parseControllerArgs(args: readonly string[]): ControllerArgs {
  const { values } = parseArgs({
    args: [...args],
    options: {
      kubeconfig: { type: "string" },
      infrastructure: { type: "string" },
      "address-pool": { type: "string" },
      interface: { type: "string" },
      "leader-elect": { type: "string" },
      "lease-namespace": { type: "string" },
      "lease-name": { type: "string" },
      ...DATAPLANE_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  const infrastructure = values.infrastructure ?? "host";
  if (infrastructure === "kubernetes") {
    throw new UsageError("--infrastructure kubernetes: not implemented yet: use --infrastructure host");
  }
  if (infrastructure !== "host")
    throw new UsageError(`--infrastructure must be host (or kubernetes), not "${infrastructure}"`);
  const leaderElect = values["leader-elect"] ?? "true";
  if (leaderElect !== "true" && leaderElect !== "false")
    throw new UsageError(`--leader-elect must be true or false, not "${leaderElect}"`);
  const interfaceName = values.interface ?? "gatehouse0";
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(interfaceName))
    throw new UsageError(
      `--interface must be an interface name (at most 15 characters), not "${interfaceName}"`,
    );
  // Validated here so a bad value is a usage error, not a failure at the first log line.
  const flags = parseDataplaneFlags(values, DEFAULT_STATE_DIR);
  return {
    kubeconfig: values.kubeconfig,
    infrastructure: "host",
    addressPool: values["address-pool"] === undefined ? undefined : new AddressPool(values["address-pool"]),
    interfaceName,
    controllerName: flags.controllerName,
    leaderElect: leaderElect === "true",
    leaseNamespace: values["lease-namespace"],
    leaseName: values["lease-name"] ?? DEFAULT_LEASE_NAME,
    admin: flags.admin,
    stateDir: flags.stateDir,
    haproxy: flags.haproxy,
    serverSlots: flags.serverSlots,
    spareBackends: flags.spareBackends,
    hardStopAfter: flags.hardStopAfter,
    metricsAddress: flags.metricsAddress,
    logFormat: flags.logFormat,
    logLevel: flags.logLevel,
    udp: flags.udp,
    accessLog: flags.accessLog,
    routeMetrics: flags.routeMetrics,
  };
}

/** The Lease namespace: the flag, else the pod's namespace (in a cluster), else the default. */
export function leaseNamespace(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== "") return flag;
  const fromEnv = env["POD_NAMESPACE"];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (existsSync(SERVICE_ACCOUNT_NAMESPACE)) return readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim();
  return DEFAULT_LEASE_NAMESPACE;
}

/** A unique identity for leader election: the pod (or host) name and a random suffix. */
export function leaderIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return `${env["POD_NAME"] ?? hostname()}_${randomBytes(4).toString("hex")}`;
}

export interface ControllerOptions {
  /** The serve pipeline's options (state dir, admin address, HAProxy, ...). */
  serve: Omit<
    ServeOptions,
    "config" | "provider" | "infrastructure" | "onStatuses" | "logger" | "controllerName"
  >;
  kubeConfig: KubeConfig;
  logger: Logger;
  /** API client (default HttpKubeApi on kubeConfig). */
  api?: KubeApi;
  controllerName?: string;
  /** Address management (default none: Gateways without addresses listen on all interfaces). */
  infrastructure?: GatewayInfrastructure;
  /** Leader election for status writes; false writes status unconditionally. */
  leaderElection:
    | {
        namespace: string;
        name?: string;
        identity: string;
        leaseDurationMs?: number;
        renewDeadlineMs?: number;
        retryPeriodMs?: number;
      }
    | false;
  /** Monotonic clock for retries, debounce and leases (default the system's). */
  clock?: Clock;
  /** Provider debounce (default the provider's, 30 ms). */
  providerDebounceMs?: number;
  /** Called after every status write pass. */
  onStatusPass?: (report: StatusWriteReport) => void;
}

export interface ControllerHandle {
  readonly serve: ServeHandle<KubernetesProvider>;
  readonly provider: KubernetesProvider;
  readonly elector: LeaderElector | undefined;
  readonly publisher: StatusPublisher;
  /** Stops everything: provider, loop, HAProxy, status writes (the Lease is released), addresses. */
  stop(options?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
}

export async function startController(options: ControllerOptions): Promise<ControllerHandle> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const now = options.serve.now ?? (() => new Date());
  const controllerName = options.controllerName ?? DEFAULT_CONTROLLER_NAME;
  const api = options.api ?? new HttpKubeApi(options.kubeConfig);
  const log = (component: string) => {
    const child = logger.child({ component });
    return {
      info: (m: string) => child.info(m),
      warn: (m: string) => child.warn(m),
      debug: (m: string) => child.debug(m),
    };
  };
  const provider = new KubernetesProvider({
    api,
    watch: new Watch(options.kubeConfig),
    clock,
    log: log("kubernetes"),
    ...(options.providerDebounceMs !== undefined ? { debounceMs: options.providerDebounceMs } : {}),
  });
  const writer = new KubernetesStatusWriter({ api, controllerName, log: log("status") });
  let elector: LeaderElector | undefined;
  const publisher = new StatusPublisher({
    writer,
    isLeader: () => elector?.isLeader ?? true,
    clock,
    log: log("status"),
    ...(options.onStatusPass !== undefined ? { onPass: options.onStatusPass } : {}),
  });
  if (options.leaderElection !== false) {
    const le = options.leaderElection;
    elector = new LeaderElector({
      api,
      namespace: le.namespace,
      identity: le.identity,
      clock,
      now,
      onChange: (leader) => publisher.leadershipChanged(leader),
      log: log("leader-election"),
      ...(le.name !== undefined ? { name: le.name } : {}),
      ...(le.leaseDurationMs !== undefined ? { leaseDurationMs: le.leaseDurationMs } : {}),
      ...(le.renewDeadlineMs !== undefined ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
      ...(le.retryPeriodMs !== undefined ? { retryPeriodMs: le.retryPeriodMs } : {}),
    });
    elector.start();
  }
  const infrastructure = options.infrastructure;
  let serve: ServeHandle<KubernetesProvider>;
  try {
    serve = await startServe({
      ...options.serve,
      logger,
      controllerName,
      provider,
      onStatuses: (statuses, update) => publisher.publish(statuses, update.snapshot),
      ...(infrastructure !== undefined ? { infrastructure } : {}),
    });
  } catch (error) {
    await elector?.stop();
    await infrastructure?.close();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const stop = (how: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> =>
    (stopping ??= (async () => {
      await serve.stop(how);
      await publisher.stop();
      await elector?.stop();
      await infrastructure?.close();
    })());
  return { serve, provider, elector, publisher, stop };
}

async function runController(args: readonly string[], io: CliIO): Promise<number> {
  const a = parseControllerArgs(args);
  const logger = createLogger({ format: a.logFormat, level: a.logLevel });
  const { config, source } = loadKubeConfig({ path: a.kubeconfig });
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new GatehouseError(`kubeconfig (${source}): no current cluster`);
  logger.info({ kubeconfig: source, server: cluster.server }, "gatehouse controller starting");
  const binder: AddressBinder = new IpBinder({ device: a.interfaceName });
  const infrastructure = new HostInfrastructure({
    binder,
    ...(a.addressPool !== undefined ? { pool: a.addressPool } : {}),
    log: {
      info: (m) => logger.info({ component: "infrastructure" }, m),
      warn: (m) => logger.warn({ component: "infrastructure" }, m),
    },
  });
  const stopped = new Promise<string>((done) => {
    process.once("SIGTERM", () => done("SIGTERM"));
    process.once("SIGINT", () => done("SIGINT"));
  });
  const controller = await startController({
    kubeConfig: config,
    logger,
    controllerName: a.controllerName,
    serve: {
      stateDir: a.stateDir,
      admin: a.admin,
      haproxy: a.haproxy,
      serverSlots: a.serverSlots,
      spareBackends: a.spareBackends,
      hardStopAfter: a.hardStopAfter,
      metricsAddress: a.metricsAddress,
      udp: a.udp,
      accessLog: a.accessLog,
      routeMetrics: a.routeMetrics,
      now: () => io.now(),
    },
    infrastructure,
    leaderElection: a.leaderElect
      ? { namespace: leaseNamespace(a.leaseNamespace), name: a.leaseName, identity: leaderIdentity() }
      : false,
  });
  logger.info({ admin: controller.serve.adminUrl }, "gatehouse controller running");
  const signal = await stopped;
  logger.info({ signal }, "stopping");
  await controller.stop({ graceful: true, timeoutMs: 5000 });
  logger.info("stopped");
  return 0;
}
