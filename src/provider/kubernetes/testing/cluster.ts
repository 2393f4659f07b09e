// A fake API server for unit tests of the Kubernetes provider: discovery, paginated lists and
// watches over in-memory objects, with switches for the failure modes the provider must survive
// (unreachable server, 410 Gone, 403 Forbidden, a CRD that is missing or removed).
import type { Watch } from "@kubernetes/client-node";
import { KubeApiError, type HttpMethod, type KubeApi, type RequestOptions } from "../client.ts";
import {
  apiVersionOf,
  groupVersionPath,
  resourcePath,
  WATCHED_RESOURCES,
  type WatchedResource,
} from "../resources.ts";

type Obj = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
};

interface ActiveWatch {
  path: string;
  resourceVersion: string;
  callback: (phase: string, obj: unknown) => void;
  done: (err: unknown) => void;
  closed: boolean;
}

export class FakeCluster {
  /** `group/version/plural` that are served. Default: the first version of every watched kind. */
  readonly served = new Set<string>();
  /** Plural → object key (`ns/name` or `name`) → object. */
  readonly objects = new Map<string, Map<string, Obj>>();
  /** History of events per plural for watches from a resourceVersion. */
  readonly #events: Array<{ rv: number; plural: string; type: string; object: Obj }> = [];
  #rv = 1000;
  /** History before this resourceVersion is compacted: watches from an older one get 410. */
  compactedBefore = 0;
  /** The server cannot be reached. */
  down = false;
  /** Plurals whose list/watch answer 403. */
  readonly forbidden = new Set<string>();
  readonly watches: ActiveWatch[] = [];
  /** Counts of list requests per plural. */
  readonly lists = new Map<string, number>();
  /** Object GETs, as `plural ns/name`. */
  readonly gets: string[] = [];
  pageSize: number | undefined;

  constructor(resources: readonly WatchedResource[] = WATCHED_RESOURCES) {
    for (const r of resources) this.served.add(`${r.group}/${r.versions[0] ?? "v1"}/${r.plural}`);
  }

  get resourceVersion(): string {
    return String(this.#rv);
  }

  #resource(kind: string): WatchedResource {
    const r = WATCHED_RESOURCES.find((w) => w.kind === kind);
    if (r === undefined) throw new Error(`unknown kind ${kind}`);
    return r;
  }

  /** Creates or replaces an object; watchers see ADDED or MODIFIED. */
  apply(object: Obj): Obj {
    const r = this.#resource(String(object.kind));
    const key = r.namespaced
      ? `${object.metadata.namespace ?? "default"}/${object.metadata.name}`
      : object.metadata.name;
    let map = this.objects.get(r.plural);
    if (map === undefined) this.objects.set(r.plural, (map = new Map<string, Obj>()));
    const type = map.has(key) ? "MODIFIED" : "ADDED";
    const stored: Obj = structuredClone({
      ...object,
      metadata: {
        ...object.metadata,
        ...(r.namespaced ? { namespace: object.metadata.namespace ?? "default" } : {}),
        resourceVersion: String(++this.#rv),
      },
    });
    map.set(key, stored);
    this.#emit(r.plural, type, stored);
    return stored;
  }

  delete(kind: string, name: string, namespace = "default"): void {
    const r = this.#resource(kind);
    const key = r.namespaced ? `${namespace}/${name}` : name;
    const map = this.objects.get(r.plural);
    const old = map?.get(key);
    if (old === undefined || map === undefined) return;
    map.delete(key);
    this.#emit(r.plural, "DELETED", {
      ...old,
      metadata: { ...old.metadata, resourceVersion: String(++this.#rv) },
    });
  }

  #emit(plural: string, type: string, object: Obj): void {
    this.#events.push({ rv: this.#rv, plural, type, object: structuredClone(object) });
    for (const w of this.watches) {
      if (!w.closed && w.path.endsWith(`/${plural}`)) w.callback(type, structuredClone(object));
    }
  }

  /** Closes every open watch (as the server does on timeout); `error` makes it an error close. */
  closeWatches(error?: unknown): void {
    for (const w of this.watches.splice(0)) {
      if (w.closed) continue;
      w.closed = true;
      w.done(error ?? null);
    }
  }

  /** Sends 410 Gone on every open watch and closes it (as after etcd compaction). */
  expireWatches(): void {
    this.compactedBefore = this.#rv;
    for (const w of this.watches)
      if (!w.closed) w.callback("ERROR", { kind: "Status", code: 410, reason: "Expired" });
    this.closeWatches();
  }

  #unreachable(method: string, path: string): KubeApiError {
    return new KubeApiError(`${method} ${path}: connect ECONNREFUSED`, { method, path });
  }

  /** The KubeApi for discovery and lists. */
  readonly api: KubeApi = {
    request: <T>(method: HttpMethod, path: string, _body?: unknown, options?: RequestOptions): Promise<T> => {
      try {
        return Promise.resolve(this.#request(method, path, options) as T);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
  };

  #request(method: HttpMethod, path: string, options?: RequestOptions): unknown {
    if (this.down) throw this.#unreachable(method, path);
    if (path === "/readyz") return "ok";
    // One namespaced object: /api/v1/namespaces/NS/PLURAL/NAME, /apis/G/V/namespaces/NS/PLURAL/NAME.
    const one = /^\/(?:api\/v1|apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
    if (method === "GET" && one !== null) {
      const [, namespace = "", plural = "", name = ""] = one;
      this.gets.push(`${plural} ${namespace}/${name}`);
      const found = this.objects.get(plural)?.get(`${namespace}/${name}`);
      if (found === undefined)
        throw new KubeApiError(`GET ${path}: 404 NotFound`, { statusCode: 404, method, path });
      return structuredClone(found);
    }
    const fail = (statusCode: number, reason: string) =>
      new KubeApiError(`${method} ${path}: ${statusCode} ${reason}`, { statusCode, reason, method, path });
    for (const r of WATCHED_RESOURCES) {
      for (const version of r.versions) {
        const gv = groupVersionPath(r.group, version);
        if (path === gv) {
          const resources = WATCHED_RESOURCES.filter(
            (x) =>
              groupVersionPath(x.group, version) === gv &&
              this.served.has(`${x.group}/${version}/${x.plural}`),
          ).map((x) => ({ name: x.plural, kind: x.kind, namespaced: x.namespaced }));
          if (resources.length === 0) throw fail(404, "NotFound");
          return { kind: "APIResourceList", groupVersion: apiVersionOf(r.group, version), resources };
        }
        if (path === resourcePath({ group: r.group, version, plural: r.plural })) {
          if (!this.served.has(`${r.group}/${version}/${r.plural}`)) throw fail(404, "NotFound");
          if (this.forbidden.has(r.plural)) throw fail(403, "Forbidden");
          this.lists.set(r.plural, (this.lists.get(r.plural) ?? 0) + 1);
          const all = [...(this.objects.get(r.plural)?.values() ?? [])].map((o) => {
            const item: Partial<Obj> = structuredClone(o);
            delete item.apiVersion; // list items come without apiVersion/kind, as from the real server
            delete item.kind;
            return item;
          });
          const limit = this.pageSize ?? Number(options?.query?.["limit"] ?? all.length);
          const start = Number(options?.query?.["continue"] ?? 0);
          const items = all.slice(start, start + limit);
          const next = start + limit < all.length ? String(start + limit) : undefined;
          return {
            metadata: {
              resourceVersion: this.resourceVersion,
              ...(next !== undefined ? { continue: next } : {}),
            },
            items,
          };
        }
      }
    }
    throw fail(404, "NotFound");
  }

  /** The Watch for the provider. */
  readonly watch: Pick<Watch, "watch"> = {
    watch: (path, query, callback, done) => {
      const controller = new AbortController();
      const plural = path.slice(path.lastIndexOf("/") + 1);
      const fail = (statusCode: number) => {
        done(Object.assign(new Error(`watch ${path}: ${statusCode}`), { statusCode }));
        return Promise.resolve(controller);
      };
      if (this.down) {
        done(new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED") }));
        return Promise.resolve(controller);
      }
      if (this.forbidden.has(plural)) return fail(403);
      if (!this.served.has(servedKey(path))) return fail(404);
      const rv = Number(query["resourceVersion"] ?? 0);
      const w: ActiveWatch = { path, resourceVersion: String(rv), callback, done, closed: false };
      controller.signal.addEventListener("abort", () => {
        w.closed = true;
      });
      this.watches.push(w);
      if (rv > 0 && rv < this.compactedBefore) {
        callback("ERROR", { kind: "Status", code: 410, reason: "Expired" });
        w.closed = true;
        queueMicrotask(() => done(null));
        return Promise.resolve(controller);
      }
      // Replay what happened since the requested resourceVersion.
      for (const e of this.#events)
        if (e.rv > rv && e.plural === plural) callback(e.type, structuredClone(e.object));
      return Promise.resolve(controller);
    },
  };
}

/** `group/version/plural` of a collection path (`/api/v1/services`, `/apis/g/v/plural`). */
function servedKey(path: string): string {
  const parts = path.split("/").filter((p) => p !== "");
  return parts[0] === "api"
    ? `/${parts[1] ?? ""}/${parts[2] ?? ""}`
    : `${parts[1] ?? ""}/${parts[2] ?? ""}/${parts[3] ?? ""}`;
}
