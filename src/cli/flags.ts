// Flag values shared by the commands: durations and addresses, with the usage error that names
// the flag.
import { UsageError } from "../errors.ts";
import { parseHostPort, type HostPort } from "../net/hostport.ts";

/** A duration flag (`500ms`, `15s`, `1.5m`) in milliseconds; `fallback` when not given. */
export function durationFlag(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(value);
  const ms = m === null ? NaN : Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000);
  if (!Number.isFinite(ms) || ms <= 0)
    throw new UsageError(`${flag} must be a positive duration such as 500ms, 15s or 1m, not "${value}"`);
  return Math.round(ms);
}

/** `host:port` or `[v6]:port` with a port from 1 to 65535. */
export function hostPortFlag(flag: string, value: unknown): HostPort {
  const parsed = typeof value === "string" ? parseHostPort(value) : undefined;
  if (parsed === undefined || parsed.port === 0)
    throw new UsageError(`${flag} must be HOST:PORT, not "${String(value)}"`);
  return parsed;
}
