// The data-plane agent's admin HTTP server: /healthz (the process answers), /ready (200 once a
// configuration is served, 503 before and while draining) and /metrics (the agent's metrics with the
// per-route counters HAProxy keeps (src/dataplane/local.ts), then
// HAProxy's Prometheus exporter). Nothing else, and nothing secret: no configuration, no keys.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface AgentAdminOptions {
  listen: { host: string; port: number };
  ready(): boolean;
  registry: Registry;
  /** HAProxy's exporter (loopback). */
  haproxyMetricsUrl: string;
}

export interface AgentAdmin {
  readonly url: string;
  close(): Promise<void>;
}

export async function startAgentAdmin(o: AgentAdminOptions): Promise<AgentAdmin> {
  const server = createServer((req, res) => {
    handle(o, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error\n");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.listen.port, o.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host === "[::]" ? "[::1]" : host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(o: AgentAdminOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
    return;
  }
  const text = (status: number, body: string): void =>
    void res
      .writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" })
      .end(body);
  switch (path) {
    case "/healthz":
      return text(200, "ok\n");
    case "/ready":
      return o.ready() ? text(200, "ready\n") : text(503, "not ready\n");
    case "/metrics": {
      const own = await o.registry.metrics();
      let haproxy = "";
      try {
        const answer = await fetch(o.haproxyMetricsUrl, { signal: AbortSignal.timeout(2000) });
        if (answer.ok) haproxy = await answer.text();
      } catch {
        // HAProxy not running (yet): the agent's own metrics still answer.
      }
      res.writeHead(200, { "content-type": o.registry.contentType, "cache-control": "no-store" });
      res.end(`${own}\n${haproxy}`);
      return;
    }
    default:
      return text(404, "not found\n");
  }
}
