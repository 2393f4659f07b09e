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

export interface ReconcileResult {
  /** Gateway (as in GatewayObjects.gateway) → why its objects are not all applied. */
  failed: Map<string, { message: string; statusCode: number | undefined }>;
  /** API writes made (applies and deletes), for logs and tests. */
  writes: number;
}

export interface ReconcilerOptions {
  api: KubeApi;
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

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#fieldManager = options.fieldManager ?? "gatehouse";
  }

  /** The label selector of our objects. */
  get selector(): string {
    return `${MANAGED_BY_LABEL}=${MANAGED_BY},${CONTROLLER_NAMESPACE_LABEL}=${this.#o.controllerNamespace},${GATEWAY_NAME_LABEL}`;
  }

  /**
   * Applies `desired` (changed objects only), deletes objects of those Gateways that are no longer
   * desired, and deletes every object of a Gateway not in `keep` (Gateways that are ours but left
   * alone, e.g. not accepted, are in `keep` without being in `desired`).
   */
  async reconcile(desired: readonly GatewayObjects[], keep: ReadonlySet<string>): Promise<ReconcileResult> {
    const result: ReconcileResult = { failed: new Map(), writes: 0 };
    if (!this.#listed) await this.#list();
    const wanted = new Set<string>();
    for (const g of desired) {
      for (const object of g.objects) {
        const known: Known = {
          kind: object.kind,
          namespace: object.metadata.namespace,
          name: object.metadata.name,
          gateway: g.gateway,
        };
        const key = keyOf(known);
        wanted.add(key);
        const content = createHash("sha256").update(canonicalJson(object)).digest("hex");
        if (this.#applied.get(key) === content) continue;
        try {
          await this.#o.api.request("PATCH", objectPath(known.kind, known.namespace, known.name), object, {
            contentType: "application/apply-patch+yaml",
            query: { fieldManager: this.#fieldManager, force: true },
          });
          result.writes++;
          this.#applied.set(key, content);
          this.#known.set(key, known);
        } catch (error) {
          this.#applied.delete(key);
          if (!result.failed.has(g.gateway))
            result.failed.set(g.gateway, {
              message: `${known.kind} ${known.namespace}/${known.name}: ${describeError(error)}`,
              statusCode: statusCodeOf(error),
            });
        }
      }
    }
    const desiredGateways = new Set(desired.map((g) => g.gateway));
    for (const [key, known] of this.#known) {
      if (wanted.has(key)) continue;
      // Objects a desired Gateway no longer has (a PDB turned off); all objects of a Gateway no
      // longer ours. A Gateway that is ours but not reconciled now keeps what it has.
      if (!desiredGateways.has(known.gateway) && keep.has(known.gateway)) continue;
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
          continue;
        }
      }
      this.#known.delete(key);
      this.#applied.delete(key);
    }
    return result;
  }

  /** Forgets what was applied: the next reconcile applies everything again (e.g. after a leadership change). */
  reset(): void {
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
