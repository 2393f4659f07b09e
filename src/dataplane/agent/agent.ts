// `gatehouse dataplane`: the agent of one Gateway's data-plane pod in `--infrastructure kubernetes`.
// It runs HAProxy (+ the UDP forwarder, the TLS bridge and the ExternalAuth bridge) with the same pieces as `gatehouse serve`
// (HAProxyProcess, HAProxyApplier, CombinedDataplane; the state directory locked) and takes its
// Gateway's configuration from the controller's config stream (src/distribute/client.ts):
//
// - each configuration is checked (its hash, validateIR, checkRenderable) and applied: runtime API
//   first, a hitless reload when needed. A configuration refused (by the checks or by HAProxy) is
//   reported with the reason and the previous one keeps serving. The hash already applied is a
//   no-op, so a controller restart or failover re-syncs without touching HAProxy.
// - the last applied configuration is kept in the state directory (mode 0600: it holds the
//   Gateway's private keys); after a restart while the controller cannot be reached it is served
//   again (after `persistedAfterMs` without a configuration from the controller).
// - the controller away, the agent keeps serving what it has and reconnects with backoff.
// - shutdown(): /ready answers 503 at once, HAProxy keeps serving for the drain time (so the
//   endpoints controller takes the pod out), then HAProxy soft-stops (bounded by hard-stop-after).
import { chmod, readFile, rename, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { Counter, Gauge } from "prom-client";
import { configHash } from "../../distribute/contract.ts";
import { ConfigStreamClient, type ConfigResult } from "../../distribute/client.ts";
import type { ConfigMessage } from "../../distribute/protocol.ts";
import { oneLine } from "../../distribute/protocol.ts";
import type { GatewayIdentity } from "../../distribute/ca.ts";
import type { IR } from "../../ir/types.ts";
import { validateIR } from "../../ir/validate.ts";
import { createMetrics, type Metrics } from "../../observability/metrics.ts";
import type { UnavailableListener } from "../../status/feedback.ts";
import { parseDuration } from "../../translate/duration.ts";
import { ApplyError } from "../haproxy/apply/applier.ts";
import { lockStateDir, type StateDirLock } from "../haproxy/process/lock.ts";
import type { HAProxyProcess } from "../haproxy/process/manager.ts";
import { checkRenderable, formatIssue } from "../haproxy/render/index.ts";
import { AddressInUseError, openLocalDataplane, type LocalAccessLogOptions } from "../local.ts";
import { startAgentAdmin, type AgentAdmin } from "./admin.ts";
import { GatehouseError } from "../../errors.ts";

export const PERSISTED_CONFIG = "dataplane-config.json";

export interface AgentOptions {
  /** `host:port` of the controller's distribution server. */
  controller: string;
  gateway: GatewayIdentity;
  /** tls.crt, tls.key, ca.crt (re-read on every connection). */
  tlsDir: string;
  /** Admin server: /healthz, /ready, /metrics (port 0: any). */
  admin: { host: string; port: number };
  stateDir: string;
  /** How long /ready answers 503 before HAProxy stops, on shutdown. */
  shutdownDrainMs: number;
  logger: Logger;
  haproxy?: string;
  serverSlots?: number;
  spareBackends?: number;
  hardStopAfter?: string;
  metricsAddress?: string;
  udp?: { idleTimeoutMs?: number; maxFlows?: number };
  /** Per-route counters kept by HAProxy, on the admin server's /metrics (default true). */
  routeMetrics?: boolean;
  /** HTTP access logs (default off; `gatehouse dataplane` defaults to JSON lines on stdout). */
  accessLog?: LocalAccessLogOptions;
  threads?: number;
  maxconn?: number;
  timeouts?: { connectMs?: number; clientMs?: number; serverMs?: number };
  /** `namespace/name` of this pod (default $POD_NAMESPACE/$POD_NAME, else the Gateway's namespace and the hostname). */
  pod?: string;
  /** Serve the persisted configuration when none came from the controller within this time (default 3 s). */
  persistedAfterMs?: number;
  /** Stream tuning (tests). */
  backoff?: { initialMs: number; maxMs: number };
  heartbeatMs?: number;
  peerTimeoutMs?: number;
}

export interface AgentHandle {
  readonly adminUrl: string;
  readonly metrics: Metrics;
  readonly haproxy: HAProxyProcess;
  readonly client: ConfigStreamClient;
  /** configHash of what is served now (undefined before the first apply). */
  readonly appliedHash: string | undefined;
  readonly ready: boolean;
  /** Graceful: not ready at once, serve for the drain time, then soft-stop HAProxy. Idempotent. */
  shutdown(): Promise<void>;
  /** At once (tests): stops everything, HAProxy with SIGTERM. */
  stop(): Promise<void>;
}

/** The agent could not start (HAProxy missing, the state directory taken, the admin port busy, ...). */
export class AgentStartError extends GatehouseError {}

export async function startAgent(o: AgentOptions): Promise<AgentHandle> {
  const stateDir = resolve(o.stateDir);
  const lock = await lockStateDir(stateDir, { dataplane: `${o.gateway.namespace}/${o.gateway.name}` });
  try {
    return await startLocked(o, stateDir, lock);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function startLocked(o: AgentOptions, stateDir: string, lock: StateDirLock): Promise<AgentHandle> {
  const { logger } = o;
  const gatewayId = `${o.gateway.namespace}/${o.gateway.name}`;
  let local;
  try {
    local = await openLocalDataplane({
      stateDir,
      logger,
      ...(o.haproxy !== undefined ? { haproxy: o.haproxy } : {}),
      ...(o.metricsAddress !== undefined ? { metricsAddress: o.metricsAddress } : {}),
      ...(o.serverSlots !== undefined ? { serverSlots: o.serverSlots } : {}),
      ...(o.spareBackends !== undefined ? { spareBackends: o.spareBackends } : {}),
      ...(o.hardStopAfter !== undefined ? { hardStopAfter: o.hardStopAfter } : {}),
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      ...(o.maxconn !== undefined ? { maxconn: o.maxconn } : {}),
      ...(o.timeouts !== undefined ? { timeouts: o.timeouts } : {}),
      ...(o.udp !== undefined ? { udp: o.udp } : {}),
      ...(o.routeMetrics !== undefined ? { routeMetrics: o.routeMetrics } : {}),
      ...(o.accessLog !== undefined ? { accessLog: o.accessLog } : {}),
    });
  } catch (err) {
    if (err instanceof AddressInUseError) throw new AgentStartError(err.message, { cause: err });
    throw err;
  }
  const { renderOptions, metricsAddress, haproxy } = local;
  const metrics = createMetrics();
  const m = {
    connected: new Gauge({
      name: "gatehouse_dataplane_controller_connected",
      help: "1 while the config stream to the controller is open",
      registers: [metrics.registry],
    }),
    configs: new Counter({
      name: "gatehouse_dataplane_configs_total",
      help: "Configurations received from the controller, by result (applied, unchanged, refused)",
      labelNames: ["result"],
      registers: [metrics.registry],
    }),
    ready: new Gauge({
      name: "gatehouse_dataplane_ready",
      help: "1 while /ready answers 200",
      registers: [metrics.registry],
    }),
    lastApplied: new Gauge({
      name: "gatehouse_dataplane_last_applied_timestamp_seconds",
      help: "When a configuration was last applied",
      registers: [metrics.registry],
    }),
  };
  const { dataplane } = local.combine(metrics);

  let applied: { hash: string; unavailable: readonly UnavailableListener[] } | undefined;
  let refused: { hash: string; error: string } | undefined;
  let draining = false;
  let fromController = false;
  const isReady = (): boolean => applied !== undefined && !draining && haproxy.state === "running";

  // One configuration at a time, whatever stream it came from.
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const applyConfig = async (hash: string, ir: IR, source: string): Promise<ConfigResult> => {
    if (applied?.hash === hash) {
      m.configs.inc({ result: "unchanged" });
      logger.info({ hash, source }, "configuration unchanged: nothing to apply");
      return { hash, applied: true, unavailableListeners: [...applied.unavailable] };
    }
    if (refused?.hash === hash) {
      m.configs.inc({ result: "refused" });
      return { hash, applied: false, error: refused.error, unavailableListeners: [] };
    }
    const refuse = (error: string): ConfigResult => {
      refused = { hash, error };
      m.configs.inc({ result: "refused" });
      logger.error({ hash, source, error }, "configuration refused; the previous one keeps serving");
      return { hash, applied: false, error, unavailableListeners: [] };
    };
    if (configHash(ir) !== hash) return refuse("the configuration does not match its hash");
    const broken = validateIR(ir);
    if (broken.length > 0) return refuse(`the IR violates its invariants: ${broken.slice(0, 5).join("; ")}`);
    const issues = checkRenderable(ir, renderOptions);
    if (issues.length > 0) return refuse(`cannot render: ${issues.slice(0, 5).map(formatIssue).join("; ")}`);
    try {
      const outcome = await dataplane.apply(ir);
      applied = { hash, unavailable: outcome.unavailableListeners };
      refused = undefined;
      m.configs.inc({ result: "applied" });
      m.lastApplied.set(Date.now() / 1000);
      logger.info({ hash, source, method: outcome.method }, `applied: ${oneLine(outcome.detail)}`);
      await persist(stateDir, hash, ir).catch((err: unknown) =>
        logger.warn({ err }, "could not keep the configuration in the state directory"),
      );
      return { hash, applied: true, unavailableListeners: [...outcome.unavailableListeners] };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const output = err instanceof ApplyError ? err.validationOutput : undefined;
      return refuse(oneLine(output !== undefined ? `${message}: ${lastLines(output)}` : message));
    }
  };

  const pod =
    o.pod ??
    (process.env["POD_NAMESPACE"] && process.env["POD_NAME"]
      ? `${process.env["POD_NAMESPACE"]}/${process.env["POD_NAME"]}`
      : `${o.gateway.namespace}/${hostname().toLowerCase()}`);
  const client = new ConfigStreamClient({
    controller: o.controller,
    gateway: o.gateway,
    tlsDir: o.tlsDir,
    pod,
    logger: logger.child({ component: "stream" }),
    onConnected: (c) => m.connected.set(c ? 1 : 0),
    onConfig: (message: ConfigMessage) =>
      serialized(() => {
        fromController = true;
        return applyConfig(message.hash, message.ir, "controller");
      }),
    ...(o.backoff !== undefined ? { backoff: o.backoff } : {}),
    ...(o.heartbeatMs !== undefined ? { heartbeatMs: o.heartbeatMs } : {}),
    ...(o.peerTimeoutMs !== undefined ? { peerTimeoutMs: o.peerTimeoutMs } : {}),
  });

  const admin: AgentAdmin = await startAgentAdmin({
    listen: o.admin,
    ready: () => {
      const r = isReady();
      m.ready.set(r ? 1 : 0);
      return r;
    },
    registry: metrics.registry,
    haproxyMetricsUrl: `http://${metricsAddress}/metrics`,
  });
  logger.info(
    { gateway: gatewayId, controller: o.controller, admin: admin.url, stateDir, pod },
    "gatehouse dataplane starting",
  );
  client.start();

  // The last configuration this pod applied, if the controller does not answer in time.
  const persistedTimer = setTimeout(() => {
    void serialized(async () => {
      if (fromController || applied !== undefined) return;
      const kept = await loadPersisted(stateDir);
      if (kept === undefined) return;
      logger.warn(
        { hash: kept.hash, file: join(stateDir, PERSISTED_CONFIG) },
        "no configuration from the controller yet: serving the last applied configuration kept in the state directory",
      );
      await applyConfig(kept.hash, kept.ir, "state directory");
    }).catch((err: unknown) => logger.error({ err }, "could not serve the kept configuration"));
  }, o.persistedAfterMs ?? 3000);
  persistedTimer.unref();

  const hardStopMs = parseDuration(renderOptions.hardStopAfter) ?? 600_000;
  let stopping: Promise<void> | undefined;
  const finish = async (graceful: boolean): Promise<void> => {
    clearTimeout(persistedTimer);
    client.stop();
    await queue;
    await local.close({ graceful, timeoutMs: graceful ? hardStopMs + 2000 : 2000 });
    await admin.close();
    await lock.release();
  };
  return {
    adminUrl: admin.url,
    metrics,
    haproxy,
    client,
    get appliedHash() {
      return applied?.hash;
    },
    get ready() {
      return isReady();
    },
    shutdown: () =>
      (stopping ??= (async () => {
        draining = true;
        logger.info(
          { drainMs: o.shutdownDrainMs },
          "shutting down: not ready, still serving while endpoints drop this pod",
        );
        await sleep(o.shutdownDrainMs);
        logger.info("drain time over: stopping HAProxy gracefully");
        await finish(true);
        logger.info("stopped");
      })()),
    stop: () => (stopping ??= finish(false)),
  };
}

async function persist(stateDir: string, hash: string, ir: IR): Promise<void> {
  const path = join(stateDir, PERSISTED_CONFIG);
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify({ hash, ir }), { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

async function loadPersisted(stateDir: string): Promise<{ hash: string; ir: IR } | undefined> {
  let text: string;
  try {
    text = await readFile(join(stateDir, PERSISTED_CONFIG), "utf8");
  } catch {
    return undefined;
  }
  const value = JSON.parse(text) as { hash?: unknown; ir?: unknown };
  if (typeof value.hash !== "string" || typeof value.ir !== "object" || value.ir === null) return undefined;
  return { hash: value.hash, ir: value.ir as IR };
}

function lastLines(text: string): string {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-5)
    .join(" | ");
}
