// The data plane this process runs: HAProxy as a child process (HAProxyProcess), its applier
// (runtime API first, hitless reload when it must), the UDP forwarder, the TLS bridge, the
// ExternalAuth bridge and the InferencePool endpoint picker bridge, combined into one `apply(ir)`. `gatehouse serve` / `controller
// --infrastructure host` (src/serve/start.ts) and `gatehouse dataplane` (src/dataplane/agent) both
// build theirs here, so the two cannot drift apart.
//
// openLocalDataplane() stops an HAProxy an earlier instance left in the state directory, checks that
// HAProxy's metrics address is free (HAProxy itself would only fail at its first start, less
// clearly), and fills in the render defaults. The caller holds the state directory's lock.
//
// Observability is wired here too, so serve and the agent get the same: per-route counters kept by
// HAProxy (RenderOptions.ruleCounters; read into `metrics` by combine(), see
// src/observability/route-metrics.ts) and the access-log receiver HAProxy's ring forwards to
// (bound before HAProxy's first configuration; src/observability/access-log.ts).
import { join } from "node:path";
import type { Logger } from "pino";
import { GatehouseError } from "../errors.ts";
import { parseHostPort } from "../net/hostport.ts";
import {
  AccessLogReceiver,
  openSink,
  type AccessLogFormat,
  type AccessLogOutput,
} from "../observability/access-log.ts";
import type { Metrics } from "../observability/metrics.ts";
import {
  createRouteMetrics,
  runtimeRuleStatsSource,
  type RouteMetrics,
} from "../observability/route-metrics.ts";
import { canBindExclusively, HAProxyApplier, type ApplyOutcome } from "./haproxy/apply/applier.ts";
import { nodeFileWriter } from "./haproxy/apply/files.ts";
import { describeProcessEvent } from "./haproxy/process/describe.ts";
import {
  findHAProxy,
  HAProxyProcess,
  type HAProxyProcessEvent,
  type RestartPolicy,
} from "./haproxy/process/manager.ts";
import { stopStaleHAProxy } from "./haproxy/process/stale.ts";
import type { RenderOptions } from "./haproxy/render/index.ts";
import { workerRuntimeApi } from "./haproxy/runtime/socket.ts";
import { EppBridge } from "./epp/bridge.ts";
import { ExtAuthBridge } from "./extauth/bridge.ts";
import { TLSBridge } from "./tlsbridge/bridge.ts";
import { CombinedDataplane } from "./udp/dataplane.ts";
import { UdpForwarder } from "./udp/forwarder.ts";
import { udpMetrics } from "./udp/metrics.ts";
import { nodeUdpSockets } from "./udp/sockets.ts";

export const DEFAULT_METRICS_ADDRESS = "127.0.0.1:9902";

export interface LocalDataplaneOptions {
  /** Absolute state directory (haproxy.cfg, maps, certificates, sockets); locked by the caller. */
  stateDir: string;
  logger: Logger;
  /** The haproxy binary: a path, or a name looked up on PATH (default "haproxy"). */
  haproxy?: string;
  /** Loopback HOST:PORT of HAProxy's Prometheus exporter (default 127.0.0.1:9902). */
  metricsAddress?: string;
  /** Pre-allocated server slots per backend (default 16). */
  serverSlots?: number;
  /** Spare backends new Services take without a reload (default 16). */
  spareBackends?: number;
  /** How long old workers may keep serving after a reload (default 10m). */
  hardStopAfter?: string;
  threads?: number;
  maxconn?: number;
  timeouts?: RenderOptions["timeouts"];
  /** HAProxy restart policy after a crash (default the process manager's). */
  restart?: RestartPolicy;
  /** UDP forwarder: flow idle timeout (default 60 s) and most flows at once (default 4096). */
  udp?: { idleTimeoutMs?: number; maxFlows?: number };
  /** Each HAProxy process event worth a line (already logged here). */
  onProcessEvent?: (text: string, event: HAProxyProcessEvent) => void;
  /** Per-route counters kept by HAProxy, registered on combine()'s metrics (default true). */
  routeMetrics?: boolean;
  /** HTTP access logs (default off; the CLI's default is JSON lines on stdout). */
  accessLog?: LocalAccessLogOptions;
}

export interface LocalAccessLogOptions {
  format: AccessLogFormat;
  output: AccessLogOutput;
  /** Where `output: stdout` writes (default process.stdout; tests). */
  stdout?: NodeJS.WritableStream;
}

export interface LocalDataplane {
  readonly renderOptions: RenderOptions;
  readonly metricsAddress: string;
  readonly haproxy: HAProxyProcess;
  readonly applier: HAProxyApplier;
  /** The access-log receiver (undefined when access logs are off). */
  readonly accessLog: AccessLogReceiver | undefined;
  /** The per-route metrics (undefined before combine()). */
  readonly routeMetrics: RouteMetrics | undefined;
  /**
   * The UDP forwarder (its metrics in `metrics`) and the combined data plane over HAProxy, UDP and
   * the bridges; `onHAProxyApplied` sees each HAProxy outcome. Called once.
   */
  combine(
    metrics: Metrics,
    onHAProxyApplied?: (outcome: ApplyOutcome) => void,
  ): { dataplane: CombinedDataplane; udp: UdpForwarder };
  /** Stops HAProxy (graceful: soft-stop bounded by `timeoutMs`), the forwarder and the bridges. */
  close(how: { graceful: boolean; timeoutMs: number }): Promise<void>;
}

/** An address Gatehouse itself needs (not a listener) is held by another process, or is no address. */
export class AddressInUseError extends GatehouseError {}

export async function openLocalDataplane(o: LocalDataplaneOptions): Promise<LocalDataplane> {
  const { logger, stateDir } = o;
  const binary = findHAProxy(o.haproxy ?? "haproxy");
  const masterSocket = join(stateDir, "master.sock");
  const pidFile = join(stateDir, "haproxy.pid");
  const metricsAddress = o.metricsAddress ?? DEFAULT_METRICS_ADDRESS;
  const metrics = parseHostPort(metricsAddress);
  if (metrics === undefined)
    throw new AddressInUseError(`--haproxy-metrics must be HOST:PORT, not "${metricsAddress}"`);
  const stale = await stopStaleHAProxy(pidFile, masterSocket);
  if (stale !== undefined)
    logger.warn(
      { pid: stale.pid, by: stale.stoppedBy },
      "stopped the HAProxy an earlier Gatehouse left running",
    );
  const metricsProblem = await canBindExclusively(metrics.host, metrics.port);
  if (metricsProblem !== undefined)
    throw new AddressInUseError(
      `--haproxy-metrics ${metricsAddress}: ${metricsProblem}; give this instance its own address`,
    );
  const renderOptions: RenderOptions = {
    stateDir,
    runtimeSocket: join(stateDir, "haproxy.sock"),
    serverSlots: o.serverSlots ?? 16,
    spareBackends: o.spareBackends ?? 16,
    hardStopAfter: o.hardStopAfter ?? "10m",
    metricsAddress,
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.maxconn !== undefined ? { maxconn: o.maxconn } : {}),
    ...(o.timeouts !== undefined ? { timeouts: o.timeouts } : {}),
    ...(o.routeMetrics !== false ? { ruleCounters: true } : {}),
  };
  let routeMetrics: RouteMetrics | undefined;
  const accessLog = await startAccessLog(o, () => routeMetrics, logger);
  if (accessLog !== undefined)
    renderOptions.accessLog = { address: accessLog.address, token: accessLog.receiver.token };
  const haproxy = new HAProxyProcess({
    masterSocket,
    pidFile,
    binary,
    logger: logger.child({ component: "haproxy" }),
    ...(o.restart !== undefined ? { restart: o.restart } : {}),
  });
  haproxy.on((event) => {
    const text = describeProcessEvent(event);
    if (text === undefined) return;
    if (event.type === "exited" && !event.expected) logger.error({ event }, text);
    else logger.info({ event }, text);
    o.onProcessEvent?.(text, event);
  });
  const applier = new HAProxyApplier({
    stateDir,
    process: haproxy,
    runtime: workerRuntimeApi(masterSocket),
    files: nodeFileWriter,
    render: renderOptions,
  });
  const tlsBridge = new TLSBridge({ logger: logger.child({ component: "tlsbridge" }) });
  const extAuthBridge = new ExtAuthBridge({ logger: logger.child({ component: "extauth" }) });
  const eppBridge = new EppBridge({ logger: logger.child({ component: "epp" }) });
  let udp: UdpForwarder | undefined;
  return {
    renderOptions,
    metricsAddress,
    haproxy,
    applier,
    accessLog: accessLog?.receiver,
    get routeMetrics() {
      return routeMetrics;
    },
    combine(metricsRegistry, onHAProxyApplied) {
      if (udp !== undefined) throw new Error("LocalDataplane.combine: called twice");
      // Always made: the access log takes its Gateway API names from it, and it reports HAProxy's
      // version. Without the counters in HAProxy only `show info` is read; the counters stay empty.
      routeMetrics = createRouteMetrics(
        metricsRegistry.registry,
        runtimeRuleStatsSource(workerRuntimeApi(masterSocket), renderOptions.ruleCounters === true),
        renderOptions,
        (err) => logger.debug({ err }, "could not read HAProxy's rule counters"),
      );
      udp = new UdpForwarder({
        sockets: nodeUdpSockets,
        metrics: udpMetrics(metricsRegistry),
        logger: logger.child({ component: "udp" }),
        ...(o.udp?.idleTimeoutMs !== undefined ? { idleTimeoutMs: o.udp.idleTimeoutMs } : {}),
        ...(o.udp?.maxFlows !== undefined ? { maxFlows: o.udp.maxFlows } : {}),
      });
      const dataplane = new CombinedDataplane(
        {
          apply: async (ir) => {
            const outcome = await applier.apply(ir);
            routeMetrics?.setIR(ir);
            onHAProxyApplied?.(outcome);
            return outcome;
          },
        },
        udp,
        { apply: async (ir) => eppBridge.apply(await extAuthBridge.apply(await tlsBridge.apply(ir))) },
      );
      return { dataplane, udp };
    },
    async close({ graceful, timeoutMs }) {
      await haproxy.stop({ graceful, timeoutMs });
      await udp?.close();
      await tlsBridge.close();
      await extAuthBridge.close();
      await eppBridge.close();
      await accessLog?.receiver.close();
    },
  };
}

/** The access log receiver when access logs are on, bound before HAProxy's first configuration. */
async function startAccessLog(
  o: LocalDataplaneOptions,
  routeMetrics: () => RouteMetrics | undefined,
  logger: Logger,
): Promise<{ receiver: AccessLogReceiver; address: string } | undefined> {
  const a = o.accessLog;
  if (a === undefined || a.format.kind === "off") return undefined;
  let warned = false;
  const receiver = new AccessLogReceiver({
    format: a.format,
    sink: openSink(a.output, a.stdout),
    identity: (rid) => routeMetrics()?.identity(rid),
    onRecord: (r) => routeMetrics()?.observeDuration(r.rid, r.Ta),
    onError: (err) => {
      if (warned) return;
      warned = true; // once: a flood of bad lines must not flood the log
      logger.warn({ err }, "access log: a line could not be used (reported once)");
    },
  });
  const address = await receiver.start();
  return { receiver, address };
}
