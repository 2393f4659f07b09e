// Structured logging with pino. One JSON object per line on stderr by default (stdout stays free for
// command output); `--log-format text` prints one readable line per record for humans:
//
//   2025-01-02T03:04:05.678Z INFO  reloaded haproxy generation=4 durationMs=12
//
// Put details in fields, not in the message: `log.info({ generation }, "reloaded haproxy")`. Errors
// go in the `err` field, so their type, message, stack and (for InputError) location are kept.
//
// No private key reaches a log line. Nothing logs an IR or a Secret today; should one ever be
// logged, the fields that hold keys are censored by path (REDACT_PATHS), and, whatever the field,
// every line is scanned for PEM (or base64-encoded PEM) private keys just before it is written.
import { pino, stdTimeFunctions } from "pino";
import type { DestinationStream, Logger } from "pino";
import { redactText, REDACTED_KEY } from "../admin/redact.ts";
import { UsageError } from "../errors.ts";

export type { Logger } from "pino";

export const LOG_FORMATS = ["json", "text"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Records below this level are dropped (default `info`). */
  level?: LogLevel;
  /** `json` (default): one JSON object per line; `text`: one readable line per record. */
  format?: LogFormat;
  /** Where lines go (default stderr, written synchronously so nothing is lost on exit). */
  destination?: DestinationStream;
}

/**
 * Fields censored wherever they appear at these depths: IRCertificate.keyPem (an IR logged whole,
 * a listener, a certificate) and Secret data (`tls.key`, any `data` or `stringData` of an object
 * that looks like a Secret).
 */
export const REDACT_PATHS = [
  "keyPem",
  "*.keyPem",
  "*.certificates[*].keyPem",
  "*.tls.certificates[*].keyPem",
  "ir.gateways[*].listeners[*].tls.certificates[*].keyPem",
  "gateways[*].listeners[*].tls.certificates[*].keyPem",
  'data["tls.key"]',
  'stringData["tls.key"]',
  '*.data["tls.key"]',
  '*.stringData["tls.key"]',
];

/** The logger every component gets (as is, or as `logger.child({ component: "..." })`). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "json";
  const sink = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level: options.level ?? "info",
      // No pid/hostname on every line: the process and the host are known to whoever collects the logs.
      base: null,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED_KEY },
      hooks: { streamWrite: redactText },
    },
    format === "text" ? textDestination(sink) : sink,
  );
}

/** A logger that drops everything (for tests and library defaults). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** Validates a `--log-format` value. */
export function parseLogFormat(value: string): LogFormat {
  const format = LOG_FORMATS.find((candidate) => candidate === value);
  if (format === undefined) {
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(", ")}, not "${value}"`);
  }
  return format;
}

/** Validates a `--log-level` value. */
export function parseLogLevel(value: string): LogLevel {
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (level === undefined) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, not "${value}"`);
  }
  return level;
}

/** Wraps a destination so each JSON record written to it arrives as one text line instead. */
export function textDestination(inner: DestinationStream): DestinationStream {
  return {
    write(chunk: string): void {
      for (const line of chunk.split("\n")) {
        if (line === "") continue;
        let record: unknown;
        try {
          record = JSON.parse(line);
        } catch {
          inner.write(`${line}\n`);
          continue;
        }
        inner.write(isRecord(record) ? `${formatTextLine(record)}\n` : `${line}\n`);
      }
    },
  };
}

const BARE = /^[\w./:@+-]+$/;

/**
 * One record as `TIME LEVEL message key=value ...`. Strings that need it are JSON-quoted; an `err`
 * field shows its message inline, and its stack on the following lines at error level and above.
 */
export function formatTextLine(record: Record<string, unknown>): string {
  const { time, level, msg, err, ...fields } = record;
  const levelText = typeof level === "string" ? level.toUpperCase() : String(level);
  const head = [formatValue(time ?? ""), levelText.padEnd(5)];
  if (typeof msg === "string" && msg !== "") head.push(msg);
  const parts = Object.entries(fields).map(([key, value]) => `${key}=${formatValue(value)}`);
  let stack = "";
  if (isRecord(err)) {
    const message = typeof err["message"] === "string" ? err["message"] : JSON.stringify(err);
    parts.push(`err=${formatValue(message)}`);
    if ((level === "error" || level === "fatal") && typeof err["stack"] === "string") {
      stack = `\n${err["stack"].replace(/^/gm, "    ")}`;
    }
  } else if (err !== undefined) {
    parts.push(`err=${formatValue(err)}`);
  }
  return [...head, ...parts].join(" ") + stack;
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return BARE.test(value) ? value : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  if (typeof value === "bigint") return value.toString();
  return JSON.stringify(value) ?? typeof value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
