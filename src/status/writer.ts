// Writes the statuses the serve loop computed to the API server, through the `status` subresource,
// and only where they differ from what the objects already say (see merge.ts for what "differ"
// means). Optimistic concurrency: each write carries the resourceVersion it was computed from; a 409
// Conflict is answered by a fresh GET, a new merge, and another try.
//
// Routes (and policies) that no longer get a status from the translator lose the parents
// (ancestors) entries we wrote before; other controllers' entries are never touched.
//
// With a WriteFence (leader election), every request is bounded by what is left of the leadership
// term and aborted the moment it ends; no request starts once it has ended. Objects left unwritten
// that way are reported as `fenced`: the next leader writes them.
import type { KubeObject } from "../resources/meta.ts";
import { objectKey, snapshotField, type Snapshot, type SnapshotField } from "../resources/snapshot.ts";
import { describeError, statusCodeOf, type KubeApi } from "../provider/kubernetes/client.ts";
import { parseApiVersion, resourcePath, watchedResource } from "../provider/kubernetes/resources.ts";
import type { WriteFence } from "./leader.ts";
import { mergeStatus, statusEqual, withoutOurEntries } from "./merge.ts";
import type { StatusEntry } from "./types.ts";

export interface StatusWriterLog {
  info(message: string): void;
  warn(message: string): void;
  debug?(message: string): void;
}

export interface StatusWriterOptions {
  api: KubeApi;
  controllerName: string;
  /** Tries per object when the API server answers 409 Conflict (default 5). */
  maxAttempts?: number;
  /** Writes in flight at once (default 8). */
  concurrency?: number;
  log?: StatusWriterLog;
}

export interface StatusWriteReport {
  /** Objects whose status was written. */
  written: string[];
  /** Objects whose status already said the same. */
  unchanged: number;
  /** Conflicts that were retried. */
  conflicts: number;
  /** Objects that no longer exist (or are not in the snapshot). */
  missing: string[];
  /** Objects whose status could not be written. */
  failed: Array<{ object: string; error: string }>;
  /** Objects left unwritten because this replica's leadership term ended. */
  fenced: string[];
}

type Desired = (currentStatus: unknown) => Record<string, unknown> | undefined;

interface Target {
  /** `Kind namespace/name` for reports and logs. */
  label: string;
  kind: string;
  /** The object as the snapshot has it. */
  object: KubeObject;
  desired: Desired;
}

const SHARED_FIELDS: readonly SnapshotField[] = [
  "httpRoutes",
  "grpcRoutes",
  "tlsRoutes",
  "tcpRoutes",
  "udpRoutes",
  "backendTLSPolicies",
];

const silent: StatusWriterLog = { info: () => undefined, warn: () => undefined };

export class KubernetesStatusWriter {
  readonly #api: KubeApi;
  readonly #controllerName: string;
  readonly #maxAttempts: number;
  readonly #concurrency: number;
  readonly #log: StatusWriterLog;
  /**
   * What we wrote, keyed by label: `basedOn` is the resourceVersion the write replaced. While the
   * snapshot still shows that version (the watch event has not arrived yet), our result is the
   * current state, which saves a certain 409.
   */
  readonly #written = new Map<string, { basedOn: string; object: KubeObject }>();

  constructor(options: StatusWriterOptions) {
    this.#api = options.api;
    this.#controllerName = options.controllerName;
    this.#maxAttempts = options.maxAttempts ?? 5;
    this.#concurrency = options.concurrency ?? 8;
    this.#log = options.log ?? silent;
  }

  /**
   * Brings the status of every object in `statuses` up to date, and removes our stale entries from
   * shared statuses of objects in `snapshot` that `statuses` does not cover.
   */
  async write(
    statuses: readonly StatusEntry[],
    snapshot: Snapshot,
    fence?: WriteFence,
  ): Promise<StatusWriteReport> {
    const report: StatusWriteReport = {
      written: [],
      unchanged: 0,
      conflicts: 0,
      missing: [],
      failed: [],
      fenced: [],
    };
    const targets: Target[] = [];
    const covered = new Set<string>();
    for (const entry of statuses) {
      const label = labelOf(entry.kind, entry.metadata);
      covered.add(label);
      const field = snapshotField(entry.apiVersion, entry.kind);
      const object = field === undefined ? undefined : snapshot[field].get(objectKey(entry));
      if (object === undefined) {
        report.missing.push(label);
        continue;
      }
      targets.push({
        label,
        kind: entry.kind,
        object: object as KubeObject,
        desired: (current) => mergeStatus(entry.kind, current, entry.status, this.#controllerName),
      });
    }
    for (const field of SHARED_FIELDS) {
      for (const object of snapshot[field].values() as Iterable<KubeObject>) {
        const label = labelOf(object.kind, object.metadata);
        if (covered.has(label)) continue;
        if (
          withoutOurEntries(object.kind, this.#current(label, object).status, this.#controllerName) ===
          undefined
        )
          continue;
        targets.push({
          label,
          kind: object.kind,
          object,
          desired: (current) => withoutOurEntries(object.kind, current, this.#controllerName),
        });
      }
    }
    // Forget what we wrote for objects that are gone.
    const live = new Set(targets.map((t) => t.label));
    for (const label of this.#written.keys())
      if (!live.has(label) && !covered.has(label)) this.#written.delete(label);

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length) {
        const target = targets[next++];
        if (target !== undefined) await this.#writeOne(target, report, fence);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, targets.length) }, worker));
    return report;
  }

  /** The object as we best know it: the snapshot's, or our write's result if the snapshot lags. */
  #current(label: string, object: KubeObject): KubeObject & { status?: unknown } {
    const written = this.#written.get(label);
    if (written !== undefined && written.basedOn === object.metadata.resourceVersion) return written.object;
    return object;
  }

  async #writeOne(target: Target, report: StatusWriteReport, fence: WriteFence | undefined): Promise<void> {
    /** The bounds of the next request, or undefined when the term is over. */
    const bounds = (): { signal?: AbortSignal; timeoutMs?: number } | undefined => {
      if (fence === undefined) return {};
      const remaining = fence.remainingMs();
      if (fence.signal.aborted || remaining <= 0) return undefined;
      return { signal: fence.signal, timeoutMs: remaining };
    };
    const termEnded = (): boolean => fence?.signal.aborted === true;
    let current: KubeObject & { status?: unknown } = this.#current(target.label, target.object);
    const { group, version } = parseApiVersion(current.apiVersion);
    const resource = watchedResource(target.kind);
    if (resource === undefined) {
      report.failed.push({ object: target.label, error: `no resource known for kind ${target.kind}` });
      return;
    }
    const objectPath = resourcePath(
      { group, version, plural: resource.plural },
      {
        namespace: resource.namespaced ? current.metadata.namespace : undefined,
        name: current.metadata.name,
      },
    );
    for (let attempt = 1; ; attempt++) {
      const desired = target.desired(current.status);
      if (desired === undefined || statusEqual(current.status ?? {}, desired)) {
        report.unchanged++;
        return;
      }
      const basedOn = current.metadata.resourceVersion ?? "";
      const putBounds = bounds();
      if (putBounds === undefined) {
        report.fenced.push(target.label);
        return;
      }
      try {
        const result = await this.#api.request<KubeObject>(
          "PUT",
          `${objectPath}/status`,
          { ...current, status: desired },
          putBounds,
        );
        const slimmed = { ...result, metadata: { ...result.metadata } };
        delete (slimmed.metadata as { managedFields?: unknown }).managedFields;
        this.#written.set(target.label, { basedOn, object: slimmed });
        report.written.push(target.label);
        this.#log.debug?.(`status of ${target.label} written`);
        return;
      } catch (error) {
        if (termEnded()) {
          report.fenced.push(target.label);
          return;
        }
        const code = statusCodeOf(error);
        if (code === 404) {
          report.missing.push(target.label);
          return;
        }
        if (code !== 409 || attempt >= this.#maxAttempts) {
          report.failed.push({ object: target.label, error: describeError(error) });
          this.#log.warn(`cannot write the status of ${target.label}: ${describeError(error)}`);
          return;
        }
        report.conflicts++;
        const getBounds = bounds();
        if (getBounds === undefined) {
          report.fenced.push(target.label);
          return;
        }
        try {
          const fresh = await this.#api.request<KubeObject>("GET", objectPath, undefined, getBounds);
          current = { ...fresh, apiVersion: current.apiVersion, kind: current.kind };
        } catch (getError) {
          if (termEnded()) report.fenced.push(target.label);
          else if (statusCodeOf(getError) === 404) report.missing.push(target.label);
          else report.failed.push({ object: target.label, error: describeError(getError) });
          return;
        }
      }
    }
  }
}

function labelOf(kind: string, meta: { name: string; namespace?: string | undefined }): string {
  return meta.namespace === undefined || meta.namespace === "" || kind === "GatewayClass"
    ? `${kind} ${meta.name}`
    : `${kind} ${meta.namespace}/${meta.name}`;
}
