// An in-memory stand-in for the API server, enough for unit tests of code that GETs, creates and
// updates objects (status writer, leader election): objects by path, resourceVersions, 404, 409 on a
// stale resourceVersion or an existing name. `status` subresource PUTs change only the status.
import { KubeApiError, type HttpMethod, type KubeApi, type RequestOptions } from "../client.ts";

interface Stored {
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface RecordedRequest {
  method: HttpMethod;
  path: string;
  body: unknown;
  options: RequestOptions | undefined;
}

export class FakeKubeApi implements KubeApi {
  /** Object path (collection path + "/" + name) → object. */
  readonly objects = new Map<string, Stored>();
  readonly requests: RecordedRequest[] = [];
  #rv = 100;
  /** Called before each request; may throw to simulate failures, or return a value to answer with. */
  intercept: ((method: HttpMethod, path: string, body: unknown) => unknown) | undefined;

  /** Stores an object at `path` (an object path) with a fresh resourceVersion; returns it. */
  put(path: string, object: Record<string, unknown>): Stored {
    const stored = structuredClone(object) as Stored;
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.#rv) };
    this.objects.set(path, stored);
    return structuredClone(stored);
  }

  get(path: string): unknown {
    const o = this.objects.get(path);
    return o === undefined ? undefined : structuredClone(o);
  }

  /** Requests that were not GETs. */
  get writes(): RecordedRequest[] {
    return this.requests.filter((r) => r.method !== "GET");
  }

  request<T = unknown>(
    method: HttpMethod,
    path: string,
    body?: unknown,
    options?: RequestOptions,
  ): Promise<T> {
    this.requests.push({ method, path, body: structuredClone(body), options });
    try {
      const answer = this.intercept?.(method, path, body);
      if (answer !== undefined) return Promise.resolve(answer as T);
      return Promise.resolve(this.#handle(method, path, body) as T);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #error(method: string, path: string, statusCode: number, reason: string): KubeApiError {
    return new KubeApiError(`${method} ${path}: ${statusCode} ${reason}`, {
      statusCode,
      reason,
      method,
      path,
    });
  }

  #handle(method: HttpMethod, path: string, body: unknown): unknown {
    const status = path.endsWith("/status");
    const objectPath = status ? path.slice(0, -"/status".length) : path;
    if (method === "GET") {
      const o = this.objects.get(objectPath);
      if (o === undefined) throw this.#error(method, path, 404, "NotFound");
      return structuredClone(o);
    }
    if (method === "POST") {
      const obj = body as Stored;
      const target = `${path}/${obj.metadata.name}`;
      if (this.objects.has(target)) throw this.#error(method, path, 409, "AlreadyExists");
      return this.put(target, obj);
    }
    if (method === "PUT") {
      const current = this.objects.get(objectPath);
      if (current === undefined) throw this.#error(method, path, 404, "NotFound");
      const obj = body as Stored;
      const rv = obj.metadata.resourceVersion;
      if (rv !== undefined && rv !== current.metadata.resourceVersion)
        throw this.#error(method, path, 409, "Conflict");
      const next = status
        ? { ...current, status: obj["status"] }
        : { ...obj, metadata: { ...current.metadata, ...obj.metadata } };
      return this.put(objectPath, next);
    }
    if (method === "PATCH") {
      // A JSON merge patch (RFC 7386).
      const current = this.objects.get(objectPath);
      if (current === undefined) throw this.#error(method, path, 404, "NotFound");
      return this.put(objectPath, mergePatch(current, body) as Record<string, unknown>);
    }
    if (method === "DELETE") {
      if (!this.objects.delete(objectPath)) throw this.#error(method, path, 404, "NotFound");
      return {};
    }
    throw this.#error(method, path, 405, "MethodNotAllowed");
  }
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const base =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? (target as Record<string, unknown>)
      : {};
  const entries = new Map(Object.entries(base));
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) entries.delete(key);
    else entries.set(key, mergePatch(entries.get(key), value));
  }
  return Object.fromEntries(entries);
}
