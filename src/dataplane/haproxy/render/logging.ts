// Access logs (RenderOptions.accessLog): every HTTP request HAProxy finishes is written as one line
// (syslog "raw" format: the message only) into an in-memory ring, `gh_access`, which HAProxy
// forwards in batches over one TCP connection to a loopback address where Gatehouse reads it (see
// src/observability/access-log.ts), adds Gateway API names and writes it out in the format the user
// chose. The request path only copies the line into the ring: a datagram per request (`log
// <udp address>`) cost about as much CPU as the proxying itself, a ring write a small fraction of
// it. When Gatehouse reads too slowly, the ring overwrites the oldest lines (they are lost, HAProxy
// never waits). TCP/TLS listeners are not logged.
//
// The message is a JSON object built by `log-format`. Nothing a client sends can break it:
// - captured headers (Host, X-Request-Id, User-Agent) go through the `json(utf8s)` converter, which
//   escapes quotes, backslashes and control characters (\uXXXX) and drops invalid UTF-8;
// - the path and query come from HAProxy's request line, where control characters, spaces and `"`
//   are already `#XX`-encoded; the `E` flag escapes `"`, `\` and `]` with a backslash (the reader
//   turns the one escape JSON lacks, `\]`, back into `]`);
// - every other field is a number, an address, an HAProxy name or a rule id (numbers HAProxy may
//   pad or sign, %ms and %rc, are quoted and read back as numbers).
import { word } from "./escape.ts";
import type { RenderContext, Section } from "./model.ts";

/** Request headers captured for the log, in capture slot order. */
export const CAPTURED_HEADERS = ["host", "x-request-id", "user-agent"] as const;
const CAPTURE_LENGTH = 256;

/** Field name → log-format value, in output order. Strings are quoted here, numbers are bare. */
export const ACCESS_LOG_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ["ts", "%Ts"],
  // Quoted: %ms is left-padded with zeros ("064"), which JSON does not take as a number.
  ["ms", '"%ms"'],
  ["rid", '"%[var(txn.gh_rule)]"'],
  ["fe", '"%f"'],
  ["be", '"%b"'],
  ["srv", '"%s"'],
  ["sip", '"%si"'],
  ["sport", '"%sp"'],
  ["status", "%ST"],
  ["TR", "%TR"],
  ["Tw", "%Tw"],
  ["Tc", "%Tc"],
  ["Tr", "%Tr"],
  ["Ta", "%Ta"],
  ["Tt", "%Tt"],
  ["in", "%U"],
  ["out", "%B"],
  ["ci", '"%ci"'],
  ["cp", "%cp"],
  ["method", '"%HM"'],
  ["path", '"%{+E}HPO"'],
  ["query", '"%{+E}HQ"'],
  ["version", '"%HV"'],
  ...CAPTURED_HEADERS.map((_, i): [string, string] => [
    ["host", "xrid", "ua"][i] ?? "",
    `"%[capture.req.hdr(${i}),json(utf8s)]"`,
  ]),
  ["id", '"%ID"'],
  ["term", '"%ts"'],
  // Quoted: %rc is prefixed with "+" when the request was redispatched.
  ["retries", '"%rc"'],
];

/**
 * The log-format: a JSON object whose first field, `k`, is `token` (so that the reader can tell
 * HAProxy's lines from anything else that connects to its loopback port).
 */
export function accessLogFormat(token: string): string {
  if (!/^[A-Za-z0-9]{1,64}$/.test(token))
    throw new Error("internal: access log token must be [A-Za-z0-9]{1,64}");
  return `{"k":"${token}",${ACCESS_LOG_FIELDS.map(([k, v]) => `"${k}":${v}`).join(",")}}`;
}

export const ACCESS_LOG_RING = "gh_access";
/** Ring size: about 10,000 lines of backlog when the reader falls behind. */
const RING_BYTES = 8 * 1024 * 1024;
const MAX_LINE = 16384;

/** The ring section forwarding the access log to Gatehouse (none without RenderOptions.accessLog). */
export function accessLogRing(ctx: RenderContext): Section[] {
  const target = ctx.options.accessLog;
  if (target === undefined) return [];
  return [
    {
      header: `ring ${ACCESS_LOG_RING}`,
      lines: [
        "format raw",
        `maxlen ${MAX_LINE}`,
        `size ${RING_BYTES}`,
        "timeout connect 5s",
        "timeout server 30s",
        `server gatehouse ${target.address}`,
      ],
    },
  ];
}

/** Lines of `defaults http` sending the access log (none without RenderOptions.accessLog). */
export function accessLogDefaults(ctx: RenderContext): string[] {
  const target = ctx.options.accessLog;
  if (target === undefined) return [];
  return [
    `log ring@${ACCESS_LOG_RING} len ${MAX_LINE} format raw local0 info`,
    `log-format ${word(accessLogFormat(target.token))}`,
    "unique-id-format %{+X}o%ci%cp%fi%fp%Ts%rt%pid",
  ];
}

/** Header captures every logged HTTP frontend declares (slot order = CAPTURED_HEADERS). */
export function accessLogCaptures(ctx: RenderContext): string[] {
  if (ctx.options.accessLog === undefined) return [];
  return CAPTURED_HEADERS.map((h) => `capture request header ${h} len ${CAPTURE_LENGTH}`);
}

/** Internal frontends (HAProxy's exporter, the mirror sink) are not access-logged. */
export function noAccessLog(ctx: RenderContext): string[] {
  return ctx.options.accessLog === undefined ? [] : ["http-request set-log-level silent"];
}
