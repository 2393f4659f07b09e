// Flags shared by `gatehouse serve` and `gatehouse controller`: both run the same serve pipeline
// (admin server, HAProxy data plane, logs), so they parse and default these flags in one place.
import { resolve } from "node:path";
import { parseAdminAddress } from "../admin/server.ts";
import { UsageError } from "../errors.ts";
import { parseLogFormat, parseLogLevel, type LogFormat, type LogLevel } from "../observability/logger.ts";
import { DEFAULT_CONTROLLER_NAME } from "../translate/index.ts";

/** node:util parseArgs option specs of the shared flags. */
export const DATAPLANE_OPTIONS = {
  admin: { type: "string" },
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
} as const;

export type DataplaneFlagValues = { readonly [K in keyof typeof DATAPLANE_OPTIONS]?: string | undefined };

export interface DataplaneFlags {
  admin: { host: string; port: number };
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
}

/** An integer flag within [min, max] (default `fallback`); anything else is a UsageError. */
function integerFlag(
  values: DataplaneFlagValues,
  name: keyof DataplaneFlagValues,
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

/** Validates and defaults the shared flags; a bad value is a UsageError. */
export function parseDataplaneFlags(values: DataplaneFlagValues, defaultStateDir: string): DataplaneFlags {
  const serverSlots = integerFlag(values, "server-slots", 16, [1, 4096]);
  const spareBackends = integerFlag(values, "spare-backends", 16, [0, 1024]);
  const udpIdleS = integerFlag(values, "udp-idle-timeout", 60, [1, 86_400], "seconds");
  const udpMaxFlows = integerFlag(values, "udp-max-flows", 4096, [1, 1_000_000]);
  return {
    admin: parseAdminAddress(values.admin ?? "127.0.0.1:9901"),
    stateDir: resolve(values["state-dir"] ?? defaultStateDir),
    haproxy: values.haproxy ?? "haproxy",
    controllerName: values["controller-name"] ?? DEFAULT_CONTROLLER_NAME,
    serverSlots,
    spareBackends,
    hardStopAfter: values["hard-stop-after"] ?? "10m",
    metricsAddress: values["haproxy-metrics"] ?? "127.0.0.1:9902",
    logFormat: parseLogFormat(values["log-format"] ?? "json"),
    logLevel: parseLogLevel(values["log-level"] ?? "info"),
    udp: { idleTimeoutMs: udpIdleS * 1000, maxFlows: udpMaxFlows },
  };
}
