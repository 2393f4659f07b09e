// The admin HTTP endpoint (node:http). Loopback only by default: it has no authentication.
//
//   GET /healthz          200 while the process serves requests
//   GET /ready            200 once a configuration is programmed, 503 before; JSON {ready, reason?}
//   GET /status           every object with its computed status, input errors/warnings, data plane
//   GET /config           the IR in effect (503 when none is yet)
//   GET /metrics          Gatehouse's metrics (Prometheus text format)
//   GET /metrics/haproxy  HAProxy's own exporter output, proxied (404 when not configured)
//
// HAProxy's metrics are served on their own path rather than appended to /metrics: a slow or
// restarting HAProxy then never fails the scrape of the controller's metrics, each can have its own
// scrape interval and timeout, and the two exposition outputs never have to be merged (HELP/TYPE
// lines of a family must not repeat in one scrape). Scrape both paths as two targets.
//
// HEAD is answered like GET (without a body); any other method gets 405 with `Allow: GET, HEAD`.
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Registry } from "prom-client";
import { GatehouseError, UsageError } from "../errors.ts";
import type { AdminState } from "./state.ts";

export type { AdminState, Readiness } from "./state.ts";

export const DEFAULT_ADMIN_HOST = "127.0.0.1";
export const DEFAULT_ADMIN_PORT = 9901;

export interface AdminServerOptions {
  state: AdminState;
  /** Gatehouse's metrics registry; without it `/metrics` is 404. */
  registry?: Registry;
  /**
   * URL of HAProxy's Prometheus exporter (`http-request use-service prometheus-exporter` on a
   * loopback port), proxied at `/metrics/haproxy`.
   */
  haproxyMetricsUrl?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 9901; 0 picks a free port (see `address`). */
  port?: number;
  /** Time allowed for HAProxy's exporter to answer (default 5 s). */
  haproxyTimeoutMs?: number;
  /** HTTP client for the exporter (default global fetch). */
  fetch?: typeof fetch;
  /** Told about handler failures (a bug in a state provider, the exporter unreachable). */
  onError?: (message: string, cause: unknown) => void;
}

export interface AdminAddress {
  host: string;
  port: number;
  /** `http://host:port` (IPv6 hosts in brackets). */
  url: string;
}

/** The admin server could not start (address in use, permission denied). */
export class AdminServerError extends GatehouseError {}

const ROUTES = ["/healthz", "/ready", "/status", "/config", "/metrics", "/metrics/haproxy"] as const;
type Route = (typeof ROUTES)[number];

export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #server: Server;
  #address: AdminAddress | undefined;

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        this.#report(`admin ${request.method ?? "?"} ${request.url ?? "?"} failed`, error);
        if (!response.headersSent) sendJSON(response, 500, { error: "internal error" });
        else response.destroy();
      });
    });
  }

  /** Where the server listens, once `listen` resolved. */
  get address(): AdminAddress | undefined {
    return this.#address;
  }

  /** Binds and starts serving; rejects with AdminServerError when the address cannot be bound. */
  listen(): Promise<AdminAddress> {
    const host = this.#options.host ?? DEFAULT_ADMIN_HOST;
    const port = this.#options.port ?? DEFAULT_ADMIN_PORT;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(
          new AdminServerError(
            `admin server cannot listen on ${joinHostPort(host, port)}: ${error.message}`,
            { cause: error },
          ),
        );
      };
      this.#server.once("error", onError);
      this.#server.listen(port, host, () => {
        this.#server.off("error", onError);
        const bound = this.#server.address() as AddressInfo;
        this.#address = { host, port: bound.port, url: `http://${joinHostPort(host, bound.port)}` };
        resolve(this.#address);
      });
    });
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://admin").pathname;
    const route = ROUTES.find((candidate) => candidate === path);
    if (route === undefined) {
      sendJSON(response, 404, { error: `not found: ${path}`, endpoints: ROUTES });
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      sendJSON(response, 405, { error: `method ${request.method ?? ""} not allowed on ${path}; use GET` });
      return;
    }
    await this.#serve(route, response);
  }

  async #serve(route: Route, response: ServerResponse): Promise<void> {
    const { state } = this.#options;
    switch (route) {
      case "/healthz":
        sendText(response, 200, "ok\n");
        return;
      case "/ready": {
        const readiness = state.ready();
        sendJSON(response, readiness.ready ? 200 : 503, readiness);
        return;
      }
      case "/status":
        sendJSON(response, 200, state.status());
        return;
      case "/config": {
        const config = state.config();
        if (config === undefined) sendJSON(response, 503, { error: "no configuration in effect yet" });
        else sendJSON(response, 200, config);
        return;
      }
      case "/metrics": {
        const registry = this.#options.registry;
        if (registry === undefined) {
          sendJSON(response, 404, { error: "metrics are not enabled" });
          return;
        }
        const text = await registry.metrics();
        sendText(response, 200, text, registry.contentType);
        return;
      }
      case "/metrics/haproxy":
        await this.#proxyHaproxyMetrics(response);
        return;
    }
  }

  async #proxyHaproxyMetrics(response: ServerResponse): Promise<void> {
    const url = this.#options.haproxyMetricsUrl;
    if (url === undefined) {
      sendJSON(response, 404, { error: "the HAProxy metrics exporter is not configured" });
      return;
    }
    const fetchImpl = this.#options.fetch ?? fetch;
    let upstream: Response;
    try {
      upstream = await fetchImpl(url, {
        signal: AbortSignal.timeout(this.#options.haproxyTimeoutMs ?? 5000),
      });
    } catch (error) {
      this.#report(`cannot reach the HAProxy metrics exporter at ${url}`, error);
      sendJSON(response, 502, { error: `cannot reach the HAProxy metrics exporter: ${describe(error)}` });
      return;
    }
    if (!upstream.ok || upstream.body === null) {
      await upstream.body?.cancel();
      sendJSON(response, 502, { error: `the HAProxy metrics exporter answered ${upstream.status}` });
      return;
    }
    response.writeHead(200, {
      "Content-Type": upstream.headers.get("content-type") ?? "text/plain; version=0.0.4; charset=utf-8",
      "Cache-Control": "no-store",
    });
    // Streamed: with many backends the exporter's output runs to megabytes.
    await pipeline(Readable.fromWeb(upstream.body as WebReadableStream<Uint8Array>), response);
  }

  #report(message: string, cause: unknown): void {
    this.#options.onError?.(message, cause);
  }
}

/** Creates an admin server and starts listening. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server = new AdminServer(options);
  await server.listen();
  return server;
}

/**
 * Parses `--admin HOST:PORT`: `127.0.0.1:9901`, `[::1]:9901`, `:9901` (default host) or `9901`.
 * Throws UsageError for anything else.
 */
export function parseAdminAddress(value: string): { host: string; port: number } {
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]*):)?(\d{1,5})$/.exec(value.trim());
  const port = match?.[2] === undefined ? NaN : Number(match[2]);
  if (match === null || !Number.isInteger(port) || port > 65535) {
    throw new UsageError(`--admin must be HOST:PORT (e.g. 127.0.0.1:9901 or [::1]:9901), not "${value}"`);
  }
  const rawHost = match[1];
  const host =
    rawHost === undefined || rawHost === "" ? DEFAULT_ADMIN_HOST : rawHost.replace(/^\[(.*)\]$/, "$1");
  return { host, port };
}

function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function sendJSON(response: ServerResponse, status: number, body: unknown): void {
  sendText(response, status, `${JSON.stringify(body ?? null, null, 2)}\n`, "application/json; charset=utf-8");
}

function sendText(
  response: ServerResponse,
  status: number,
  body: string,
  type = "text/plain; charset=utf-8",
): void {
  response.writeHead(status, {
    "Content-Type": type,
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
  });
  response.end(body);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
