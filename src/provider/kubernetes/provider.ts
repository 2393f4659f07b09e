// The Kubernetes provider: one informer (the client library's ListWatch) per kind the translator
// reads, and a fresh Snapshot whenever any of them changes.
//
// Per kind:
// - Discovery picks the first served version of the kind (WATCHED_RESOURCES). A kind whose CRD is
//   not installed is logged once and looked for again every `discoveryRetryMs`; the other kinds
//   carry on. When a served kind's list or watch answers 404, discovery runs again (with backoff);
//   its objects are dropped from the snapshot only once discovery has said "not served" for
//   `missingGraceMs`: an API server that restarts answers 404 for CRD kinds for a moment, and
//   dropping every Gateway then would take traffic down.
// - ListWatch lists, then watches from the list's resourceVersion, and relists on 410 Gone. When the
//   API server cannot be reached, ListWatch reports an error and stops; the kind then waits for the
//   API server to be ready again (reachability.ts: one shared /readyz probe every `probeMs`), and
//   every waiting kind resumes at once when it is, from its last resourceVersion. A kind whose own
//   requests fail while the API server is fine restarts with exponential backoff (`retryMs`
//   doubling up to `maxRetryMs`) on the injected clock. Its cache is kept meanwhile, so the pipeline
//   keeps the last snapshot while the API server is unreachable.
// - 403 Forbidden is logged once and retried with the same backoff: missing RBAC rules, but also
//   an API server that just restarted and has not loaded its RBAC rules yet.
//
// start() resolves once every kind has settled (synced, or known to be missing or forbidden) and the
// first snapshot was delivered. Afterwards changes coalesce: a change opens a debounce window of
// `debounceMs` quiet (never longer than `maxDelayMs` in total) and one snapshot is built and
// delivered when it closes. Building and delivering is synchronous, so one snapshot is in flight at a
// time by construction.
//
// Objects are the API server's JSON (already validated and defaulted): the snapshot is built with
// buildSnapshot directly. `metadata.managedFields` is dropped from cached objects to save memory.
//
// Secrets and ConfigMaps are watched metadata-only (`metadataWatch`, PartialObjectMetadata): the
// snapshot holds only those a Gateway, ListenerSet or BackendTLSPolicy references, read with a GET
// before the snapshot that first needs them is delivered, and again when their resourceVersion
// moves (references.ts). Everything else of theirs is never read.
import {
  ListWatch,
  type KubernetesListObject,
  type KubernetesObject,
  type Watch,
} from "@kubernetes/client-node";
import { GatehouseError } from "../../errors.ts";
import type { KubeObject } from "../../resources/meta.ts";
import { buildSnapshot } from "../../resources/snapshot.ts";
import { systemClock, type Clock, type TimerHandle } from "../clock.ts";
import type { Provider, SnapshotListener } from "../types.ts";
import { describeError, statusCodeOf, type KubeApi } from "./client.ts";
import { OutageLog } from "../../observability/outage.ts";
import { METADATA_LIST_ACCEPT } from "./metawatch.ts";
import { ApiServerReachability, isUnreachable } from "./reachability.ts";
import { referencedObjects, ReferencedObjects, type ReferenceKey } from "./references.ts";
import {
  apiVersionOf,
  groupVersionPath,
  resourcePath,
  WATCHED_RESOURCES,
  type WatchedResource,
} from "./resources.ts";

/** The part of the client library's Watch that ListWatch uses (a fake in unit tests). */
export type WatchLike = Pick<Watch, "watch">;

/** What the provider logs (a pino Logger fits). */
export interface ProviderLog {
  info(message: string): void;
  warn(message: string): void;
  debug?(message: string): void;
}

export interface KubernetesProviderOptions {
  /** Lists and discovery. */
  api: KubeApi;
  /** Watches (the library's `new Watch(kubeConfig)`). */
  watch: WatchLike;
  /** Metadata-only watches for Secrets and ConfigMaps (MetadataWatch; default `watch`). */
  metadataWatch?: WatchLike;
  /** Kinds to watch (default WATCHED_RESOURCES). */
  resources?: readonly WatchedResource[];
  /** Quiet time after the last change before a snapshot is delivered (default 30 ms). */
  debounceMs?: number;
  /** Upper bound on how long changes may postpone a snapshot (default 500 ms). */
  maxDelayMs?: number;
  /** First delay before restarting a failed informer (default 500 ms); doubles per failure. */
  retryMs?: number;
  /** Longest delay between restarts (default 30 s). */
  maxRetryMs?: number;
  /** How often a kind that is not served (CRD missing) is looked for again (default 30 s). */
  discoveryRetryMs?: number;
  /** How long a kind that was served must look unserved before its objects are dropped (default 10 s). */
  missingGraceMs?: number;
  /** Page size of lists (default 500). */
  pageSize?: number;
  /** Time between /readyz probes while the API server is away (default 250 ms). */
  probeMs?: number;
  /** Timers (default the real ones); also drives ListWatch's reconnect delays. */
  clock?: Clock;
  log?: ProviderLog;
}

/** Where each kind stands (for logs, /status and tests). */
export type KindState =
  "discovering" | "missing" | "forbidden" | "syncing" | "synced" | "failing" | "stopped";

const silent: ProviderLog = { info: () => undefined, warn: () => undefined };

export class KubernetesProvider implements Provider {
  readonly #o: Required<Omit<KubernetesProviderOptions, "log">> & { log: ProviderLog };
  readonly #kinds: KindWatcher[];
  readonly #reachability: ApiServerReachability;
  readonly #references: ReferencedObjects;
  readonly #fetchOutage: OutageLog;
  #fetching = false;
  #deliverAgain = false;
  #state: "new" | "running" | "stopped" = "new";
  #listener: SnapshotListener | undefined;
  #generation = 0;
  #settled: (() => void) | undefined;
  #started = false;
  #timer: TimerHandle | undefined;
  #firstChangeAt = 0;
  #lastChangeAt = 0;
  #dirty = false;

  constructor(options: KubernetesProviderOptions) {
    this.#o = {
      api: options.api,
      watch: options.watch,
      metadataWatch: options.metadataWatch ?? options.watch,
      resources: options.resources ?? WATCHED_RESOURCES,
      debounceMs: options.debounceMs ?? 30,
      maxDelayMs: Math.max(options.maxDelayMs ?? 500, options.debounceMs ?? 30),
      retryMs: options.retryMs ?? 500,
      maxRetryMs: options.maxRetryMs ?? 30_000,
      discoveryRetryMs: options.discoveryRetryMs ?? 30_000,
      missingGraceMs: options.missingGraceMs ?? 10_000,
      pageSize: options.pageSize ?? 500,
      probeMs: options.probeMs ?? 250,
      clock: options.clock ?? systemClock,
      log: options.log ?? silent,
    };
    this.#reachability = new ApiServerReachability({
      api: this.#o.api,
      clock: this.#o.clock,
      probeMs: this.#o.probeMs,
      log: this.#o.log,
    });
    this.#kinds = this.#o.resources.map((r) => new KindWatcher(r, this.#o, this, this.#reachability));
    this.#references = new ReferencedObjects(this.#o.api);
    this.#fetchOutage = new OutageLog({
      what: "reading referenced Secrets and ConfigMaps",
      clock: this.#o.clock,
      log: this.#o.log,
    });
  }

  /** Generation of the last delivered update (0 before the first). */
  get generation(): number {
    return this.#generation;
  }

  /** The Secrets and ConfigMaps held in full (the referenced ones): `Kind ns/name`. */
  get referencedCached(): ReferenceKey[] {
    return this.#references.cached;
  }

  /** Each kind's state and the version watched. */
  kinds(): Array<{ kind: string; state: KindState; version: string | undefined }> {
    return this.#kinds.map((k) => ({ kind: k.resource.kind, state: k.state, version: k.version }));
  }

  async start(onSnapshot: SnapshotListener): Promise<void> {
    if (this.#state !== "new") throw new GatehouseError("kubernetes provider already started");
    this.#state = "running";
    this.#listener = onSnapshot;
    const settled = new Promise<void>((resolve) => (this.#settled = resolve));
    for (const kind of this.#kinds) kind.begin();
    this.kindSettled();
    await settled;
    if (this.#state !== "running") return;
    this.#started = true;
    await this.#deliver();
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#listener = undefined;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#settled?.();
    this.#reachability.stop();
    await Promise.all(this.#kinds.map((k) => k.stop()));
  }

  /** Called by a kind when it settles for the first time. */
  kindSettled(): void {
    if (this.#kinds.every((k) => k.settled)) this.#settled?.();
  }

  /** Called by a kind when its objects changed. */
  changed(): void {
    if (this.#state !== "running" || !this.#started) return;
    const now = this.#o.clock.now();
    this.#lastChangeAt = now;
    if (!this.#dirty) {
      this.#dirty = true;
      this.#firstChangeAt = now;
    }
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    const due = Math.min(this.#lastChangeAt + this.#o.debounceMs, this.#firstChangeAt + this.#o.maxDelayMs);
    this.#timer = this.#o.clock.setTimeout(() => this.#fire(), Math.max(0, due - this.#o.clock.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#state !== "running") return;
    const due = Math.min(this.#lastChangeAt + this.#o.debounceMs, this.#firstChangeAt + this.#o.maxDelayMs);
    if (due > this.#o.clock.now()) this.#arm();
    else void this.#deliver();
  }

  /** Objects of the fully watched kinds, and which metadata-only objects exist (at which version). */
  #collect(): { objects: KubeObject[]; existing: Map<ReferenceKey, string> } {
    const objects: KubeObject[] = [];
    const existing = new Map<ReferenceKey, string>();
    for (const kind of this.#kinds) {
      if (kind.resource.metadataOnly === true) {
        for (const o of kind.objects())
          existing.set(
            `${kind.resource.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`,
            o.metadata.resourceVersion ?? "",
          );
      } else {
        objects.push(...kind.objects());
      }
    }
    return { objects, existing };
  }

  async #deliver(): Promise<void> {
    this.#dirty = false;
    if (this.#state !== "running" || this.#listener === undefined) return;
    if (this.#fetching) {
      this.#deliverAgain = true; // after the fetch in flight
      return;
    }
    let { objects, existing } = this.#collect();
    let referenced = referencedObjects(objects);
    const stale = this.#references.stale(referenced, existing);
    if (stale.length > 0) {
      this.#fetching = true;
      let failures: string[];
      try {
        failures = await this.#references.fetch(stale);
      } finally {
        this.#fetching = false;
      }
      if (failures.length > 0) {
        // The last version read (if any) stays in use; try again shortly.
        this.#fetchOutage.failed(
          `${failures[0] ?? ""}${failures.length > 1 ? ` (+${failures.length - 1} more)` : ""}`,
        );
        this.#o.clock.setTimeout(() => this.changed(), this.#o.retryMs);
      } else {
        this.#fetchOutage.succeeded();
      }
      if (this.#state !== "running") return;
      ({ objects, existing } = this.#collect());
      referenced = referencedObjects(objects);
    }
    const listener = this.#listener;
    if (this.#state !== "running" || listener === undefined) return;
    objects.push(...(this.#references.objects(referenced, existing) as KubeObject[]));
    const { snapshot, duplicates } = buildSnapshot(
      objects.map((object) => ({ object, source: { description: "kubernetes" } })),
    );
    const warnings = duplicates.map((d) => `${d.kind} ${d.key} listed twice`);
    this.#generation++;
    try {
      listener({ snapshot, errors: [], warnings, generation: this.#generation });
    } catch (error) {
      this.#o.log.warn(`snapshot listener failed: ${describeError(error)}`);
    }
    if (this.#deliverAgain) {
      this.#deliverAgain = false;
      this.changed();
    }
  }
}

type Options = KubernetesProviderOptions &
  Required<Omit<KubernetesProviderOptions, "log">> & { log: ProviderLog };

/** One kind: discovery, its informer, restarts. */
class KindWatcher {
  readonly resource: WatchedResource;
  readonly #o: Options;
  readonly #provider: KubernetesProvider;
  readonly #reachability: ApiServerReachability;
  #cancelWait: (() => void) | undefined;
  /** The last failure was the API server being away (logged by the reachability probe). */
  #unreachable = false;
  state: KindState = "discovering";
  version: string | undefined;
  /** Synced once, or known to be missing or forbidden: the first snapshot need not wait for it. */
  settled = false;
  #informer: ListWatch<KubernetesObject> | undefined;
  #timer: TimerHandle | undefined;
  #delayMs: number;
  #errors = 0;
  #reported: string | undefined;
  /** When discovery first said "not served" for a kind we were watching (our clock). */
  #goneSince: number | undefined;

  constructor(
    resource: WatchedResource,
    options: Options,
    provider: KubernetesProvider,
    reachability: ApiServerReachability,
  ) {
    this.resource = resource;
    this.#o = options;
    this.#provider = provider;
    this.#reachability = reachability;
    this.#delayMs = options.retryMs;
  }

  get #name(): string {
    return this.resource.kind;
  }

  #isStopped(): boolean {
    return this.state === "stopped";
  }

  begin(): void {
    void this.#discover();
  }

  async stop(): Promise<void> {
    this.state = "stopped";
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#cancelWait?.();
    this.#cancelWait = undefined;
    const informer = this.#informer;
    if (informer !== undefined) await informer.stop();
  }

  /** The cached objects (the last known state while the API server is unreachable). */
  objects(): KubeObject[] {
    if (this.#informer === undefined || this.state === "missing") return [];
    return this.#informer.list() as unknown as KubeObject[];
  }

  #settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.#provider.kindSettled();
  }

  /** Logs a state once (the same message is not repeated until the state changes). */
  #report(key: string, level: "info" | "warn" | "debug", message: string): void {
    if (this.#reported === key) return;
    this.#reported = key;
    if (level === "debug") this.#o.log.debug?.(message);
    else this.#o.log[level](message);
  }

  #schedule(ms: number, action: () => void): void {
    if (this.#isStopped()) return;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#cancelWait?.();
    this.#cancelWait = undefined;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#isStopped()) action();
    }, ms);
  }

  /** After a failure: `action` when `error` says the API server is away and it is back, else after `ms`. */
  #retry(error: unknown, ms: number, action: () => void): void {
    this.#unreachable = isUnreachable(error);
    if (!this.#unreachable) {
      this.#schedule(ms, action);
      return;
    }
    if (this.#isStopped()) return;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#cancelWait?.();
    this.#cancelWait = this.#reachability.waitForRecovery((recovered) => {
      this.#cancelWait = undefined;
      if (this.#isStopped()) return;
      if (recovered) this.#delayMs = this.#o.retryMs; // the outage is over: no backoff left over
      action();
    }, ms);
  }

  #backoff(): number {
    const delay = this.#delayMs;
    this.#delayMs = Math.min(this.#delayMs * 2, this.#o.maxRetryMs);
    return delay;
  }

  async #discover(): Promise<void> {
    this.state = "discovering";
    let version: string | undefined;
    try {
      version = await this.#servedVersion();
    } catch (error) {
      if (this.#isStopped()) return;
      this.state = "failing";
      this.#report(
        "discovery-failed",
        isUnreachable(error) ? "debug" : "warn",
        `${this.#name}: API discovery failed (${describeError(error)}); retrying`,
      );
      this.#retry(error, this.#backoff(), () => void this.#discover());
      return;
    }
    if (this.#isStopped()) return;
    if (version === undefined && this.#informer !== undefined) {
      // We were watching it: drop its objects only once it has been gone for a while.
      const now = this.#o.clock.now();
      this.#goneSince ??= now;
      if (now - this.#goneSince < this.#o.missingGraceMs) {
        this.state = "failing";
        this.#report(
          "vanishing",
          "warn",
          `${this.#name}: no longer served (CRD removed?); keeping its objects for now`,
        );
        this.#schedule(Math.min(this.#backoff(), this.#o.missingGraceMs), () => void this.#discover());
        return;
      }
    }
    if (version === undefined) {
      const dropped = this.#informer !== undefined;
      this.#goneSince = undefined;
      this.state = "missing";
      this.version = undefined;
      this.#report(
        "missing",
        "warn",
        `${this.#name}: not served by the API server (${this.resource.group || "core"} versions ${this.resource.versions.join(", ")}; CRD not installed?); ` +
          `looking again every ${Math.round(this.#o.discoveryRetryMs / 1000)} s`,
      );
      this.#dropInformer();
      this.#settle();
      if (dropped) this.#provider.changed();
      this.#schedule(this.#o.discoveryRetryMs, () => void this.#discover());
      return;
    }
    this.#goneSince = undefined;
    if (this.#informer !== undefined && this.version === version) {
      await this.#restart();
      return;
    }
    this.#dropInformer();
    this.version = version;
    this.#informer = this.#makeInformer(version);
    await this.#restart();
  }

  async #servedVersion(): Promise<string | undefined> {
    for (const version of this.resource.versions) {
      try {
        const list = await this.#o.api.request<{ resources?: Array<{ name?: string }> }>(
          "GET",
          groupVersionPath(this.resource.group, version),
        );
        if ((list?.resources ?? []).some((r) => r.name === this.resource.plural)) return version;
      } catch (error) {
        if (statusCodeOf(error) === 404) continue;
        throw error;
      }
    }
    return undefined;
  }

  #dropInformer(): void {
    const informer = this.#informer;
    this.#informer = undefined;
    if (informer !== undefined) void informer.stop();
  }

  #makeInformer(version: string): ListWatch<KubernetesObject> {
    const apiVersion = apiVersionOf(this.resource.group, version);
    const metadataOnly = this.resource.metadataOnly === true;
    const path = resourcePath({ group: this.resource.group, version, plural: this.resource.plural });
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const items: KubernetesObject[] = [];
      let resourceVersion: string | undefined;
      let token: string | undefined;
      do {
        const page = await this.#o.api.request<RawList>("GET", path, undefined, {
          query: { limit: this.#o.pageSize, continue: token },
          ...(metadataOnly ? { accept: METADATA_LIST_ACCEPT } : {}),
        });
        for (const item of page.items ?? [])
          items.push(slim({ ...item, apiVersion, kind: this.resource.kind }, metadataOnly));
        resourceVersion = page.metadata?.resourceVersion;
        token = page.metadata?.continue;
        if (token === "") token = undefined;
      } while (token !== undefined);
      const result: RawList = { metadata: { resourceVersion: resourceVersion ?? "" }, items };
      return result;
    };
    const clock = this.#o.clock;
    const informer = new ListWatch<KubernetesObject>(
      path,
      (metadataOnly ? this.#o.metadataWatch : this.#o.watch) as Watch,
      list,
      false,
      undefined,
      undefined,
      { delayFn: (ms) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms)) },
    );
    const onChange = (obj: KubernetesObject): void => {
      if (this.#informer !== informer) return;
      slim(obj, metadataOnly);
      this.#provider.changed();
    };
    informer.on("add", onChange);
    informer.on("update", onChange);
    informer.on("delete", () => {
      if (this.#informer === informer) this.#provider.changed();
    });
    informer.on("error", (error: unknown) => {
      if (this.#informer === informer) this.#failed(error);
    });
    return informer;
  }

  /** (Re)starts the informer: list (or watch from the last resourceVersion), then watch. */
  async #restart(): Promise<void> {
    const informer = this.#informer;
    if (informer === undefined || this.#isStopped()) return;
    const errorsBefore = this.#errors;
    const wasFailing = this.state === "failing";
    this.state = "syncing";
    try {
      await informer.start();
    } catch (error) {
      // Authentication plugins and the like fail before any request is sent.
      if (this.#informer === informer && this.#errors === errorsBefore) this.#failed(error);
      return;
    }
    if (this.#informer !== informer || this.#isStopped()) return;
    if (this.#errors !== errorsBefore) return; // #failed handled it
    this.state = "synced";
    this.#delayMs = this.#o.retryMs;
    if (wasFailing || this.#reported !== undefined) {
      this.#report(
        "synced",
        this.#unreachable ? "debug" : "info",
        `${this.#name}: watching ${apiVersionOf(this.resource.group, this.version ?? "")} again`,
      );
    } else {
      this.#reported = "synced";
      this.#o.log.debug?.(`${this.#name}: watching ${apiVersionOf(this.resource.group, this.version ?? "")}`);
    }
    // Changes found by a relist reached us through the informer's callbacks (deletions included);
    // the first sync is covered by the first snapshot.
    this.#settle();
  }

  #failed(error: unknown): void {
    this.#errors++;
    if (this.#isStopped()) return;
    const code = statusCodeOf(error);
    if (code === 404) {
      // The CRD may have been removed, or the API server is still starting: ask discovery.
      this.state = "failing";
      this.#schedule(this.#backoff(), () => void this.#discover());
      return;
    }
    if (code === 403) {
      this.state = "forbidden";
      this.#report(
        "forbidden",
        "warn",
        `${this.#name}: forbidden to list/watch ${this.resource.plural} (${describeError(error)}); check the RBAC rules; retrying with backoff`,
      );
      this.#settle();
      this.#schedule(this.#backoff(), () => void this.#restart());
      return;
    }
    this.state = "failing";
    const delay = this.#backoff();
    this.#report(
      "failing",
      // The API server being away is logged once for every kind by the reachability probe.
      isUnreachable(error) ? "debug" : "warn",
      `${this.#name}: list/watch failed (${describeError(error)}); keeping the last known objects, retrying`,
    );
    this.#retry(error, delay, () => void this.#restart());
  }
}

/** A list as the API server sends it (the library's V1ListMeta renames `continue`). */
interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items: KubernetesObject[];
}

/**
 * Drops what Gatehouse never reads and costs memory (in place: the informer caches this object).
 * `metadataOnly`: keeps name, namespace, uid and resourceVersion only (a metadata watch sends no
 * data anyway; this also holds when a watch sends more).
 */
const METADATA_KEPT = new Set(["name", "namespace", "uid", "resourceVersion"]);

function slim<T extends KubernetesObject>(obj: T, metadataOnly = false): T {
  const meta = obj.metadata as { managedFields?: unknown } | undefined;
  if (meta?.managedFields !== undefined) delete meta.managedFields;
  if (metadataOnly) {
    for (const key of Object.keys(obj))
      if (key !== "apiVersion" && key !== "kind" && key !== "metadata") Reflect.deleteProperty(obj, key);
    const m = obj.metadata;
    if (m !== undefined)
      for (const key of Object.keys(m)) if (!METADATA_KEPT.has(key)) Reflect.deleteProperty(m, key);
  }
  return obj;
}
