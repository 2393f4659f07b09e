// Flags shared by `gatehouse serve` and `gatehouse controller`: both run the same serve pipeline
// (admin server, HAProxy data plane, logs), so they parse and default these flags in one place.
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { isLoopbackHost } from "../admin/auth.ts";
import { exposedWithoutToken, parseAdminAddress } from "../admin/server.ts";
import { UsageError } from "../errors.ts";
import {
  parseAccessLogFormat,
  parseAccessLogOutput,
  type AccessLogFormat,
  type AccessLogOutput,
} from "../observability/access-log.ts";
import { parseLogFormat, parseLogLevel, type LogFormat, type LogLevel } from "../observability/logger.ts";
import { DEFAULT_CONTROLLER_NAME } from "../translate/options.ts";

/** node:util parseArgs option specs of the shared flags. */
export const DATAPLANE_OPTIONS = {
  admin: { type: "string" },
  "admin-token-file": { type: "string" },
  "admin-insecure-no-auth": { type: "boolean" },
  "state-dir": { type: "string" },
  haproxy: { type: "string" },
  "controller-name": { type: "string" },
  "server-slots": { type: "string" },
  "spare-backends": { type: "string" },
  "hard-stop-after": { type: "string" },
  "haproxy-metrics": { type: "string" },
  "log-format": { type: "string" },
  "log-level": { type: "string" },
  "udp-idle-timeout": { type: "string" },
  "udp-max-flows": { type: "string" },
  "access-log-format": { type: "string" },
  "access-log-output": { type: "string" },
  "route-metrics": { type: "string" },
} as const;

export type DataplaneFlagValues = {
  readonly [K in keyof typeof DATAPLANE_OPTIONS]?:
    ((typeof DATAPLANE_OPTIONS)[K]["type"] extends "boolean" ? boolean : string) | undefined;
};

/** `--admin` with its authentication: `tokenFile` and `insecureNoAuth` are only present when given. */
export interface AdminFlags {
  host: string;
  port: number;
  /** `--admin-token-file`: bearer token required on every admin path but /healthz and /ready. */
  tokenFile?: string;
  /** `--admin-insecure-no-auth`: serve a non-loopback address without a token (logged loudly). */
  insecureNoAuth?: true;
}

export interface DataplaneFlags {
  admin: AdminFlags;
  stateDir: string;
  haproxy: string;
  controllerName: string;
  serverSlots: number;
  spareBackends: number;
  hardStopAfter: string;
  metricsAddress: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  /** The UDP forwarder: how long an idle client flow lives, and how many flows it keeps at most. */
  udp: { idleTimeoutMs: number; maxFlows: number };
  /** HTTP access logs (`--access-log-format`, default json; `--access-log-output`, default stdout). */
  accessLog: { format: AccessLogFormat; output: AccessLogOutput };
  /** `--route-metrics on|off` (default on): per-route counters kept by HAProxy. */
  routeMetrics: boolean;
}

/** An integer flag within [min, max] (default `fallback`); anything else is a UsageError. */
function integerFlag(
  values: DataplaneFlagValues,
  name: "server-slots" | "spare-backends" | "udp-idle-timeout" | "udp-max-flows",
  fallback: number,
  [min, max]: readonly [number, number],
  unit = "",
): number {
  const raw = values[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be ${min}..${max}${unit === "" ? "" : ` (${unit})`}`);
  return n;
}

/**
 * Validates and defaults the shared flags; a bad value is a UsageError. `defaultStateDir` is used
 * without --state-dir: a path, or a function of the admin address (see perInstanceStateDir).
 */
export function parseDataplaneFlags(
  values: DataplaneFlagValues,
  defaultStateDir: string | ((admin: { host: string; port: number }) => string),
): DataplaneFlags {
  const admin = parseAdminFlags(values);
  const serverSlots = integerFlag(values, "server-slots", 16, [1, 4096]);
  const spareBackends = integerFlag(values, "spare-backends", 16, [0, 1024]);
  const udpIdleS = integerFlag(values, "udp-idle-timeout", 60, [1, 86_400], "seconds");
  const udpMaxFlows = integerFlag(values, "udp-max-flows", 4096, [1, 1_000_000]);
  return {
    admin,
    stateDir: resolve(
      values["state-dir"] ?? (typeof defaultStateDir === "string" ? defaultStateDir : defaultStateDir(admin)),
    ),
    haproxy: values.haproxy ?? "haproxy",
    controllerName: values["controller-name"] ?? DEFAULT_CONTROLLER_NAME,
    serverSlots,
    spareBackends,
    hardStopAfter: values["hard-stop-after"] ?? "10m",
    metricsAddress: values["haproxy-metrics"] ?? "127.0.0.1:9902",
    logFormat: parseLogFormat(values["log-format"] ?? "json"),
    logLevel: parseLogLevel(values["log-level"] ?? "info"),
    udp: { idleTimeoutMs: udpIdleS * 1000, maxFlows: udpMaxFlows },
    accessLog: {
      format: parseAccessLogFormat(values["access-log-format"] ?? "json"),
      output: parseAccessLogOutput(values["access-log-output"] ?? "stdout"),
    },
    routeMetrics: onOff(values["route-metrics"] ?? "on", "route-metrics"),
  };
}

function onOff(value: string, name: string): boolean {
  if (value === "on" || value === "off") return value === "on";
  throw new UsageError(`--${name} must be on or off`);
}

/** `--help` lines of the observability flags, shared by `serve` and `controller`. */
export const OBSERVABILITY_HELP = `      --access-log-format FORMAT
                             HTTP access logs: json (default; one JSON object per line),
                             text, custom:<template> (fields as {name}, e.g.
                             'custom:{time} {status} {route} {duration_ms}'), or off.
      --access-log-output OUT
                             stdout (default), file:<path>, or syslog:<host>:<port> (UDP).
      --route-metrics on|off Per-route request, status and byte counters kept by HAProxy,
                             on /metrics (default on).`;

/** Where per-instance state directories are made: what perInstanceStateDir reads of the host. */
export interface StateDirHost {
  /** `$XDG_RUNTIME_DIR` (a per-user 0700 directory, normally /run/user/<uid>), if set. */
  runtimeDir: string | undefined;
  /** os.tmpdir(). */
  tmpDir: string;
  uid: number;
}

/** Longest default state directory: unix socket paths under it must fit (see render/check.ts). */
const MAX_DEFAULT_STATE_DIR = 50;

/**
 * The default state directory of one instance: `$XDG_RUNTIME_DIR/gatehouse/<hash>`, else
 * `<tmp>/gatehouse-<uid>/<hash>` (plain /tmp when the temporary directory's path is too long for
 * the sockets under it), where the hash covers `identity` (e.g. the config path and the admin
 * address). So two instances started on different inputs never share a directory, and the same
 * instance restarted finds its own. The parent directory must be private (see ensurePrivateDir).
 */
export function perInstanceStateDir(identity: readonly string[], host: StateDirHost): string {
  const hash = createHash("sha256").update(identity.join("\0")).digest("hex").slice(0, 16);
  const fallback = join("/tmp", `gatehouse-${host.uid}`, hash);
  const candidates = [
    ...(host.runtimeDir !== undefined && host.runtimeDir.startsWith("/")
      ? [join(host.runtimeDir, "gatehouse", hash)]
      : []),
    join(host.tmpDir, `gatehouse-${host.uid}`, hash),
  ];
  return candidates.find((dir) => dir.length <= MAX_DEFAULT_STATE_DIR) ?? fallback;
}

/**
 * `--admin` and its authentication. Beyond loopback, the admin API needs `--admin-token-file` or the
 * explicit `--admin-insecure-no-auth`; the two together contradict each other.
 */
function parseAdminFlags(values: DataplaneFlagValues): AdminFlags {
  const admin: AdminFlags = parseAdminAddress(values.admin ?? "127.0.0.1:9901");
  const tokenFile = values["admin-token-file"];
  const insecure = values["admin-insecure-no-auth"] === true;
  if (tokenFile !== undefined) {
    if (tokenFile === "") throw new UsageError("--admin-token-file must be a path");
    if (insecure)
      throw new UsageError("--admin-token-file and --admin-insecure-no-auth contradict each other: give one");
    admin.tokenFile = resolve(tokenFile);
  } else if (insecure) {
    admin.insecureNoAuth = true;
  } else if (!isLoopbackHost(admin.host)) {
    throw new UsageError(exposedWithoutToken(admin.host, admin.port));
  }
  return admin;
}

/** `--help` lines of the admin authentication flags, shared by `serve` and `controller`. */
export const ADMIN_AUTH_HELP = `      --admin-token-file PATH
                             File whose first line is the admin bearer token: every admin
                             path but /healthz and /ready then needs "Authorization: Bearer
                             <token>" (the file is re-read when it changes). Required when
                             --admin is not a loopback address.
      --admin-insecure-no-auth
                             Serve a non-loopback --admin without a token (logged as a
                             security warning at start). Not recommended.`;
