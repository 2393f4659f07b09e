// Gatehouse under test: YAML generators for the standalone input, and `gatehouse serve` as a child.
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, LOOPBACK, tryGet, waitFor } from "./net.ts";
import { start, stop, tail, tempDir } from "./proc.ts";
import type { Proc } from "./proc.ts";

export const ROOT = join(import.meta.dirname, "..", "..");
export const CONTROLLER = "gatehouse.dev/gateway-controller";

// ---------------------------------------------------------------------------------------------------
// Input generators (standalone mode: Services list their endpoints in gatehouse.dev/endpoints).

export function gatewayYaml(port: number): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: bench
spec:
  controllerName: ${CONTROLLER}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench
  namespace: default
spec:
  gatewayClassName: bench
  addresses:
    - type: IPAddress
      value: ${LOOPBACK}
  listeners:
    - name: http
      port: ${port}
      protocol: HTTP
      allowedRoutes:
        namespaces:
          from: Same
`;
}

export function serviceYaml(name: string, endpoints: readonly string[], port = 80): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: default
  annotations:
    gatehouse.dev/endpoints: "${endpoints.join(", ")}"
spec:
  ports:
    - port: ${port}
`;
}

export interface RouteSpec {
  name: string;
  hostname: string;
  /** PathPrefix match. */
  path: string;
  service: string;
  port?: number;
}

export function routeYaml(r: RouteSpec): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ${r.name}
  namespace: default
spec:
  parentRefs:
    - name: bench
  hostnames:
    - ${r.hostname}
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: ${r.path}
      backendRefs:
        - name: ${r.service}
          port: ${r.port ?? 80}
`;
}

/** The i-th generated route: its own hostname, path and Service (static endpoint = the backend). */
export function numberedRoute(prefix: string, i: number): RouteSpec {
  const id = `${prefix}${String(i).padStart(5, "0")}`;
  return { name: id, hostname: `${id}.bench.test`, path: `/${id}`, service: `svc-${id}` };
}

/** A route with its own Service, as one YAML file's content. */
export function routeWithServiceYaml(r: RouteSpec, backend: string): string {
  return `${routeYaml(r)}---\n${serviceYaml(r.service, [backend], r.port ?? 80)}`;
}

/** Writes a file atomically (temp file without a YAML extension, then rename). */
export function writeAtomic(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
}

export function removeFile(file: string): void {
  rmSync(file, { force: true });
}

// ---------------------------------------------------------------------------------------------------
// The serve process.

export interface GatehouseOptions {
  /** Directory of YAML files (watched). */
  configDir: string;
  cpus?: string | undefined;
  /** Extra environment (e.g. NODE_OPTIONS). */
  env?: Record<string, string>;
  /** How long to wait for /ready (default 120 s; 5,000 routes take a while). */
  readyTimeoutMs?: number;
  label?: string;
  /** More `gatehouse serve` flags (e.g. `--access-log-format off`). */
  extraArgs?: readonly string[];
}

export interface Gatehouse {
  readonly proc: Proc;
  readonly adminPort: number;
  readonly stateDir: string;
  /** Parsed `/metrics` (series → value). */
  metrics(): Promise<Metrics>;
  /** `/ready` document (status 0 when unreachable). */
  ready(): Promise<{ status: number; ready: boolean; reason?: string }>;
  /** Waits until every loaded generation is applied (ready with no pending reason). */
  settled(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Prometheus text → series (`name{labels}`) → value. */
export type Metrics = Map<string, number>;

export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    if (space < 0) continue;
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** Sum of every series of a metric family (all label values). */
export function metricSum(metrics: Metrics, name: string, filter?: (series: string) => boolean): number {
  let sum = 0;
  for (const [series, value] of metrics) {
    if (series !== name && !series.startsWith(`${name}{`)) continue;
    if (filter !== undefined && !filter(series)) continue;
    sum += value;
  }
  return sum;
}

/** The counters that tell how changes were applied. */
export interface ApplyCounters {
  reloads: number;
  runtime: number;
  runtimeMap: number;
  runtimeServer: number;
  translations: number;
  failedReloads: number;
}

export function applyCounters(m: Metrics): ApplyCounters {
  return {
    reloads: metricSum(m, "gatehouse_reloads_total", (s) => s.includes('result="success"')),
    failedReloads: metricSum(m, "gatehouse_reloads_total", (s) => !s.includes('result="success"')),
    runtime: metricSum(m, "gatehouse_runtime_updates_total"),
    runtimeMap: metricSum(m, "gatehouse_runtime_updates_total", (s) => s.includes('type="map"')),
    runtimeServer: metricSum(m, "gatehouse_runtime_updates_total", (s) => s.includes('type="server"')),
    translations: metricSum(m, "gatehouse_translations_total"),
  };
}

export function counterDelta(before: ApplyCounters, after: ApplyCounters): ApplyCounters {
  return {
    reloads: after.reloads - before.reloads,
    failedReloads: after.failedReloads - before.failedReloads,
    runtime: after.runtime - before.runtime,
    runtimeMap: after.runtimeMap - before.runtimeMap,
    runtimeServer: after.runtimeServer - before.runtimeServer,
    translations: after.translations - before.translations,
  };
}

async function getText(port: number, path: string): Promise<{ status: number; body: string }> {
  return tryGet(port, path, { timeoutMs: 10_000 });
}

export async function startGatehouse(options: GatehouseOptions): Promise<Gatehouse> {
  const label = options.label ?? "gatehouse";
  // Short: HAProxy's unix sockets live under the state dir (Gatehouse allows at most 50 characters).
  const dir = tempDir("gh");
  const stateDir = join(dir, "state");
  const adminPort = await freePort();
  const metricsPort = await freePort();
  const proc = start(
    label,
    process.execPath,
    [
      join(ROOT, "bin", "gatehouse.js"),
      "serve",
      "--config",
      options.configDir,
      "--state-dir",
      stateDir,
      "--admin",
      `${LOOPBACK}:${adminPort}`,
      "--haproxy-metrics",
      `${LOOPBACK}:${metricsPort}`,
      "--log-format",
      "json",
      ...(options.extraArgs ?? []),
    ],
    { cpus: options.cpus, env: { ...process.env, ...options.env }, logFile: join(dir, "gatehouse.log") },
  );
  const gatehouse: Gatehouse = {
    proc,
    adminPort,
    stateDir,
    async metrics() {
      const r = await getText(adminPort, "/metrics");
      if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.body.slice(0, 200)}`);
      return parseMetrics(r.body);
    },
    async ready() {
      const r = await getText(adminPort, "/ready");
      if (r.status === 0) return { status: 0, ready: false, reason: r.body };
      try {
        const doc = JSON.parse(r.body) as { ready: boolean; reason?: string };
        return { status: r.status, ...doc };
      } catch {
        return { status: r.status, ready: false, reason: r.body };
      }
    },
    async settled(timeoutMs = 60_000) {
      await waitFor(
        `${label} to apply every loaded generation`,
        async () => {
          if (!proc.alive()) throw new Error(`${label} exited:\n${tail(proc)}`);
          const r = await gatehouse.ready();
          return r.status === 200 && r.ready && r.reason === undefined ? true : undefined;
        },
        { timeoutMs, intervalMs: 20 },
      );
    },
    stop: () => stop(proc, { graceMs: 10_000 }),
  };
  try {
    await waitFor(
      `${label} /ready`,
      async () => {
        if (!proc.alive()) throw new Error(`exited early`);
        const r = await gatehouse.ready();
        if (!r.ready && r.reason !== undefined && r.reason.includes("failed to apply"))
          throw new Error(r.reason);
        return r.status === 200 && r.ready ? true : undefined;
      },
      { timeoutMs: options.readyTimeoutMs ?? 120_000, intervalMs: 50 },
    );
  } catch (err) {
    const message = `${label} did not become ready: ${err instanceof Error ? err.message : String(err)}\n${tail(proc)}`;
    await gatehouse.stop();
    throw new Error(message);
  }
  return gatehouse;
}
