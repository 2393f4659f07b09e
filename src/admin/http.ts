// The admin HTTP endpoint (node:http), run inside the admin worker (see server.ts for why).
//
//   GET /healthz          200 while the process serves requests (503 once the main thread is wedged)
//   GET /ready            200 once a listener is programmed, 503 before or without one; JSON {ready, reason?}
//   GET /status           every object with its computed status, input errors/warnings, data plane
//   GET /config           the IR in effect, private keys replaced by fingerprints (503 when none yet)
//   GET /metrics          Gatehouse's metrics (Prometheus text format)
//   GET /metrics/haproxy  HAProxy's own exporter output, proxied (404 when not configured)
//   GET /                 the read-only dashboard (src/admin/dashboard: a page, its script and style)
//
// The dashboard's three files are static and hold no state: they are served without the token (a
// browser cannot send a bearer token when it opens a page); everything they show comes from
// /status and /metrics, which the page fetches with the token the user gives it.
//
// With a token configured, every path but /healthz and /ready needs `Authorization: Bearer <token>`
// (401 otherwise). HAProxy's metrics are served on their own path rather than appended to /metrics:
// a slow or restarting HAProxy then never fails the scrape of the controller's metrics, each can
// have its own scrape interval and timeout, and the two exposition outputs never have to be merged.
//
// Answers are the main thread's current state when it replies within a few milliseconds, else the
// last snapshot it published; such answers carry `X-Gatehouse-Snapshot-Age: <ms>`.
// HEAD is answered like GET (without a body); any other method gets 405 with `Allow: GET, HEAD`.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { bearerMatches, OPEN_PATHS } from "./auth.ts";
import type { Part, SnapshotParts } from "./protocol.ts";

export const ROUTES = ["/healthz", "/ready", "/status", "/config", "/metrics", "/metrics/haproxy"] as const;
type Route = (typeof ROUTES)[number];

/** The dashboard's files (read once, when the worker starts), by path. */
const DASHBOARD: ReadonlyMap<string, { file: string; type: string }> = new Map([
  ["/", { file: "index.html", type: "text/html; charset=utf-8" }],
  ["/ui/app.js", { file: "app.js", type: "text/javascript; charset=utf-8" }],
  ["/ui/app.css", { file: "app.css", type: "text/css; charset=utf-8" }],
]);
let dashboardFiles: Map<string, Buffer> | undefined;
function dashboardFile(path: string): { body: Buffer; type: string } | undefined {
  const entry = DASHBOARD.get(path);
  if (entry === undefined) return undefined;
  dashboardFiles ??= new Map(
    [...DASHBOARD.values()].map(({ file }) => [
      file,
      readFileSync(new URL(`./dashboard/${file}`, import.meta.url)),
    ]),
  );
  const body = dashboardFiles.get(entry.file);
  return body === undefined ? undefined : { body, type: entry.type };
}
/** Only this origin's script, style and API; no framing, no inline code. */
const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** What the HTTP server answers from. */
export interface AdminView {
  health(): { ok: true } | { ok: false; reason: string };
  /**
   * The freshest `part` available within the view's wait; `ageMs` is set when it is a cached one,
   * `failed` when the main thread could not build it (it reported why).
   */
  get(part: Part): Promise<{ parts: SnapshotParts; ageMs?: number; failed?: true }>;
  token(): string | undefined;
}

export interface AdminHttpOptions {
  view: AdminView;
  haproxyMetricsUrl: string | undefined;
  haproxyTimeoutMs: number;
  onError: (message: string, cause: unknown) => void;
}

export class AdminHttp {
  readonly #o: AdminHttpOptions;
  readonly server: Server;

  constructor(options: AdminHttpOptions) {
    this.#o = options;
    this.server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        this.#o.onError(`admin ${request.method ?? "?"} ${request.url ?? "?"} failed`, error);
        if (!response.headersSent) sendJSON(response, 500, { error: "internal error" });
        else response.destroy();
      });
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://admin").pathname;
    const asset = dashboardFile(path);
    if (asset !== undefined && (request.method === "GET" || request.method === "HEAD")) {
      response.writeHead(200, {
        "Content-Type": asset.type,
        "Content-Length": asset.body.length,
        "Cache-Control": "no-cache",
        "Content-Security-Policy": DASHBOARD_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
      });
      response.end(request.method === "HEAD" ? undefined : asset.body);
      return;
    }
    const route = ROUTES.find((candidate) => candidate === path);
    if (route === undefined) {
      sendJSON(response, 404, { error: `not found: ${path}`, endpoints: ["/", ...ROUTES] });
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      sendJSON(response, 405, { error: `method ${request.method ?? ""} not allowed on ${path}; use GET` });
      return;
    }
    const token = this.#o.view.token();
    if (
      token !== undefined &&
      !OPEN_PATHS.has(route) &&
      !bearerMatches(request.headers.authorization, token)
    ) {
      response.setHeader("WWW-Authenticate", 'Bearer realm="gatehouse-admin"');
      sendJSON(response, 401, {
        error: `${path} needs Authorization: Bearer <token> (see --admin-token-file)`,
      });
      return;
    }
    await this.#serve(route, response);
  }

  async #get(
    part: Part,
    response: ServerResponse,
  ): Promise<{ parts: SnapshotParts; ageMs?: number } | undefined> {
    const answer = await this.#o.view.get(part);
    if (answer.failed !== true) return answer;
    sendJSON(response, 500, { error: "internal error" });
    return undefined;
  }

  async #serve(route: Route, response: ServerResponse): Promise<void> {
    const { view } = this.#o;
    switch (route) {
      case "/healthz": {
        const health = view.health();
        if (health.ok) sendBody(response, 200, "ok\n", TEXT);
        else sendBody(response, 503, `${health.reason}\n`, TEXT);
        return;
      }
      case "/ready": {
        const answer = await this.#get("ready", response);
        if (answer === undefined) return;
        const { parts, ageMs } = answer;
        const readiness = parts.ready ?? { ready: false, reason: "starting" };
        sendJSON(response, readiness.ready ? 200 : 503, readiness, ageMs);
        return;
      }
      case "/status": {
        const answer = await this.#get("status", response);
        if (answer === undefined) return;
        const { parts, ageMs } = answer;
        const status = parts.status;
        if (status?.objects === undefined) sendJSON(response, 503, { error: "busy; try again" });
        else sendBody(response, 200, [status.head, status.objects, status.tail], JSON_TYPE, ageMs);
        return;
      }
      case "/config": {
        const answer = await this.#get("config", response);
        if (answer === undefined) return;
        const { parts, ageMs } = answer;
        if (parts.config === undefined) sendJSON(response, 503, { error: "busy; try again" });
        else if (parts.config === null)
          sendJSON(response, 503, { error: "no configuration in effect yet" }, ageMs);
        else sendBody(response, 200, parts.config, JSON_TYPE, ageMs);
        return;
      }
      case "/metrics": {
        const answer = await this.#get("metrics", response);
        if (answer === undefined) return;
        const { parts, ageMs } = answer;
        if (parts.metrics === undefined) sendJSON(response, 404, { error: "metrics are not enabled" });
        else sendBody(response, 200, parts.metrics.text, parts.metrics.contentType, ageMs);
        return;
      }
      case "/metrics/haproxy":
        await this.#proxyHaproxyMetrics(response);
        return;
    }
  }

  async #proxyHaproxyMetrics(response: ServerResponse): Promise<void> {
    const url = this.#o.haproxyMetricsUrl;
    if (url === undefined) {
      sendJSON(response, 404, { error: "the HAProxy metrics exporter is not configured" });
      return;
    }
    let upstream: Response;
    try {
      upstream = await fetch(url, { signal: AbortSignal.timeout(this.#o.haproxyTimeoutMs) });
    } catch (error) {
      this.#o.onError(`cannot reach the HAProxy metrics exporter at ${url}`, error);
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
}

const TEXT = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json; charset=utf-8";

function sendJSON(response: ServerResponse, status: number, body: unknown, ageMs?: number): void {
  sendBody(response, status, `${JSON.stringify(body ?? null, null, 2)}\n`, JSON_TYPE, ageMs);
}

function sendBody(
  response: ServerResponse,
  status: number,
  body: string | Uint8Array | readonly Uint8Array[],
  type: string,
  ageMs?: number,
): void {
  const chunks = typeof body === "string" ? [Buffer.from(body)] : body instanceof Uint8Array ? [body] : body;
  const headers: Record<string, string | number> = {
    "Content-Type": type,
    "Content-Length": chunks.reduce((n, c) => n + c.byteLength, 0),
    "Cache-Control": "no-store",
  };
  if (ageMs !== undefined) headers["X-Gatehouse-Snapshot-Age"] = Math.round(ageMs);
  response.writeHead(status, headers);
  if (response.req.method === "HEAD") {
    response.end();
    return;
  }
  for (const chunk of chunks) response.write(chunk);
  response.end();
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
