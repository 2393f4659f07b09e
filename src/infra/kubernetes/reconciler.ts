// Applies the desired objects of every Gateway with server-side apply, and deletes the objects of
// Gateways that are no longer ours.
//
// - An object is applied (PATCH application/apply-patch+yaml, fieldManager, force) only when its
//   desired content changed since its last successful apply: a cache of content hashes. The cache
//   starts empty, so everything is applied once per process; after that a change of routes (which
//   changes no object) costs no API write. Fields other managers own (a user's label, an HPA's
//   replicas) are left alone: SSA only touches the fields we apply.
// - The objects that exist are listed once at the start (by our labels), so objects of Gateways
//   that went away while no controller ran are found too; from then on the ones we apply and delete
//   are tracked.
// - Errors are per Gateway: a Gateway whose object could not be applied reports the API's message
//   (see KubernetesInfrastructure); the other Gateways go on.
// - submit() reconciles in the background, off the translation loop: statuses never wait for API
//   writes (a new Gateway is Accepted at once, whatever the API server's latency). Submissions made
//   while one runs coalesce into the latest; Gateways are applied several at a time, each one's
//   objects in order (ServiceAccount and Secret before the Deployment whose pods use them).
//   `onSettled` is called when a round ends with other failures than the previous one, so the
//   caller can publish them (KubernetesInfrastructure reads `failures`).
import { createHash } from "node:crypto";
import { describeError, statusCodeOf, type KubeApi } from "../../provider/kubernetes/client.ts";
import {
  canonicalJson,
  CONTROLLER_NAMESPACE_LABEL,
  GATEWAY_NAME_LABEL,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  type KubeManifest,
} from "./desired.ts";

/** The kinds a Gateway's data plane is made of, and their API paths. */
export const MANAGED_KINDS = [
  { kind: "ServiceAccount", group: "", version: "v1", plural: "serviceaccounts" },
  { kind: "Secret", group: "", version: "v1", plural: "secrets" },
  { kind: "Service", group: "", version: "v1", plural: "services" },
  { kind: "Deployment", group: "apps", version: "v1", plural: "deployments" },
  { kind: "PodDisruptionBudget", group: "policy", version: "v1", plural: "poddisruptionbudgets" },
  {
    kind: "HorizontalPodAutoscaler",
    group: "autoscaling",
    version: "v2",
    plural: "horizontalpodautoscalers",
  },
] as const;

type ManagedKind = (typeof MANAGED_KINDS)[number];

function kindInfo(kind: string): ManagedKind {
  const info = MANAGED_KINDS.find((k) => k.kind === kind);
  if (info === undefined) throw new Error(`internal: ${kind} is not a managed kind`);
  return info;
}

function collectionPath(k: ManagedKind, namespace?: string): string {
  const base = k.group === "" ? `/api/${k.version}` : `/apis/${k.group}/${k.version}`;
  return namespace === undefined
    ? `${base}/${k.plural}`
    : `${base}/namespaces/${encodeURIComponent(namespace)}/${k.plural}`;
}

function objectPath(kind: string, namespace: string, name: string): string {
  return `${collectionPath(kindInfo(kind), namespace)}/${encodeURIComponent(name)}`;
}

/** One Gateway's objects (`gateway`: `namespace/gateway-name label value`, how objects name their Gateway). */
export interface GatewayObjects {
  gateway: string;
  objects: readonly KubeManifest[];
}

interface Known {
  kind: string;
  namespace: string;
  name: string;
  gateway: string;
}

/** Why a Gateway's objects are not all applied. */
export interface ReconcileFailure {
  /** `list`: the round could not list the existing objects; `apply`: one of this Gateway's writes failed. */
  stage: "list" | "apply";
  message: string;
  statusCode: number | undefined;
}

export interface ReconcileResult {
  /** Gateway (as in GatewayObjects.gateway) → why its objects are not all applied. */
  failed: Map<string, ReconcileFailure>;
  /** API writes made (applies and deletes), for logs and tests. */
  writes: number;
}

export interface ReconcilerOptions {
  api: KubeApi;
  /** Gateways applied at once by a background round (default 4). */
  concurrency?: number;
  /** A background round ended and `failures` changed. */
  onSettled?: () => void;
  /** SSA field manager (default "gatehouse"). */
  fieldManager?: string;
  /** The controller's namespace: only objects labelled with it are ours. */
  controllerNamespace: string;
  log?: { info(message: string): void; warn(message: string): void };
}

const keyOf = (o: { kind: string; namespace: string; name: string }): string =>
  `${o.kind}/${o.namespace}/${o.name}`;

export class InfrastructureReconciler {
  readonly #o: ReconcilerOptions;
  readonly #fieldManager: string;
  /** Object key → content hash of its last successful apply. */
  readonly #applied = new Map<string, string>();
  /** Objects that exist (listed at the start, then tracked). */
  readonly #known = new Map<string, Known>();
  #listed = false;
  /** The latest submission not yet reconciled. */
  #next: { desired: readonly GatewayObjects[]; keep: ReadonlySet<string> } | undefined;
  #running: Promise<void> | undefined;
  #failures: ReconcileResult["failed"] = new Map();
  /** Set by reset(): a round in flight must not record what it applied. */
  #epoch = 0;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#fieldManager = options.fieldManager ?? "gatehouse";
  }

  /** The label selector of our objects. */
  get selector(): string {
    return `${MANAGED_BY_LABEL}=${MANAGED_BY},${CONTROLLER_NAMESPACE_LABEL}=${this.#o.controllerNamespace},${GATEWAY_NAME_LABEL}`;
  }

  /** Why Gateways' objects are not all applied, as of the last finished background round. */
  get failures(): ReconcileResult["failed"] {
    return this.#failures;
  }

  /** Reconciles `desired` and `keep` (as reconcile()) in the background; returns at once. */
  submit(desired: readonly GatewayObjects[], keep: ReadonlySet<string>): void {
    this.#next = { desired, keep };
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
  }

  /** Resolves when every submission has been reconciled. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#next !== undefined) {
      const { desired, keep } = this.#next;
      this.#next = undefined;
      let result: ReconcileResult;
      try {
        result = await this.reconcile(desired, keep);
      } catch (error) {
        // The initial list failed: every desired Gateway waits for the next round.
        const message = `Cannot list the Gateways' objects: ${describeError(error)}`;
        result = {
          failed: new Map(desired.map((g) => [g.gateway, { stage: "list", message, statusCode: undefined }])),
          writes: 0,
        };
      }
      if (result.writes > 0) this.#o.log?.info(`infrastructure: ${result.writes} API writes`);
      for (const [gateway, failure] of result.failed)
        if (this.#failures.get(gateway)?.message !== failure.message)
          this.#o.log?.warn(`Gateway ${gateway}: cannot apply its objects: ${failure.message}`);
      const changed = !sameFailures(this.#failures, result.failed);
      this.#failures = result.failed;
      if (changed) this.#o.onSettled?.();
    }
  }

  /**
   * Applies `desired` (changed objects only), deletes objects of those Gateways that are no longer
   * desired, and deletes every object of a Gateway not in `keep` (Gateways that are ours but left
   * alone, e.g. not accepted, are in `keep` without being in `desired`).
   */
  async reconcile(desired: readonly GatewayObjects[], keep: ReadonlySet<string>): Promise<ReconcileResult> {
    const result: ReconcileResult = { failed: new Map(), writes: 0 };
    if (!this.#listed) await this.#list();
    const epoch = this.#epoch;
    const wanted = new Set<string>();
    for (const g of desired)
      for (const object of g.objects) wanted.add(keyOf({ ...object.metadata, kind: object.kind }));
    const applyGateway = async (g: GatewayObjects): Promise<void> => {
      for (const object of g.objects) {
        const known: Known = {
          kind: object.kind,
          namespace: object.metadata.namespace,
          name: object.metadata.name,
          gateway: g.gateway,
        };
        const key = keyOf(known);
        const content = createHash("sha256").update(canonicalJson(object)).digest("hex");
        if (this.#applied.get(key) === content) continue;
        try {
          await this.#o.api.request("PATCH", objectPath(known.kind, known.namespace, known.name), object, {
            contentType: "application/apply-patch+yaml",
            query: { fieldManager: this.#fieldManager, force: true },
          });
          result.writes++;
          if (epoch !== this.#epoch) return;
          this.#applied.set(key, content);
          this.#known.set(key, known);
        } catch (error) {
          this.#applied.delete(key);
          result.failed.set(g.gateway, {
            stage: "apply",
            message: `${known.kind} ${known.namespace}/${known.name}: ${describeError(error)}`,
            statusCode: statusCodeOf(error),
          });
          return; // the rest of this Gateway's objects depend on this one
        }
      }
    };
    const queue = [...desired];
    const workers = Array.from({ length: Math.min(this.#o.concurrency ?? 4, queue.length) }, async () => {
      for (let g = queue.shift(); g !== undefined; g = queue.shift()) await applyGateway(g);
    });
    await Promise.all(workers);
    const desiredGateways = new Set(desired.map((g) => g.gateway));
    const doomed = [...this.#known].filter(
      // Objects a desired Gateway no longer has (a PDB turned off); all objects of a Gateway no
      // longer ours. A Gateway that is ours but not reconciled now keeps what it has.
      ([key, known]) => !wanted.has(key) && (desiredGateways.has(known.gateway) || !keep.has(known.gateway)),
    );
    const remove = async ([key, known]: [string, Known]): Promise<void> => {
      try {
        await this.#o.api.request("DELETE", objectPath(known.kind, known.namespace, known.name));
        result.writes++;
        this.#o.log?.info(
          `deleted ${known.kind} ${known.namespace}/${known.name} (Gateway ${known.gateway})`,
        );
      } catch (error) {
        if (statusCodeOf(error) !== 404) {
          this.#o.log?.warn(
            `cannot delete ${known.kind} ${known.namespace}/${known.name}: ${describeError(error)}`,
          );
          return;
        }
      }
      if (epoch !== this.#epoch) return;
      this.#known.delete(key);
      this.#applied.delete(key);
    };
    const deleters = Array.from({ length: Math.min(this.#o.concurrency ?? 4, doomed.length) }, async () => {
      for (let d = doomed.shift(); d !== undefined; d = doomed.shift()) await remove(d);
    });
    await Promise.all(deleters);
    return result;
  }

  /** Forgets what was applied: the next reconcile applies everything again (e.g. after a leadership change). */
  reset(): void {
    this.#epoch++;
    this.#applied.clear();
    this.#known.clear();
    this.#listed = false;
  }

  async #list(): Promise<void> {
    for (const k of MANAGED_KINDS) {
      const list = await this.#o.api.request<{
        items?: Array<{ metadata: { name: string; namespace?: string; labels?: Record<string, string> } }>;
      }>("GET", collectionPath(k), undefined, { query: { labelSelector: this.selector } });
      for (const item of list.items ?? []) {
        const namespace = item.metadata.namespace ?? "default";
        const label = item.metadata.labels?.[GATEWAY_NAME_LABEL] ?? "";
        const known: Known = {
          kind: k.kind,
          namespace,
          name: item.metadata.name,
          gateway: `${namespace}/${label}`,
        };
        this.#known.set(keyOf(known), known);
      }
    }
    this.#listed = true;
  }
}

function sameFailures(a: ReconcileResult["failed"], b: ReconcileResult["failed"]): boolean {
  if (a.size !== b.size) return false;
  for (const [gateway, failure] of a) if (b.get(gateway)?.message !== failure.message) return false;
  return true;
}
