// The fields of an access-log entry a custom format may name (`{field}`), shared by the flag parser
// (access-log.ts) and the GatehouseProxy schema (src/resources/gatehouseproxy.ts), which must not
// load the access-log receiver to know them.
export const ACCESS_LOG_ENTRY_FIELDS = [
  "time",
  "request_id",
  "client",
  "method",
  "host",
  "path",
  "query",
  "protocol",
  "status",
  "gateway",
  "listener",
  "route_kind",
  "route_namespace",
  "route",
  "rule",
  "backend",
  "endpoint",
  "ttfb_ms",
  "duration_ms",
  "bytes_in",
  "bytes_out",
  "user_agent",
  "termination",
  "retries",
] as const;

/**
 * A custom template: text without braces or control characters, and `{field}`s of the list above
 * (a regular expression both JavaScript and Go's RE2 read the same, for the CRD's `pattern`).
 */
export const ACCESS_LOG_TEMPLATE_PATTERN = `^([^{}\\x00-\\x1f\\x7f]|\\{(${ACCESS_LOG_ENTRY_FIELDS.join("|")})\\})+$`;
