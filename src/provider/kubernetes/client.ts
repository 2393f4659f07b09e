// A small REST client for the Kubernetes API: raw JSON in, raw JSON out. The typed API classes of
// @kubernetes/client-node turn timestamps into Date objects on list but not on watch; the translator
// compares creationTimestamp strings, so every object Gatehouse reads must be the API server's JSON
// as is. Authentication, TLS and proxies come from a KubeConfig (`applyToHTTPSOptions`), so every
// kubeconfig form the library understands (tokens, client certificates, exec plugins, in-cluster
// service-account tokens that rotate) works here too.
import { existsSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { GatehouseError } from "../../errors.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RequestOptions {
  /** Query parameters (undefined values are left out). */
  query?: Record<string, string | number | boolean | undefined>;
  /** Content type of `body` (default application/json; PATCH: application/merge-patch+json). */
  contentType?: string;
  /** Milliseconds before the request is abandoned (default the client's). */
  timeoutMs?: number;
  /** The Accept header (default application/json). */
  accept?: string;
  /** Abandons the request when aborted (e.g. the moment this replica stops leading). */
  signal?: AbortSignal | undefined;
}

/** The API server, reduced to one call. Implementations: HttpKubeApi (real), fakes in tests. */
export interface KubeApi {
  /** Sends a request; resolves with the parsed JSON body of a 2xx answer, throws KubeApiError otherwise. */
  request<T = unknown>(
    method: HttpMethod,
    path: string,
    body?: unknown,
    options?: RequestOptions,
  ): Promise<T>;
}

/**
 * The API server answered with an error status, or could not be reached (`statusCode` undefined).
 * `reason` is the `Status.reason` of the answer (`NotFound`, `Conflict`, `Forbidden`, `Expired`, ...).
 */
export class KubeApiError extends GatehouseError {
  readonly statusCode: number | undefined;
  readonly reason: string | undefined;
  readonly method: string;
  readonly path: string;

  constructor(
    message: string,
    fields: { statusCode?: number | undefined; reason?: string | undefined; method: string; path: string },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.statusCode = fields.statusCode;
    this.reason = fields.reason;
    this.method = fields.method;
    this.path = fields.path;
  }

  /** Also true for 404s of an unknown resource type (a CRD that is not installed). */
  get notFound(): boolean {
    return this.statusCode === 404;
  }
  get conflict(): boolean {
    return this.statusCode === 409;
  }
  get gone(): boolean {
    return this.statusCode === 410;
  }
}

/** The status code of an error thrown by the client or by the library's Watch (which sets `statusCode`). */
export function statusCodeOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const record = error as { statusCode?: unknown; code?: unknown };
  if (typeof record.statusCode === "number") return record.statusCode;
  if (typeof record.code === "number") return record.code;
  return undefined;
}

/** A one-line description of any error (fetch errors hide the useful part in `cause`). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}

export interface HttpKubeApiOptions {
  /** Default request timeout (default 30 s). */
  timeoutMs?: number;
}

/** KubeApi over node:http(s), authenticated and configured by a KubeConfig. */
export class HttpKubeApi implements KubeApi {
  readonly #config: KubeConfig;
  readonly #server: string;
  readonly #timeoutMs: number;

  constructor(config: KubeConfig, options: HttpKubeApiOptions = {}) {
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new GatehouseError("kubeconfig: no current cluster");
    this.#config = config;
    this.#server = cluster.server.replace(/\/+$/, "");
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  get server(): string {
    return this.#server;
  }

  async request<T = unknown>(
    method: HttpMethod,
    path: string,
    body?: unknown,
    options: RequestOptions = {},
  ): Promise<T> {
    const url = new URL(this.#server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const opts: https.RequestOptions = { method, headers: {} };
    await this.#config.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {
      ...(opts.headers as Record<string, string> | undefined),
      accept: options.accept ?? "application/json",
    };
    let payload: Buffer | undefined;
    if (body !== undefined) {
      payload = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
      headers["content-type"] =
        options.contentType ?? (method === "PATCH" ? "application/merge-patch+json" : "application/json");
      headers["content-length"] = String(payload.length);
    }
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const fail = (message: string, statusCode?: number, reason?: string, cause?: unknown): KubeApiError =>
      new KubeApiError(
        `${method} ${path}: ${message}`,
        { statusCode, reason, method, path },
        cause === undefined ? undefined : { cause },
      );
    const signal = options.signal;
    if (signal?.aborted === true)
      throw fail("aborted before it was sent", undefined, "Aborted", signal.reason);
    return new Promise<T>((resolve, reject) => {
      const transport = url.protocol === "http:" ? http : https;
      const req = transport.request(url, { ...opts, headers, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (err) => reject(fail(describeError(err), undefined, undefined, err)));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = text === "" ? undefined : JSON.parse(text);
          } catch {
            parsed = text; // not JSON (e.g. /readyz answers "ok")
          }
          if (status >= 200 && status < 300) {
            resolve(parsed as T);
            return;
          }
          const s = parsed as { message?: unknown; reason?: unknown } | undefined;
          const message = typeof s?.message === "string" ? s.message : text.slice(0, 200) || `HTTP ${status}`;
          const reason = typeof s?.reason === "string" ? s.reason : undefined;
          reject(fail(`${status} ${message}`, status, reason));
        });
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      const onAbort = (): void => {
        req.destroy(new Error("aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("close", () => signal?.removeEventListener("abort", onAbort));
      req.on("error", (err) =>
        reject(
          signal?.aborted === true
            ? fail("aborted", undefined, "Aborted", err)
            : fail(describeError(err), undefined, undefined, err),
        ),
      );
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
}

export interface LoadKubeConfigOptions {
  /** --kubeconfig PATH (wins over everything else). */
  path?: string | undefined;
  /** The environment (KUBECONFIG, KUBERNETES_SERVICE_HOST); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Home directory for ~/.kube/config (default os.homedir()). */
  home?: string;
}

/**
 * The kubeconfig, from (in order): `path`, $KUBECONFIG (colon-separated list, merged), the in-cluster
 * service account (when $KUBERNETES_SERVICE_HOST is set), ~/.kube/config. Throws GatehouseError when
 * none is available.
 */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): { config: KubeConfig; source: string } {
  const env = options.env ?? process.env;
  const config = new KubeConfig();
  try {
    if (options.path !== undefined && options.path !== "") {
      config.loadFromFile(options.path);
      return { config, source: options.path };
    }
    const fromEnv = env["KUBECONFIG"];
    if (fromEnv !== undefined && fromEnv !== "") {
      const [first, ...rest] = fromEnv.split(":").filter((p) => p !== "");
      if (first !== undefined) {
        config.loadFromFile(first);
        for (const file of rest) {
          const more = new KubeConfig();
          more.loadFromFile(file);
          config.mergeConfig(more);
        }
        return { config, source: `KUBECONFIG=${fromEnv}` };
      }
    }
    if (env["KUBERNETES_SERVICE_HOST"] !== undefined && env["KUBERNETES_SERVICE_HOST"] !== "") {
      config.loadFromCluster();
      return { config, source: "in-cluster service account" };
    }
    const home = join(options.home ?? homedir(), ".kube", "config");
    if (existsSync(home)) {
      config.loadFromFile(home);
      return { config, source: home };
    }
  } catch (error) {
    throw new GatehouseError(`cannot load the kubeconfig: ${describeError(error)}`, { cause: error });
  }
  throw new GatehouseError(
    "no kubeconfig: pass --kubeconfig PATH, set KUBECONFIG, or run in a cluster (service account)",
  );
}
