// Access logs (RenderOptions.accessLog): every HTTP request HAProxy finishes is sent as one datagram
// (syslog "raw" format: the message only) to a loopback UDP address where Gatehouse reads it (see
// src/observability/access-log.ts), adds Gateway API names and writes it out in the format the user
// chose. TCP/TLS listeners are not logged.
//
// The message is a JSON object built by `log-format`. Nothing a client sends can break it:
// - captured headers (Host, X-Request-Id, User-Agent) go through the `json(utf8s)` converter, which
//   escapes quotes, backslashes and control characters (\uXXXX) and drops invalid UTF-8;
// - the path and query come from HAProxy's request line, where control characters, spaces and `"`
//   are already `#XX`-encoded; the `E` flag escapes `"`, `\` and `]` with a backslash (the reader
//   turns the one escape JSON lacks, `\]`, back into `]`);
// - every other field is a number, an address, an HAProxy name or a rule id.
import { word } from "./escape.ts";
import type { RenderContext } from "./model.ts";

/** Request headers captured for the log, in capture slot order. */
export const CAPTURED_HEADERS = ["host", "x-request-id", "user-agent"] as const;
const CAPTURE_LENGTH = 256;

/** Field name → log-format value, in output order. Strings are quoted here, numbers are bare. */
export const ACCESS_LOG_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ["ts", "%Ts"],
  ["ms", "%ms"],
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
  ["retries", "%rc"],
];

export function accessLogFormat(): string {
  return `{${ACCESS_LOG_FIELDS.map(([k, v]) => `"${k}":${v}`).join(",")}}`;
}

/** Lines of `defaults http` sending the access log (none without RenderOptions.accessLog). */
export function accessLogDefaults(ctx: RenderContext): string[] {
  const target = ctx.options.accessLog;
  if (target === undefined) return [];
  return [
    `log ${target.address} len 16384 format raw local0 info`,
    `log-format ${word(accessLogFormat())}`,
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
