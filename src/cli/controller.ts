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
import { Gauge } from "prom-client";
import { GatehouseError, UsageError } from "../errors.ts";
import { durationFlag, hostPortFlag } from "./flags.ts";
import { IpBinder, type AddressBinder } from "../infra/host/binder.ts";
import { HostInfrastructure } from "../infra/host/host.ts";
import { AddressPool } from "../infra/host/pool.ts";
import type { GatewayInfrastructure } from "../infra/types.ts";
import { EventRecorder } from "../observability/events.ts";
import { createLogger, type LogFormat, type LogLevel } from "../observability/logger.ts";
import { systemClock, type Clock } from "../provider/clock.ts";
import { HttpKubeApi, loadKubeConfig, type KubeApi } from "../provider/kubernetes/client.ts";
import { MetadataWatch } from "../provider/kubernetes/metawatch.ts";
import { KubernetesProvider, type WatchLike } from "../provider/kubernetes/provider.ts";
import { startServe, type ServeOptions } from "../serve/start.ts";
import { startControlPlane, type ControlPlaneHandle } from "../serve/control.ts";
import type { Dataplane } from "../serve/loop.ts";
import type { ProviderUpdate } from "../provider/types.ts";
import type { StatusEntry } from "../status/types.ts";
import { watchedResources } from "../provider/kubernetes/resources.ts";
import { CertificateAuthority } from "../distribute/ca.ts";
import { KubernetesSecretCAStore } from "../distribute/castore.ts";
import { ConfigDistributor } from "../distribute/distributor.ts";
import { startDistributionServer, type DistributionServer } from "../distribute/server.ts";
import { KubernetesInfrastructure } from "../infra/kubernetes/index.ts";
import {
  DEFAULT_LEASE_NAME,
  LEADER_ELECTION_DEFAULTS,
  LeaderElector,
  leaseTimingsProblem,
} from "../status/leader.ts";
import { StatusEvents } from "../status/events.ts";
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
      --infrastructure host|kubernetes
                             Where Gateways are served: host = by this process, on addresses of
                             this host (default); kubernetes = each Gateway by its own Deployment
                             of data-plane pods (\`gatehouse dataplane\`) behind its own Service,
                             which this process creates and streams the Gateway's configuration
                             to over mutual TLS.

  --infrastructure kubernetes:
      --dataplane-image IMAGE
                             The data-plane pods' image (required; the chart gives its own).
      --dataplane-image-pull-policy Always|IfNotPresent|Never
                             (default IfNotPresent)
      --dataplane-image-pull-secret NAME
                             An image pull Secret for the data-plane pods (repeatable; it must
                             exist in each Gateway's namespace).
      --distribute-listen HOST:PORT
                             Where the config stream listens (default 0.0.0.0:9443).
      --distribute-address HOST:PORT
                             The address data-plane pods dial to reach that stream (required:
                             the controller's Service, e.g. gatehouse-distribution.gatehouse-system.svc:9443).
      --ca-secret NAME       Secret (in the Lease namespace) holding the CA that signs the
                             stream's certificates; created when missing (default gatehouse-ca).

  --infrastructure host:
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
      --leader-elect-lease-duration DUR
                             How long a Lease is honoured without renewal before another
                             replica may take it (default 15s).
      --leader-elect-renew-deadline DUR
                             The leader stops writing status when it could not renew for this
                             long; every status request is bounded by it (default 10s).
      --leader-elect-retry-period DUR
                             Time between attempts to take or renew the Lease (default 2s).
                             DUR: 500ms, 15s, 1m. Must hold: lease duration > renew deadline
                             > 1.2 × retry period (as client-go checks).
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
                             These three apply to --infrastructure host; with kubernetes each
                             Gateway's pods log as its GatehouseProxy spec.accessLog says.
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
  infrastructure: "host" | "kubernetes";
  /** --infrastructure kubernetes only. */
  kubernetes: KubernetesInfraArgs | undefined;
  addressPool: AddressPool | undefined;
  interfaceName: string;
  controllerName: string;
  leaderElect: boolean;
  leaseNamespace: string | undefined;
  leaseName: string;
  leaseTimings: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
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

export interface KubernetesInfraArgs {
  dataplaneImage: string;
  dataplanePullPolicy: "Always" | "IfNotPresent" | "Never";
  dataplanePullSecrets: string[];
  distributeListen: { host: string; port: number };
  distributeAddress: { host: string; port: number };
  caSecret: string;
}

const KUBERNETES_ONLY = [
  "dataplane-image",
  "dataplane-image-pull-policy",
  "dataplane-image-pull-secret",
  "distribute-listen",
  "distribute-address",
  "ca-secret",
] as const;

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
      "leader-elect-lease-duration": { type: "string" },
      "leader-elect-renew-deadline": { type: "string" },
      "leader-elect-retry-period": { type: "string" },
      "dataplane-image": { type: "string" },
      "dataplane-image-pull-policy": { type: "string" },
      "dataplane-image-pull-secret": { type: "string", multiple: true },
      "distribute-listen": { type: "string" },
      "distribute-address": { type: "string" },
      "ca-secret": { type: "string" },
      ...DATAPLANE_OPTIONS,
    },
    strict: true,
    allowPositionals: false,
  });
  const infrastructure = values.infrastructure ?? "host";
  if (infrastructure !== "host" && infrastructure !== "kubernetes")
    throw new UsageError(`--infrastructure must be host or kubernetes, not "${infrastructure}"`);
  let kubernetes: KubernetesInfraArgs | undefined;
  if (infrastructure === "kubernetes") {
    if (values["address-pool"] !== undefined)
      throw new UsageError(
        "--address-pool: only with --infrastructure host (each Gateway's Service gets its address)",
      );
    kubernetes = parseKubernetesInfraArgs(values);
  } else {
    const given = KUBERNETES_ONLY.find((flag) => values[flag] !== undefined);
    if (given !== undefined) throw new UsageError(`--${given}: only with --infrastructure kubernetes`);
  }
  const leaderElect = values["leader-elect"] ?? "true";
  if (leaderElect !== "true" && leaderElect !== "false")
    throw new UsageError(`--leader-elect must be true or false, not "${leaderElect}"`);
  const interfaceName = values.interface ?? "gatehouse0";
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(interfaceName))
    throw new UsageError(
      `--interface must be an interface name (at most 15 characters), not "${interfaceName}"`,
    );
  const leaseTimings = {
    leaseDurationMs: durationFlag(
      "--leader-elect-lease-duration",
      values["leader-elect-lease-duration"],
      LEADER_ELECTION_DEFAULTS.leaseDurationMs,
    ),
    renewDeadlineMs: durationFlag(
      "--leader-elect-renew-deadline",
      values["leader-elect-renew-deadline"],
      LEADER_ELECTION_DEFAULTS.renewDeadlineMs,
    ),
    retryPeriodMs: durationFlag(
      "--leader-elect-retry-period",
      values["leader-elect-retry-period"],
      LEADER_ELECTION_DEFAULTS.retryPeriodMs,
    ),
  };
  const timingProblem = leaseTimingsProblem(leaseTimings);
  if (timingProblem !== undefined)
    throw new UsageError(
      `--leader-elect-*: ${timingProblem} (lease duration ${leaseTimings.leaseDurationMs} ms, renew deadline ${leaseTimings.renewDeadlineMs} ms, retry period ${leaseTimings.retryPeriodMs} ms)`,
    );
  // Validated here so a bad value is a usage error, not a failure at the first log line.
  const flags = parseDataplaneFlags(values, DEFAULT_STATE_DIR);
  return {
    kubeconfig: values.kubeconfig,
    infrastructure,
    kubernetes,
    addressPool: values["address-pool"] === undefined ? undefined : new AddressPool(values["address-pool"]),
    interfaceName,
    controllerName: flags.controllerName,
    leaderElect: leaderElect === "true",
    leaseNamespace: values["lease-namespace"],
    leaseName: values["lease-name"] ?? DEFAULT_LEASE_NAME,
    leaseTimings,
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

function parseKubernetesInfraArgs(
  values: Partial<Record<(typeof KUBERNETES_ONLY)[number], string | string[] | undefined>>,
): KubernetesInfraArgs {
  const image = values["dataplane-image"];
  if (typeof image !== "string" || image === "")
    throw new UsageError(
      "--infrastructure kubernetes needs --dataplane-image (the image of `gatehouse dataplane`)",
    );
  const policy = values["dataplane-image-pull-policy"] ?? "IfNotPresent";
  if (policy !== "Always" && policy !== "IfNotPresent" && policy !== "Never")
    throw new UsageError(
      `--dataplane-image-pull-policy must be Always, IfNotPresent or Never, not "${String(policy)}"`,
    );
  const address = values["distribute-address"];
  if (typeof address !== "string")
    throw new UsageError(
      "--infrastructure kubernetes needs --distribute-address HOST:PORT (what data-plane pods dial to reach this controller)",
    );
  const caSecret = values["ca-secret"] ?? "gatehouse-ca";
  if (typeof caSecret !== "string" || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(caSecret))
    throw new UsageError(`--ca-secret must be a Secret name, not "${String(caSecret)}"`);
  const secrets = values["dataplane-image-pull-secret"];
  return {
    dataplaneImage: image,
    dataplanePullPolicy: policy,
    dataplanePullSecrets: Array.isArray(secrets) ? secrets : secrets === undefined ? [] : [secrets],
    distributeListen: hostPortFlag("--distribute-listen", values["distribute-listen"] ?? "0.0.0.0:9443"),
    distributeAddress: hostPortFlag("--distribute-address", address),
    caSecret,
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
  /** Watches (default the library's Watch on kubeConfig). */
  watch?: WatchLike;
  /** Metadata-only watches of Secrets and ConfigMaps (default MetadataWatch on kubeConfig). */
  metadataWatch?: WatchLike;
  controllerName?: string;
  /** Address management (default none: Gateways without addresses listen on all interfaces). */
  infrastructure?: GatewayInfrastructure;
  /**
   * --infrastructure kubernetes: no local HAProxy; the loop hands each configuration to this data
   * plane (the config distributor), the translator runs in kubernetes mode, and only the leader
   * reconciles the Gateways' objects (`infrastructure` is called on the leader only).
   */
  remoteDataplane?: Dataplane;
  /** Called when this replica starts or stops leading (after the controller's own handling). */
  onLeadership?: (leader: boolean) => void;
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
  /** The serve pipeline: with a local HAProxy (--infrastructure host) or without (kubernetes). */
  readonly serve: ControlPlaneHandle<KubernetesProvider>;
  readonly provider: KubernetesProvider;
  readonly elector: LeaderElector | undefined;
  readonly publisher: StatusPublisher;
  /** Events about Gateway API objects (from status changes) and about leadership (on the Lease). */
  readonly events: EventRecorder;
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
  const kubernetesMode = options.remoteDataplane !== undefined;
  const provider = new KubernetesProvider({
    api,
    ...(kubernetesMode ? { resources: watchedResources({ gatehouseProxies: true }) } : {}),
    watch: options.watch ?? new Watch(options.kubeConfig),
    metadataWatch: options.metadataWatch ?? new MetadataWatch(options.kubeConfig),
    clock,
    log: log("kubernetes"),
    ...(options.providerDebounceMs !== undefined ? { debounceMs: options.providerDebounceMs } : {}),
  });
  const writer = new KubernetesStatusWriter({ api, controllerName, log: log("status") });
  const identity = options.leaderElection === false ? leaderIdentity() : options.leaderElection.identity;
  const events = new EventRecorder({
    api,
    clock,
    now,
    reportingController: controllerName,
    reportingInstance: identity,
    log: log("events"),
  });
  const statusEvents = new StatusEvents();
  let elector: LeaderElector | undefined;
  // Registered with the serve pipeline's registry once it exists; set from the first change on.
  const leaderGauge = new Gauge({
    name: "gatehouse_leader",
    help: "1 while this replica writes status (holds the leader Lease, or runs without leader election), else 0.",
    registers: [],
  });
  leaderGauge.set(options.leaderElection === false ? 1 : 0);
  const publisher = new StatusPublisher({
    writer,
    // Without leader election this replica always writes, unfenced.
    ...(options.leaderElection !== false ? { fence: () => elector?.fence() } : {}),
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
      onChange: (leader) => {
        options.onLeadership?.(leader);
        leaderGauge.set(leader ? 1 : 0);
        publisher.leadershipChanged(leader);
        events.record({
          regarding: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            namespace: le.namespace,
            name: le.name ?? DEFAULT_LEASE_NAME,
          },
          type: "Normal",
          reason: "LeaderElection",
          action: leader ? "Lead" : "StepDown",
          note: leader ? `${le.identity} became leader` : `${le.identity} stopped leading`,
        });
      },
      log: log("leader-election"),
      ...(le.name !== undefined ? { name: le.name } : {}),
      ...(le.leaseDurationMs !== undefined ? { leaseDurationMs: le.leaseDurationMs } : {}),
      ...(le.renewDeadlineMs !== undefined ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
      ...(le.retryPeriodMs !== undefined ? { retryPeriodMs: le.retryPeriodMs } : {}),
    });
    elector.start();
  }
  const infrastructure = options.infrastructure;
  const onStatuses = (statuses: readonly StatusEntry[], update: ProviderUpdate): void => {
    publisher.publish(statuses, update.snapshot);
    // Only the replica that writes status reports Events about it (one voice per cluster).
    const leading = elector === undefined || elector.isLeader;
    statusEvents.observe(statuses, update.snapshot, leading ? events : undefined);
  };
  let serve: ControlPlaneHandle<KubernetesProvider>;
  try {
    if (options.remoteDataplane !== undefined) {
      const remote = options.remoteDataplane;
      serve = await startControlPlane({
        provider,
        dataplane: () => remote,
        // Checked against the renderer's limits as the pods render (paths are the pods' own).
        renderOptions: {
          stateDir: "/var/run/gatehouse",
          runtimeSocket: "/var/run/gatehouse/haproxy.sock",
          serverSlots: options.serve.serverSlots ?? 16,
          spareBackends: options.serve.spareBackends ?? 16,
          hardStopAfter: options.serve.hardStopAfter ?? "10m",
        },
        logger,
        admin: options.serve.admin ?? { host: "127.0.0.1", port: 9901 },
        controllerName,
        translate: { infrastructure: "kubernetes" },
        listenersRequired: false,
        // The Gateways' addresses are their Services'; this process has none to report.
        hostAddresses: [],
        now,
        onStatuses,
        ...(infrastructure !== undefined
          ? { infrastructure: leaderOnly(infrastructure, () => elector) }
          : {}),
        ...(options.serve.onProcessed !== undefined ? { onProcessed: options.serve.onProcessed } : {}),
      });
    } else {
      serve = await startServe({
        ...options.serve,
        logger,
        controllerName,
        provider,
        onStatuses,
        ...(infrastructure !== undefined ? { infrastructure } : {}),
      });
    }
  } catch (error) {
    await elector?.stop();
    await events.stop();
    await infrastructure?.close();
    throw error;
  }
  serve.metrics.registry.registerMetric(leaderGauge);
  let stopping: Promise<void> | undefined;
  const stop = (how: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> =>
    (stopping ??= (async () => {
      await serve.stop(how);
      await publisher.stop();
      await elector?.stop();
      await events.stop();
      await infrastructure?.close();
    })());
  return { serve, provider, elector, publisher, events, stop };
}

function hostInfrastructure(a: ControllerArgs, logger: Logger): HostInfrastructure {
  const binder: AddressBinder = new IpBinder({ device: a.interfaceName });
  return new HostInfrastructure({
    binder,
    ...(a.addressPool !== undefined ? { pool: a.addressPool } : {}),
    log: {
      info: (m) => logger.info({ component: "infrastructure" }, m),
      warn: (m) => logger.warn({ component: "infrastructure" }, m),
    },
  });
}

/** What --infrastructure kubernetes adds to the controller: the CA, the config stream, the reconciler. */
interface RemoteDataplane {
  dataplane: Dataplane;
  onLeadership: (leader: boolean) => void;
  /** Once the controller runs: pod reports refresh the statuses; only the leader serves streams. */
  attach(controller: ControllerHandle): void;
  close(): Promise<void>;
}

async function kubernetesMode(
  k: KubernetesInfraArgs,
  context: { config: KubeConfig; namespace: string; logger: Logger; leaderElect: boolean },
): Promise<{ infrastructure: KubernetesInfrastructure; remote: RemoteDataplane }> {
  const { logger } = context;
  const api = new HttpKubeApi(context.config);
  const child = (component: string) => logger.child({ component });
  const ca = await CertificateAuthority.open(
    new KubernetesSecretCAStore(api, context.namespace, k.caSecret),
    {
      log: child("ca"),
    },
  );
  const distributor = new ConfigDistributor({ logger: child("distribute") });
  let controller: ControllerHandle | undefined;
  const isIP = /^[0-9.]+$|:/.test(k.distributeAddress.host);
  const server: DistributionServer = await startDistributionServer({
    listen: k.distributeListen,
    ca,
    distributor,
    serverNames: {
      dnsNames: isIP ? [] : [k.distributeAddress.host],
      ipAddresses: isIP ? [k.distributeAddress.host] : [],
    },
    // Only the replica writing status takes streams: it is the one that sees the pods' reports.
    accepting: () => !context.leaderElect || controller?.elector?.isLeader === true,
    logger: child("distribute"),
  });
  logger.info(
    { listen: server.address, address: `${k.distributeAddress.host}:${k.distributeAddress.port}` },
    "config stream listening",
  );
  // Pod reports arrive in bursts (every pod of every Gateway after a change), and so do the ends
  // of background apply rounds: one status refresh per burst.
  let refresh: NodeJS.Timeout | undefined;
  const scheduleRefresh = (): void => {
    refresh ??= setTimeout(() => {
      refresh = undefined;
      controller?.serve.loop.refresh();
    }, 50);
  };
  const infrastructure = new KubernetesInfrastructure({
    api,
    onReconciled: scheduleRefresh,
    issuer: ca,
    dataplane: distributor,
    image: k.dataplaneImage,
    imagePullPolicy: k.dataplanePullPolicy,
    imagePullSecrets: k.dataplanePullSecrets,
    controllerAddress: `${k.distributeAddress.host}:${k.distributeAddress.port}`,
    controllerNamespace: context.namespace,
    log: {
      info: (m) => logger.info({ component: "infrastructure" }, m),
      warn: (m) => logger.warn({ component: "infrastructure" }, m),
    },
  });
  const unsubscribe = distributor.onChange(scheduleRefresh);
  return {
    infrastructure,
    remote: {
      dataplane: {
        apply: (ir) => {
          const changed = distributor.publish(ir);
          return Promise.resolve({
            method: changed.length > 0 ? "runtime" : "noop",
            detail:
              changed.length > 0
                ? `published to the pods of ${changed.length} Gateway(s)`
                : "every Gateway's configuration unchanged",
            runtimeUpdates: { map: 0, server: 0, certificate: 0 },
          });
        },
      },
      onLeadership: (leader) => {
        // A new leader applies every object once again (another replica may have changed them).
        if (leader) infrastructure.reconciler.reset();
        controller?.serve.loop.refresh();
      },
      attach: (c) => {
        controller = c;
      },
      close: async () => {
        unsubscribe();
        if (refresh !== undefined) clearTimeout(refresh);
        await server.close();
      },
    },
  };
}

/**
 * The Gateways' objects are reconciled by the replica that writes status only (the others would
 * apply the same objects again); a follower passes the IR and statuses through untouched.
 */
function leaderOnly(
  infrastructure: GatewayInfrastructure,
  elector: () => LeaderElector | undefined,
): GatewayInfrastructure {
  return {
    prepare: async (input) => {
      const e = elector();
      if (e !== undefined && !e.isLeader) return { ir: input.ir, statuses: [...input.statuses] };
      return infrastructure.prepare(input);
    },
    close: () => infrastructure.close(),
  };
}

async function runController(args: readonly string[], io: CliIO): Promise<number> {
  const a = parseControllerArgs(args);
  const logger = createLogger({ format: a.logFormat, level: a.logLevel });
  const { config, source } = loadKubeConfig({ path: a.kubeconfig });
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new GatehouseError(`kubeconfig (${source}): no current cluster`);
  logger.info({ kubeconfig: source, server: cluster.server }, "gatehouse controller starting");
  const leaseNs = leaseNamespace(a.leaseNamespace);
  const mode =
    a.kubernetes !== undefined
      ? await kubernetesMode(a.kubernetes, { config, namespace: leaseNs, logger, leaderElect: a.leaderElect })
      : { infrastructure: hostInfrastructure(a, logger) };
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
    infrastructure: mode.infrastructure,
    ...("remote" in mode
      ? { remoteDataplane: mode.remote.dataplane, onLeadership: mode.remote.onLeadership }
      : {}),
    leaderElection: a.leaderElect
      ? {
          namespace: leaseNs,
          name: a.leaseName,
          identity: leaderIdentity(),
          ...a.leaseTimings,
        }
      : false,
  });
  if ("remote" in mode) mode.remote.attach(controller);
  logger.info({ admin: controller.serve.adminUrl }, "gatehouse controller running");
  const signal = await stopped;
  logger.info({ signal }, "stopping");
  await controller.stop({ graceful: true, timeoutMs: 5000 });
  if ("remote" in mode) await mode.remote.close();
  logger.info("stopped");
  return 0;
}
