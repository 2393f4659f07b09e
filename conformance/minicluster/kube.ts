// A small Kubernetes API client for the mini-cluster and the fake kubelet: raw JSON in and out,
// newline-delimited JSON watches. Authentication and TLS come from a kubeconfig through
// @kubernetes/client-node's KubeConfig, so any kubeconfig form works; the mini-cluster's own uses a
// bearer token and its CA.
import * as https from "node:https";
import * as http from "node:http";
import { KubeConfig } from "@kubernetes/client-node";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface KubeRequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  /** Default application/json; PATCH defaults to application/merge-patch+json. */
  contentType?: string;
  timeoutMs?: number;
}

export class KubeError extends Error {
  readonly status: number | undefined;
  readonly reason: string | undefined;

  constructor(message: string, status?: number, reason?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KubeError";
    this.status = status;
    this.reason = reason;
  }

  get notFound(): boolean {
    return this.status === 404;
  }

  get conflict(): boolean {
    return this.status === 409;
  }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof KubeError && error.notFound;
}

export function isConflict(error: unknown): boolean {
  return error instanceof KubeError && error.conflict;
}

export function isAlreadyExists(error: unknown): boolean {
  return error instanceof KubeError && error.conflict && error.reason === "AlreadyExists";
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export class Kube {
  readonly server: string;
  readonly #config: KubeConfig;

  constructor(config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new Error("kubeconfig has no current cluster");
    this.server = cluster.server.replace(/\/+$/, "");
    this.#config = config;
  }

  static fromFile(path: string): Kube {
    const config = new KubeConfig();
    config.loadFromFile(path);
    return new Kube(config);
  }

  async #options(method: Method): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = { method, headers: {} };
    await this.#config.applyToHTTPSOptions(opts);
    return opts;
  }

  #url(path: string, query: KubeRequestOptions["query"]): URL {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** Sends a request and resolves with the parsed JSON (or text) body of a 2xx answer. */
  async request<T = unknown>(
    method: Method,
    path: string,
    body?: unknown,
    options: KubeRequestOptions = {},
  ): Promise<T> {
    const url = this.#url(path, options.query);
    const opts = await this.#options(method);
    const headers: Record<string, string> = {
      ...(opts.headers as Record<string, string> | undefined),
      accept: "application/json",
    };
    let payload: Buffer | undefined;
    if (body !== undefined) {
      payload = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
      headers["content-type"] =
        options.contentType ?? (method === "PATCH" ? "application/merge-patch+json" : "application/json");
      headers["content-length"] = String(payload.length);
    }
    const timeoutMs = options.timeoutMs ?? 30_000;
    const what = `${method} ${path}`;
    return new Promise<T>((resolve, reject) => {
      const transport = url.protocol === "http:" ? http : https;
      const req = transport.request(url, { ...opts, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (err) =>
          reject(new KubeError(`${what}: ${err.message}`, undefined, undefined, { cause: err })),
        );
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          let parsed: unknown = text;
          try {
            parsed = text === "" ? undefined : JSON.parse(text);
          } catch {
            // not JSON (/readyz answers "ok", logs are text)
          }
          if (status >= 200 && status < 300) {
            resolve(parsed as T);
            return;
          }
          const s = parsed as { message?: unknown; reason?: unknown } | undefined;
          const message = typeof s?.message === "string" ? s.message : text.slice(0, 300) || `HTTP ${status}`;
          const reason = typeof s?.reason === "string" ? s.reason : undefined;
          reject(new KubeError(`${what}: ${status} ${message}`, status, reason));
        });
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", (err) =>
        reject(new KubeError(`${what}: ${err.message}`, undefined, undefined, { cause: err })),
      );
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /**
   * Watches `path` (a collection) from `resourceVersion`, calling `onEvent` for each event, until the
   * server closes the stream, an ERROR event arrives (thrown as KubeError, 410 for Expired), or
   * `signal` aborts (resolves).
   */
  async watch<T>(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const url = this.#url(path, { ...query, watch: true, allowWatchBookmarks: true });
    const opts = await this.#options("GET");
    const headers = { ...(opts.headers as Record<string, string> | undefined), accept: "application/json" };
    await new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const transport = url.protocol === "http:" ? http : https;
      const req = transport.request(url, { ...opts, headers }, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            reject(
              new KubeError(
                `watch ${path}: ${status} ${Buffer.concat(chunks).toString().slice(0, 300)}`,
                status,
              ),
            ),
          );
          return;
        }
        let buffer = "";
        let failed = false;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffer += chunk;
          let newline: number;
          while ((newline = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, newline).trim();
            buffer = buffer.slice(newline + 1);
            if (line === "" || failed) continue;
            let event: WatchEvent<T>;
            try {
              event = JSON.parse(line) as WatchEvent<T>;
            } catch (error) {
              failed = true;
              req.destroy();
              reject(new KubeError(`watch ${path}: bad event: ${String(error)}`));
              return;
            }
            if (event.type === "ERROR") {
              const status = event.object as { code?: number; message?: string; reason?: string };
              failed = true;
              req.destroy();
              reject(
                new KubeError(
                  `watch ${path}: ${status.code ?? "?"} ${status.message ?? ""}`,
                  status.code,
                  status.reason,
                ),
              );
              return;
            }
            try {
              onEvent(event);
            } catch (error) {
              failed = true;
              req.destroy();
              reject(error instanceof Error ? error : new Error(String(error)));
              return;
            }
          }
        });
        res.on("end", () => resolve());
        res.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
      });
      const abort = () => {
        req.destroy();
        resolve();
      };
      signal.addEventListener("abort", abort, { once: true });
      req.on("close", () => signal.removeEventListener("abort", abort));
      req.on("error", (err) => (signal.aborted ? resolve() : reject(err)));
      req.end();
    });
  }
}

/** A one-line description of any error. */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
  return `${error.message}${cause}`;
}
