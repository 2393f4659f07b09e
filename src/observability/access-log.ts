// Access logs: HAProxy writes one JSON line per finished HTTP request into a ring that it forwards
// over TCP to a loopback port Gatehouse owns (src/dataplane/haproxy/render/logging.ts); each line
// must start with this instance's token, and is parsed, given its Gateway API
// identity (gateway, listener, route, rule, backend Service) from the rule id, fed to the per-route
// duration histogram, and written in the chosen format (JSON lines by default, text, or a custom
// template) to stdout, a file or a syslog server.
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { createWriteStream, type WriteStream } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { hostname } from "node:os";
import { GatehouseError, UsageError } from "../errors.ts";
import { ACCESS_LOG_ENTRY_FIELDS } from "./access-log-fields.ts";
import type { RuleCounterIdentity } from "../dataplane/haproxy/render/metrics.ts";

/** One request as HAProxy logged it (field names of ACCESS_LOG_FIELDS). */
export interface HAProxyRecord {
  /** The instance's token (see AccessLogReceiver.token). */
  k: string;
  ts: number;
  /** Milliseconds of the accept date, zero-padded ("064"). */
  ms: string | number;
  rid: string;
  fe: string;
  be: string;
  srv: string;
  sip: string;
  sport: string;
  status: number;
  TR: number;
  Tw: number;
  Tc: number;
  Tr: number;
  Ta: number;
  Tt: number;
  in: number;
  out: number;
  ci: string;
  cp: number;
  method: string;
  path: string;
  query: string;
  version: string;
  host: string;
  xrid: string;
  ua: string;
  id: string;
  term: string;
  /** Retries, "+N" when the request was redispatched. */
  retries: string | number;
}

/** One access log entry as Gatehouse writes it (JSON field order = this order). */
export interface AccessLogEntry {
  time: string;
  request_id: string;
  client: string;
  method: string;
  host: string | null;
  path: string;
  query: string | null;
  protocol: string;
  status: number;
  gateway: string | null;
  listener: string | null;
  route_kind: string | null;
  route_namespace: string | null;
  route: string | null;
  rule: string | null;
  backend: string | null;
  endpoint: string | null;
  /** Time to the first response byte from the start of the request (ms): TR + Tw + Tc + Tr. */
  ttfb_ms: number | null;
  /** From the first request byte to the last response byte (ms; HAProxy's Ta). */
  duration_ms: number;
  bytes_in: number;
  bytes_out: number;
  user_agent: string | null;
  termination: string;
  retries: number;
}

export class AccessLogParseError extends GatehouseError {}

/** Longer unterminated input is dropped: HAProxy's log lines are bounded by its `len` (see logging.ts). */
const MAX_LINE = 1 << 20;

/**
 * Parses one line. HAProxy's `E` flag writes `\]` for `]`, which JSON does not know; escaped
 * backslashes are kept in pairs so that `\\]` stays a backslash followed by `]`.
 */
export function parseRecord(line: string): HAProxyRecord {
  const trimmed = line.trim();
  // Most lines have no `\]`: the replacement's scan of the whole line is skipped for them.
  const text = trimmed.includes("\\]")
    ? trimmed.replace(/\\(\\|\])/g, (m, c: string) => (c === "]" ? "]" : m))
    : trimmed;
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null || !("status" in value))
      throw new Error("not an access log record");
    return value as HAProxyRecord;
  } catch (error) {
    throw new AccessLogParseError(`unparsable access log line (${line.length} bytes)`, {
      cause: error,
    });
  }
}

const absent = (s: string | undefined): string | null =>
  s === undefined || s === "" || s === "-" ? null : s;

/** `service:<ns>:<name>:<port>[...]` (the renderer's backend names) → `<ns>/<name>:<port>`. */
function serviceOf(haproxyBackend: string): string | undefined {
  const m = /^(?:service|static):([^:]+):([^:]+):(\d+)/.exec(haproxyBackend);
  return m === null ? undefined : `${m[1]}/${m[2]}:${m[3]}`;
}

/** `new Date(seconds * 1000).toISOString()` up to the seconds ("2026-12-03T18:46:22."), for the last second seen. */
let isoSecond = { ts: Number.NaN, prefix: "" };

/** The entry's time: HAProxy's accept date (seconds and milliseconds) as RFC 3339 in UTC. */
function entryTime(ts: number, ms: string | number): string {
  const m = Number(ms);
  if (!Number.isInteger(ts) || !Number.isInteger(m) || m < 0 || m > 999)
    return new Date(ts * 1000 + m).toISOString();
  if (isoSecond.ts !== ts) {
    const iso = new Date(ts * 1000).toISOString();
    isoSecond = { ts, prefix: iso.slice(0, iso.length - 4) };
  }
  return `${isoSecond.prefix}${String(m).padStart(3, "0")}Z`;
}

export function toEntry(r: HAProxyRecord, id: RuleCounterIdentity | undefined): AccessLogEntry {
  const parts = [r.TR, r.Tw, r.Tc, r.Tr];
  const ttfb = parts.every((t) => typeof t === "number" && t >= 0) ? parts.reduce((a, b) => a + b, 0) : null;
  const backend =
    serviceOf(r.be) ?? (id !== undefined && id.backends.length === 1 ? (id.backends[0] ?? null) : null);
  return {
    time: entryTime(r.ts, r.ms),
    request_id: absent(r.xrid) ?? r.id,
    client: `${r.ci}:${r.cp}`,
    method: r.method,
    host: absent(r.host),
    path: r.path,
    query: absent(r.query),
    protocol: r.version,
    status: r.status,
    gateway: id?.gateway ?? null,
    listener: id?.listener ?? null,
    route_kind: id?.routeKind ?? null,
    route_namespace: id?.routeNamespace ?? null,
    route: id?.routeName ?? null,
    rule: id?.rule ?? null,
    backend,
    endpoint: absent(r.sip) === null ? null : `${r.sip}:${r.sport}`,
    ttfb_ms: ttfb,
    duration_ms: r.Ta,
    bytes_in: r.in,
    bytes_out: r.out,
    user_agent: absent(r.ua),
    termination: r.term,
    retries: Number(String(r.retries).replace(/^\+/, "")) || 0,
  };
}

/** How entries are written: JSON lines, one text line, or a `{field}` template. */
export type AccessLogFormat =
  { kind: "off" } | { kind: "json" } | { kind: "text" } | { kind: "custom"; template: string };

const FIELDS = new Set<string>(ACCESS_LOG_ENTRY_FIELDS);

/** `off`, `json`, `text` or `custom:<template>` (fields as `{name}`); anything else is a UsageError. */
export function parseAccessLogFormat(value: string): AccessLogFormat {
  if (value === "off" || value === "json" || value === "text") return { kind: value };
  if (value.startsWith("custom:")) {
    const template = value.slice("custom:".length);
    for (const m of template.matchAll(/\{([^}]*)\}/g))
      if (!FIELDS.has(m[1] ?? ""))
        throw new UsageError(
          `--access-log-format: unknown field {${m[1]}}; known: ${[...FIELDS].join(", ")}`,
        );
    if (template === "") throw new UsageError("--access-log-format custom: needs a template");
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(template))
      throw new UsageError("--access-log-format custom: the template must not hold control characters");
    return { kind: "custom", template };
  }
  throw new UsageError("--access-log-format must be off, json, text or custom:<template with {field}s>");
}

/** A value for a text line: control characters, quotes and backslashes escaped; absent = `-`. */
function textValue(v: string | number | null): string {
  if (v === null) return "-";
  let out = "";
  for (const c of String(v)) {
    const code = c.charCodeAt(0);
    out +=
      code < 0x20 || code === 0x7f || c === '"' || c === "\\"
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : c;
  }
  return out;
}

export function formatEntry(e: AccessLogEntry, format: AccessLogFormat): string | undefined {
  switch (format.kind) {
    case "off":
      return undefined;
    case "json":
      return JSON.stringify(e);
    case "text":
      return (
        `${e.time} ${e.client} "${textValue(e.method)} ${textValue(e.host)}${textValue(e.path)}` +
        `${e.query === null ? "" : textValue(e.query)} ${textValue(e.protocol)}" ${e.status} ${e.bytes_out}` +
        ` ttfb_ms=${textValue(e.ttfb_ms)} duration_ms=${e.duration_ms} gateway=${textValue(e.gateway)}` +
        ` listener=${textValue(e.listener)} route=${textValue(e.route_kind)}/${textValue(e.route_namespace)}/${textValue(e.route)}` +
        ` rule=${textValue(e.rule)} backend=${textValue(e.backend)} endpoint=${textValue(e.endpoint)}` +
        ` request_id="${textValue(e.request_id)}" user_agent="${textValue(e.user_agent)}"`
      );
    case "custom":
      return format.template.replace(/\{([^}]*)\}/g, (_, name: string) =>
        textValue((e as unknown as Record<string, string | number | null>)[name] ?? null),
      );
  }
}

/** Where formatted lines go. */
export interface AccessLogSink {
  /** Writes lines (each without its newline): one write for all of them where the output allows. */
  write(lines: readonly string[]): void;
  close(): Promise<void>;
}

/** `stdout`, `file:<path>` or `syslog:<host>:<port>` (UDP, RFC 5424). */
export type AccessLogOutput =
  { kind: "stdout" } | { kind: "file"; path: string } | { kind: "syslog"; host: string; port: number };

export function parseAccessLogOutput(value: string): AccessLogOutput {
  if (value === "stdout") return { kind: "stdout" };
  if (value.startsWith("file:") && value.length > 5) return { kind: "file", path: value.slice(5) };
  const m = /^syslog:(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value);
  if (m !== null && Number(m[2]) > 0 && Number(m[2]) < 65536)
    return { kind: "syslog", host: (m[1] ?? "").replace(/^\[|\]$/g, ""), port: Number(m[2]) };
  throw new UsageError("--access-log-output must be stdout, file:<path> or syslog:<host>:<port>");
}

export function openSink(
  output: AccessLogOutput,
  stdout: NodeJS.WritableStream = process.stdout,
): AccessLogSink {
  switch (output.kind) {
    case "stdout":
      return { write: (lines) => void stdout.write(`${lines.join("\n")}\n`), close: async () => {} };
    case "file": {
      const stream: WriteStream = createWriteStream(output.path, { flags: "a" });
      return {
        write: (lines) => void stream.write(`${lines.join("\n")}\n`),
        close: () => new Promise((resolve) => stream.end(resolve)),
      };
    }
    case "syslog": {
      const socket = createSocket(output.host.includes(":") ? "udp6" : "udp4");
      const host = hostname();
      return {
        // <134> = facility local0, severity info.
        write: (lines) => {
          const time = new Date().toISOString();
          for (const line of lines)
            socket.send(`<134>1 ${time} ${host} gatehouse - access - ${line}`, output.port, output.host);
        },
        close: () => new Promise((resolve) => socket.close(() => resolve())),
      };
    }
  }
}

export interface AccessLogReceiverOptions {
  format: AccessLogFormat;
  sink: AccessLogSink;
  /** Rule id → Gateway API identity (the IR in effect). */
  identity: (rid: string) => RuleCounterIdentity | undefined;
  /** Every parsed request of a rule (for the duration histogram). */
  onRecord?: (record: HAProxyRecord) => void;
  onError?: (error: unknown) => void;
}

/**
 * The loopback TCP port HAProxy's `gh_access` ring forwards the access log to: one JSON object per
 * line, each starting with `token` (random per instance, in haproxy.cfg only), so that another local
 * process connecting to the port cannot add lines.
 */
export class AccessLogReceiver {
  readonly #o: AccessLogReceiverOptions;
  readonly token = randomBytes(16).toString("hex");
  #server: Server | undefined;
  readonly #connections = new Set<Socket>();
  /** Lines that could not be parsed, or without the token. */
  unparsable = 0;
  received = 0;

  constructor(options: AccessLogReceiverOptions) {
    this.#o = options;
  }

  /** Listens on 127.0.0.1 (a free port); returns `127.0.0.1:<port>` for RenderOptions.accessLog. */
  async start(): Promise<string> {
    const server = createServer((socket) => {
      this.#connections.add(socket);
      socket.on("close", () => this.#connections.delete(socket));
      // A connection reset (an old HAProxy worker going away) is not a problem: its lines are read.
      socket.on("error", () => {});
      // Lines are split from each chunk by hand (not readline): the lines of one chunk are
      // written out in one write, where a write per line cost a system call each.
      socket.setEncoding("utf8");
      let partial = "";
      socket.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        if (partial.length > MAX_LINE) partial = ""; // not HAProxy's (its lines are bounded)
        this.handleLines(lines);
      });
      socket.on("end", () => {
        if (partial !== "") this.handleLines([partial]);
        partial = "";
      });
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("internal: no TCP address");
    return `127.0.0.1:${address.port}`;
  }

  /** One line (public for tests). */
  handle(line: string): void {
    this.handleLines([line]);
  }

  /** Lines received together: their entries are written in one sink write. */
  handleLines(lines: readonly string[]): void {
    const out: string[] = [];
    for (const line of lines) {
      const entry = this.#entry(line);
      if (entry !== undefined) out.push(entry);
    }
    if (out.length > 0) this.#o.sink.write(out);
  }

  #entry(line: string): string | undefined {
    if (line.trim() === "") return undefined;
    this.received++;
    let record: HAProxyRecord;
    try {
      record = parseRecord(line);
      if (record.k !== this.token)
        throw new AccessLogParseError("an access log line without this instance's token");
    } catch (error) {
      this.unparsable++;
      this.#o.onError?.(error);
      return undefined;
    }
    if (record.fe.startsWith("gh_")) return undefined; // internal frontends (the mirror sink)
    this.#o.onRecord?.(record);
    return formatEntry(toEntry(record, this.#o.identity(record.rid)), this.#o.format);
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const c of this.#connections) c.destroy();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    await this.#o.sink.close();
  }
}
