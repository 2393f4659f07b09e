// global and defaults sections, and the error pages they reference.
import { accessLogDefaults, noAccessLog } from "./logging.ts";
import type { RenderContext, Section } from "./model.ts";

const ERROR_PAGES: ReadonlyArray<[number, string, string]> = [
  [404, "Not Found", "no route matches this request"],
  [500, "Internal Server Error", "the route has no usable backend"],
  [502, "Bad Gateway", "the backend sent an invalid response"],
  [503, "Service Unavailable", "no backend endpoint is available"],
  [504, "Gateway Timeout", "the backend did not respond in time"],
];

export function writeErrorPages(ctx: RenderContext): void {
  for (const [code, reason, text] of ERROR_PAGES) {
    const body = `${code} ${reason}: ${text}\n`;
    const head = [
      `HTTP/1.1 ${code} ${reason}`,
      "content-type: text/plain; charset=utf-8",
      `content-length: ${Buffer.byteLength(body)}`,
      "cache-control: no-cache",
    ];
    ctx.addFile(`errors/${code}.http`, `${head.join("\r\n")}\r\n\r\n${body}`);
  }
}

export function globalSection(ctx: RenderContext): Section {
  const o = ctx.options;
  return {
    header: "global",
    lines: [
      "master-worker",
      // Listeners bind exclusively: without SO_REUSEPORT, a port another process holds (another
      // Gatehouse's HAProxy included) is refused instead of silently shared with it. Reloads are
      // unaffected: the new worker takes the old one's sockets over (expose-fd listeners).
      "noreuseport",
      `stats socket ${o.runtimeSocket} mode 600 level admin expose-fd listeners`,
      "stats timeout 2m",
      `hard-stop-after ${o.hardStopAfter}`,
      "ssl-default-bind-options ssl-min-ver TLSv1.2",
      "ssl-default-server-options ssl-min-ver TLSv1.2",
      "tune.ssl.default-dh-param 2048",
      ...(o.threads !== undefined ? [`nbthread ${o.threads}`] : []),
      ...(o.maxconn !== undefined ? [`maxconn ${o.maxconn}`] : []),
    ],
  };
}

/** A timeout in ms as HAProxy reads it: whole seconds as `Ns`, else `Nms`. */
export function haproxyTime(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function timeout(ms: number | undefined, fallback: string): string {
  return ms === undefined ? fallback : haproxyTime(ms);
}

export function httpDefaults(ctx: RenderContext): Section {
  return {
    header: "defaults http",
    lines: [
      "mode http",
      "option http-keep-alive",
      // On a reload, the old worker keeps idle keep-alive connections until their next request and
      // answers it with `Connection: close`, instead of closing them at once: a client sending on
      // a connection being closed would get a reset (HTTP clients do not retry non-idempotent requests).
      "option idle-close-on-response",
      "option forwardfor",
      `timeout connect ${timeout(ctx.options.timeouts?.connectMs, "5s")}`,
      `timeout client ${timeout(ctx.options.timeouts?.clientMs, "60s")}`,
      `timeout server ${timeout(ctx.options.timeouts?.serverMs, "300s")}`,
      "timeout http-request 10s",
      "timeout http-keep-alive 60s",
      "timeout queue 30s",
      // WebSocket and other upgraded connections.
      "timeout tunnel 1h",
      "timeout client-fin 5s",
      "default-server init-addr last,libc,none",
      ...ERROR_PAGES.map(([code]) => `errorfile ${code} ${ctx.abs(`errors/${code}.http`)}`),
      ...accessLogDefaults(ctx),
    ],
  };
}

/** HAProxy's Prometheus exporter on a loopback address (proxied by the admin server). */
export function metricsFrontend(ctx: RenderContext): Section[] {
  const address = ctx.options.metricsAddress;
  if (address === undefined) return [];
  return [
    {
      header: "frontend gh_metrics",
      lines: [
        `bind ${address}`,
        ...noAccessLog(ctx),
        "http-request use-service prometheus-exporter if { path /metrics }",
        "http-request deny",
      ],
    },
  ];
}

export function tcpDefaults(ctx: RenderContext): Section {
  return {
    header: "defaults tcp",
    lines: [
      "mode tcp",
      `timeout connect ${timeout(ctx.options.timeouts?.connectMs, "5s")}`,
      "timeout client 1h",
      "timeout server 1h",
      "timeout client-fin 5s",
      "default-server init-addr last,libc,none",
    ],
  };
}
